// How the orchestrator and its agents exchange messages (messages.h).
//
// Rank 0 is the orchestrator; every other rank is an agent. Two implementations with one
// contract test suite (tests/sweep/transport_test.cpp):
//  - LocalHub: every endpoint lives in this process (the embedded single-machine mode, tests).
//  - MpiTransport (mpi_transport.h): ranks of MPI_COMM_WORLD.
// Messages from one sender arrive in the order they were sent. Receiving never blocks; to wait,
// callers use wait_for_events() (events.h) with the transport's wait_fds() and poll_interval(),
// never a blocking MPI receive, which spins a whole core (/work/shared/docs/platform.md).
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace scaletune::sweep {

struct Envelope {
  int from = 0;
  nlohmann::json message;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void send(int to, const nlohmann::json& message) = 0;
  // The next message for this endpoint, if any. Never blocks.
  virtual std::optional<Envelope> try_receive() = 0;

  // Descriptors that are readable while a message is waiting (none: see poll_interval).
  virtual std::vector<int> wait_fds() const { return {}; }
  // The longest a waiting caller may go without calling try_receive() again, for messages that
  // wait_fds() does not show; zero when the descriptors show every message. A polled transport
  // may lengthen the interval each time it is asked while nothing arrives.
  virtual std::chrono::microseconds poll_interval() { return std::chrono::milliseconds(1); }
};

// In-process endpoints sharing one set of queues. Thread-safe. Each queue has an eventfd that is
// readable exactly while the queue holds a message, so a waiting endpoint wakes at once.
class LocalHub {
 public:
  explicit LocalHub(int size);
  // The endpoint of `rank`; valid while the hub lives.
  std::unique_ptr<Transport> endpoint(int rank);

 private:
  class Endpoint;
  struct State {
    explicit State(int size);
    ~State();
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    std::mutex mutex;
    std::vector<std::deque<Envelope>> queues;
    std::vector<int> ready;  // eventfd per queue: non-zero while the queue is not empty
  };
  std::shared_ptr<State> state_;
};

}  // namespace scaletune::sweep
