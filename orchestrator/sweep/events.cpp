#include "orchestrator/sweep/events.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace scaletune::sweep {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

int UniqueFd::release() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

UniqueFd open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  if (pid > 0) {
    const long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  }
#else
  (void)pid;
#endif
  return UniqueFd();
}

void wait_for_events(Transport& transport, const std::vector<int>& fds,
                     std::chrono::microseconds timeout) {
  std::vector<pollfd> set;
  for (int fd : transport.wait_fds()) set.push_back({fd, POLLIN, 0});
  for (int fd : fds)
    if (fd >= 0) set.push_back({fd, POLLIN, 0});
  const std::chrono::microseconds interval = transport.poll_interval();
  if (interval.count() > 0) timeout = std::min(timeout, interval);
  timeout = std::max(timeout, std::chrono::microseconds(0));
  timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000) * 1000;
  // EINTR (a signal, e.g. the stop request) is a wake-up like any other.
  ppoll(set.data(), set.size(), &ts, nullptr);
}

namespace {

double cpu_seconds(int who) {
  rusage u{};
  if (getrusage(who, &u) != 0) return 0;
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

double thread_cpu_seconds() { return cpu_seconds(RUSAGE_THREAD); }
double process_cpu_seconds() { return cpu_seconds(RUSAGE_SELF); }

}  // namespace scaletune::sweep
