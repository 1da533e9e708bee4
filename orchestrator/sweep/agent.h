// The agent of one node (or one MPI rank): starts the ranks of trials on its device slots as
// child processes, watches them, enforces timeouts, and reports how each trial ended.
//
// An agent never dies because of a trial: crashes, hangs, non-zero exits and bad result files
// are reported in TrialEnded for the orchestrator to classify. It holds no sweep state beyond the
// trials it runs; the orchestrator decides everything else.
//
// Not thread-safe: one loop calls handle() for each incoming message and poll() whenever one of
// wait_fds() is readable or poll_within() has passed (run_agent in agent_loop.h). Each rank has a
// pidfd that becomes readable when it exits, so a trial's end is noticed within microseconds;
// where the kernel has no pidfds, poll_within() asks to be polled every millisecond instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/sweep/events.h"
#include "orchestrator/sweep/messages.h"
#include "orchestrator/util/process.h"

namespace scaletune::sweep {

struct AgentOptions {
  std::string host;  // how other nodes reach this one (MASTER_ADDR of its trials)
  std::vector<Slot> slots;
  std::string self_exe;               // replaces argv[0] == "@scaletune" in launches
  double timeout_grace_seconds = 10;  // SIGTERM -> SIGKILL when a trial times out
  double failure_grace_seconds = 5;   // when one rank fails, the others get this long
  double rss_sample_seconds = 0.5;    // how often resident memory is sampled
};

// The environment variables an agent strips from every trial, so a trial started under mpirun
// or srun does not mistake itself for an MPI rank.
std::vector<std::string> launcher_variables();

class Agent {
 public:
  using Send = std::function<void(const nlohmann::json&)>;
  Agent(AgentOptions options, Send send);
  ~Agent();

  Hello hello() const;
  // Acts on a LaunchTrial, StopTrial or Shutdown message. Malformed messages throw
  // std::invalid_argument (the orchestrator sent something wrong: a bug, not a trial failure).
  void handle(const nlohmann::json& message);
  // Reaps ended ranks, enforces timeouts, reports ended trials.
  void poll();
  // Readable when poll() has something to reap: the pidfds of ranks still running.
  std::vector<int> wait_fds() const;
  // How long the caller may wait for wait_fds() before poll() is due anyway (a timeout, a SIGKILL
  // after a stop's grace period, a memory sample); hours when nothing runs.
  std::chrono::microseconds poll_within() const;
  // True once a Shutdown was handled and every trial has ended (Bye was sent).
  bool finished() const { return finished_; }
  std::size_t running_trials() const { return trials_.size(); }
  std::size_t free_slots() const;

 private:
  struct RankProcess {
    RankPlacement placement;
    util::ChildProcess process;
    UniqueFd exited;  // pidfd: readable once the process has exited (invalid: not supported)
    std::optional<util::ExitStatus> exit;
    std::string log_path;
  };
  struct Trial {
    LaunchTrial launch;
    std::vector<RankProcess> ranks;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point last_sample;
    bool timed_out = false;
    bool stop_requested = false;
    bool failure_seen = false;   // a rank ended unsuccessfully
    bool peers_stopped = false;  // ...and the other ranks were told to stop
    // When poll() must escalate a stop to SIGKILL (the first stop's grace period, as in
    // ChildProcess); cleared once poll() has escalated.
    std::optional<std::chrono::steady_clock::time_point> kill_at;
    double peak_rss = 0;
  };
  using Key = std::pair<std::int64_t, int>;  // (trial, attempt)

  void launch(const LaunchTrial& m);
  void stop(const StopTrial& m);
  void shutdown(const Shutdown& m);
  void finish(const Key& key, Trial& trial);
  // Stops the ranks still running: `sig` now, SIGKILL after `grace`.
  void stop_ranks(Trial& trial, double grace_seconds, int sig);
  void fail_launch(const LaunchTrial& m, const std::string& reason);

  AgentOptions options_;
  Send send_;
  std::map<Key, Trial> trials_;
  std::vector<bool> slot_busy_;
  bool shutting_down_ = false;
  bool finished_ = false;
};

// A TCP port that was free a moment ago (for a trial's c10d rendezvous). Throws on failure.
int pick_free_port();

// Resident set size of a process in bytes (0 if it is gone).
double resident_bytes(int pid);

// This machine's memory in bytes (MemTotal of /proc/meminfo), 0 if unknown.
double host_memory_bytes();

}  // namespace scaletune::sweep
