#include "orchestrator/sweep/transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace scaletune::sweep {

class LocalHub::Endpoint : public Transport {
 public:
  Endpoint(std::shared_ptr<State> state, int rank) : state_(std::move(state)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(state_->queues.size()); }
  void send(int to, const nlohmann::json& message) override {
    if (to < 0 || to >= size()) throw std::out_of_range("no rank " + std::to_string(to));
    std::lock_guard<std::mutex> lock(state_->mutex);
    auto& q = state_->queues[static_cast<std::size_t>(to)];
    q.push_back({rank_, message});
    if (q.size() == 1) {
      const std::uint64_t one = 1;
      // Cannot fail short of a bug: the counter is far from overflowing and the fd is ours.
      [[maybe_unused]] const ssize_t n =
          write(state_->ready[static_cast<std::size_t>(to)], &one, sizeof(one));
    }
  }
  std::optional<Envelope> try_receive() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    auto& q = state_->queues[static_cast<std::size_t>(rank_)];
    if (q.empty()) return std::nullopt;
    Envelope e = std::move(q.front());
    q.pop_front();
    if (q.empty()) {
      std::uint64_t count = 0;  // resets the counter: not readable until the next send
      [[maybe_unused]] const ssize_t n =
          read(state_->ready[static_cast<std::size_t>(rank_)], &count, sizeof(count));
    }
    return e;
  }
  std::vector<int> wait_fds() const override {
    return {state_->ready[static_cast<std::size_t>(rank_)]};
  }
  std::chrono::microseconds poll_interval() override { return std::chrono::microseconds(0); }

 private:
  std::shared_ptr<State> state_;
  int rank_;
};

LocalHub::State::State(int size) : queues(static_cast<std::size_t>(size)) {
  for (int i = 0; i < size; ++i) {
    const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      for (int r : ready) close(r);
      throw std::runtime_error(std::string("eventfd: ") + std::strerror(err));
    }
    ready.push_back(fd);
  }
}

LocalHub::State::~State() {
  for (int fd : ready) close(fd);
}

LocalHub::LocalHub(int size) {
  if (size < 1) throw std::invalid_argument("a hub needs at least one endpoint");
  state_ = std::make_shared<State>(size);
}

std::unique_ptr<Transport> LocalHub::endpoint(int rank) {
  if (rank < 0 || rank >= static_cast<int>(state_->queues.size()))
    throw std::out_of_range("no rank " + std::to_string(rank));
  return std::make_unique<Endpoint>(state_, rank);
}

}  // namespace scaletune::sweep
