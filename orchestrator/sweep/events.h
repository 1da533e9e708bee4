// Waiting for the events an agent or the orchestrator acts on without sleep-polling: a message on
// the transport, a trial rank ending (its pidfd), or a deadline.
//
// Why: a fixed polling sleep puts its length into every trial's start and end (it was ~20 ms per
// trial in bench/sweep), and a short one burns a core on a 2-core node. With descriptors the
// kernel wakes the loop within microseconds of the event and the loop costs nothing between
// events. MPI offers no descriptor for an incoming message, so the MPI transport asks for short
// waits that grow while nothing arrives (mpi_transport.h); a blocking MPI receive would spin.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <vector>

#include "orchestrator/sweep/transport.h"

namespace scaletune::sweep {

// A file descriptor closed on destruction. Movable, not copyable.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() noexcept;

 private:
  int fd_ = -1;
};

// A pidfd of the child `pid` (Linux >= 5.3): readable once the child has exited. Invalid when the
// kernel (or a seccomp filter) does not offer pidfd_open; callers then poll the child instead.
// Open it before the child is reaped, so the number cannot name a recycled process.
UniqueFd open_pidfd(pid_t pid);

// Blocks until a message may be waiting on `transport`, one of `fds` is readable, or `timeout`
// has passed, whichever comes first; never spins. It may return early (a signal, a polled
// transport's interval): callers loop and look at everything again.
void wait_for_events(Transport& transport, const std::vector<int>& fds,
                     std::chrono::microseconds timeout);

// CPU seconds (user + system) used so far by the calling thread, and by the whole process.
double thread_cpu_seconds();
double process_cpu_seconds();

}  // namespace scaletune::sweep
