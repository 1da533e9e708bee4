// Child processes for trials: spawned in their own process group with a controlled environment,
// output appended to a log file, reaped without blocking, stopped with SIGTERM then SIGKILL.
//
// Guarantees the orchestrator relies on:
//  - A child never outlives its owner: the owning object's destructor kills the group, and the
//    kernel kills the child if the owning process dies (PR_SET_PDEATHSIG).
//  - When a child exits, the rest of its process group (grandchildren it left behind) is killed.
//    Limit: if the owning process is SIGKILLed, only the direct child gets the parent-death signal;
//    grandchildren it started survive unless they watch their own parent. Trials are exec'd
//    directly (no shell) for this reason.
//  - A program that cannot be started is reported as a SpawnError naming it and the errno text;
//    it never turns into a child that "exits 127".
//
// vfork+exec is used (not posix_spawn) so the child can set its parent-death signal before exec.
// That is safe here because the `scaletune` program does not load LibTorch (fork without exec
// after LibTorch's OpenMP pool hangs, see docs/architecture.md); the child calls only
// async-signal-safe functions before exec.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace scaletune::util {

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0]: a path, or a name looked up in PATH
  std::map<std::string, std::string> env;  // set (or override) these variables
  std::vector<std::string> unset_env;      // remove these; a trailing '*' matches a prefix
  std::string cwd;                         // working directory ("" = inherit)
  std::string log_path;                    // stdout+stderr appended here ("" = inherit)
};

// How a child ended.
struct ExitStatus {
  int code = -1;   // exit code when it exited, else -1
  int signal = 0;  // the signal that killed it, else 0
  bool exited() const { return signal == 0; }
  bool success() const { return signal == 0 && code == 0; }
  // "exit code 3" or "killed by signal 11 (Segmentation fault)".
  std::string describe() const;
};

class SpawnError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ChildProcess {
 public:
  // Starts the program. Throws SpawnError when it cannot be started (missing program, bad
  // working directory, unwritable log file, ...).
  static ChildProcess spawn(const SpawnOptions& options);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the whole group if it is still running and reaps the child. Never throws.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }
  double seconds_running() const;

  // Non-blocking: reaps the child if it ended (then kills what is left of its group) and
  // escalates a pending stop to SIGKILL once its grace period is over. Returns the exit status
  // once the child has ended.
  std::optional<ExitStatus> poll();
  // Blocks until the child ends (still escalating a pending stop).
  ExitStatus wait();

  // Sends `sig` to the whole process group.
  void signal_group(int sig);
  // Asks the group to stop: `sig` (SIGTERM by default) now, SIGKILL if the child is still
  // running `grace` later (escalated by poll()/wait()). Returns at once.
  void stop(std::chrono::duration<double> grace, int sig = 15 /* SIGTERM */);
  // Whether stop() was called (so an end by signal was asked for, not an outside kill).
  bool stop_requested() const { return stop_deadline_.has_value(); }

 private:
  void reap(int wait_status);
  void release() noexcept;  // kill and reap a running child, forget it
  void kill_group_now();

  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_{};
  std::optional<std::chrono::steady_clock::time_point> stop_deadline_;
  std::optional<ExitStatus> status_;
};

// The absolute path of `name` found in PATH (or `name` itself when it contains a '/'); empty
// when not found or not executable.
std::string find_program(const std::string& name);

// `$override_env` when set and not empty, else the file `name` in the running program's folder
// (where the build puts the program's plugins).
std::string beside_program(const std::string& name, const char* override_env);

}  // namespace scaletune::util
