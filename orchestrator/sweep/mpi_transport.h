// Transport over MPI_COMM_WORLD (see transport.h), and the MPI session of a process.
#pragma once

#include <mpi.h>

#include <chrono>
#include <list>
#include <string>

#include "orchestrator/sweep/transport.h"

namespace scaletune::sweep {

// MPI_Init on construction, MPI_Finalize on destruction. One per process.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0;
  int size_ = 1;
};

// Messages are JSON text in MPI_CHAR messages with one tag. Sends are non-blocking; their buffers
// are kept until MPI reports them complete. The destructor waits for pending sends.
//
// Waiting: MPI has no descriptor for an incoming message and a blocking receive spins a core,
// so waiters probe again after poll_interval(): 50 us after this rank sent or received (a reply
// is likely soon), doubling while nothing arrives, up to 1 ms within 100 ms of the last traffic
// and up to 5 ms after that. A reply is then noticed within ~1 ms, a message after a quiet spell
// within ~5 ms, and a quiet rank probes ~200 times a second (measured: ~1,000 probes a second
// cost 2.5% of a core on the 2-core VM).
class MpiTransport : public Transport {
 public:
  explicit MpiTransport(MPI_Comm comm = MPI_COMM_WORLD);
  ~MpiTransport() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(int to, const nlohmann::json& message) override;
  std::optional<Envelope> try_receive() override;
  std::chrono::microseconds poll_interval() override;
  // Blocks until every send has completed.
  void flush();

 private:
  struct PendingSend {
    std::string data;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  void progress();

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::list<PendingSend> pending_;
  std::chrono::microseconds interval_;
  std::chrono::steady_clock::time_point last_traffic_ = std::chrono::steady_clock::now();
};

}  // namespace scaletune::sweep
