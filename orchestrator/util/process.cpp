#include "orchestrator/util/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

extern char** environ;

namespace scaletune::util {
namespace {

// What the child reports through the error pipe when it cannot exec.
struct ChildFailure {
  int stage;  // 0 = chdir, 1 = exec
  int error;
};

bool unset_matches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*')
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == name;
}

std::vector<std::string> build_environment(const SpawnOptions& o) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool drop = o.env.count(name) > 0;
    for (const auto& pattern : o.unset_env) drop = drop || unset_matches(pattern, name);
    if (!drop) env.push_back(entry);
  }
  for (const auto& [name, value] : o.env) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Closes every descriptor >= 3 except `keep`. Async-signal-safe.
void close_other_fds(int keep) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u) == 0 &&
      syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u) == 0)
    return;
#endif
  struct rlimit lim {};
  int max_fd = 65536;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < 65536)
    max_fd = static_cast<int>(lim.rlim_cur);
  for (int fd = 3; fd < max_fd; ++fd)
    if (fd != keep) close(fd);
}

[[noreturn]] void child_fail(int pipe_fd, int stage) {
  const ChildFailure f{stage, errno};
  [[maybe_unused]] ssize_t n = write(pipe_fd, &f, sizeof(f));
  _exit(127);
}

// What the child of spawn() needs, all prepared by the parent (the child must not allocate).
struct ChildArgs {
  const char* program;
  char** argv;
  char** envp;
  const char* cwd;  // nullptr: inherit
  int null_fd, log_fd, err_fd;
  pid_t parent;
};

// The child: die with the parent; own process group; default signal handling; then exec.
int child_main(void* p) {
  const ChildArgs& a = *static_cast<const ChildArgs*>(p);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != a.parent) _exit(127);  // the parent died before prctl took effect
  setpgid(0, 0);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (a.cwd && chdir(a.cwd) != 0) child_fail(a.err_fd, 0);
  if (a.null_fd >= 0) dup2(a.null_fd, STDIN_FILENO);
  if (a.log_fd >= 0) {
    dup2(a.log_fd, STDOUT_FILENO);
    dup2(a.log_fd, STDERR_FILENO);
  }
  close_other_fds(a.err_fd);
  execve(a.program, a.argv, a.envp);
  child_fail(a.err_fd, 1);
}

}  // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) {
    const char* name = strsignal(signal);
    return "killed by signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")";
  }
  return "exit code " + std::to_string(code);
}

std::string beside_program(const std::string& name, const char* override_env) {
  if (const char* env = std::getenv(override_env); env && *env) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto dir = ec ? std::filesystem::current_path() : exe.parent_path();
  return (dir / name).string();
}

std::string find_program(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

ChildProcess ChildProcess::spawn(const SpawnOptions& o) {
  if (o.argv.empty()) throw SpawnError("cannot start a process: empty command line");
  const std::string program = find_program(o.argv[0]);
  if (program.empty()) {
    throw SpawnError("cannot start '" + o.argv[0] + "': not found or not executable" +
                     (o.argv[0].find('/') == std::string::npos ? " (searched PATH)" : ""));
  }

  // Everything the child needs is prepared before fork: after fork only async-signal-safe
  // calls are allowed (the parent may have other threads, e.g. MPI's).
  std::vector<std::string> args = o.argv;
  std::vector<std::string> env = build_environment(o);
  std::vector<char*> c_args = c_strings(args);
  std::vector<char*> c_env = c_strings(env);

  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int log_fd = -1;
  if (!o.log_path.empty()) {
    log_fd = open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      const int err = errno;
      if (null_fd >= 0) close(null_fd);
      throw SpawnError("cannot open log file " + o.log_path + ": " + std::strerror(err));
    }
  }
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    if (null_fd >= 0) close(null_fd);
    if (log_fd >= 0) close(log_fd);
    throw SpawnError(std::string("cannot create a pipe: ") + std::strerror(err));
  }

  // clone(CLONE_VM | CLONE_VFORK) (what vfork and posix_spawn do), not fork: the child borrows
  // the parent's memory until it execs, so a start costs ~1 ms whatever the parent's size, where
  // fork copies the page tables (measured on the 2-core VM: 3 ms for a 10 MB parent, 25 ms for
  // 200 MB). The child runs child_main on its own stack and makes only system calls until execve
  // or _exit. Every signal is blocked around the clone, so no handler of the parent can run in
  // the child on the shared memory; the child resets them before unblocking.
  ChildArgs child_args{
      program.c_str(), c_args.data(), c_env.data(), o.cwd.empty() ? nullptr : o.cwd.c_str(),
      null_fd,         log_fd,        err_pipe[1],  getpid()};
  std::vector<char> child_stack(64 * 1024);
  sigset_t all_signals, parent_mask;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &parent_mask);
  const pid_t pid = clone(child_main, child_stack.data() + child_stack.size(),
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &child_args);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &parent_mask, nullptr);
  close(err_pipe[1]);
  if (null_fd >= 0) close(null_fd);
  if (log_fd >= 0) close(log_fd);
  if (pid < 0) {
    close(err_pipe[0]);
    throw SpawnError("cannot fork to start '" + o.argv[0] + "': " + std::strerror(fork_errno));
  }
  // Also set the group from the parent, so signal_group() works even if we get there first.
  setpgid(pid, pid);

  ChildFailure failure{};
  ssize_t n = 0;
  do {
    n = read(err_pipe[0], &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    int status = 0;
    waitpid(pid, &status, 0);
    const std::string what = failure.stage == 0 ? "cannot enter working directory " + o.cwd
                                                : "cannot execute " + program;
    throw SpawnError("cannot start '" + o.argv[0] + "': " + what + ": " +
                     std::strerror(failure.error));
  }

  ChildProcess child;
  child.pid_ = pid;
  child.started_ = std::chrono::steady_clock::now();
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = other.pid_;
    started_ = other.started_;
    stop_deadline_ = other.stop_deadline_;
    status_ = other.status_;
    other.pid_ = -1;
    other.status_.reset();
    other.stop_deadline_.reset();
  }
  return *this;
}

ChildProcess::~ChildProcess() { release(); }

void ChildProcess::release() noexcept {
  if (pid_ > 0 && !status_) {
    kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

double ChildProcess::seconds_running() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

void ChildProcess::kill_group_now() {
  if (pid_ > 0) kill(-pid_, SIGKILL);
}

void ChildProcess::reap(int wait_status) {
  ExitStatus s;
  if (WIFSIGNALED(wait_status)) {
    s.signal = WTERMSIG(wait_status);
  } else {
    s.code = WEXITSTATUS(wait_status);
  }
  status_ = s;
}

std::optional<ExitStatus> ChildProcess::poll() {
  if (status_ || pid_ <= 0) return status_;
  // Look without reaping first: while the leader is a zombie its pid (= the group id) cannot be
  // reused, so killing the leftover group members cannot hit an unrelated process.
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == pid_) {
    kill_group_now();
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reap(status);
    return status_;
  }
  if (stop_deadline_ && std::chrono::steady_clock::now() >= *stop_deadline_) kill_group_now();
  return std::nullopt;
}

ExitStatus ChildProcess::wait() {
  while (true) {
    if (auto s = poll()) return *s;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void ChildProcess::signal_group(int sig) {
  if (running()) kill(-pid_, sig);
}

void ChildProcess::stop(std::chrono::duration<double> grace, int sig) {
  if (!running()) return;
  if (!stop_deadline_) {
    stop_deadline_ = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(grace);
  }
  signal_group(sig);
}

}  // namespace scaletune::util
