// Small pieces every trainer's run loop needs (lm, lora, ppo): wall-clock seconds, the failure a
// run's settings caused, the intra-op thread count a run uses, and the process's peak RSS.
// Torch-free and header-only, so trainers share one definition instead of copies.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "trainer/core/result.h"

namespace scaletune::trainer {

using RunClock = std::chrono::steady_clock;

inline double seconds_since(RunClock::time_point t) {
  return std::chrono::duration<double>(RunClock::now() - t).count();
}

// A failure caused by the run's settings or inputs: the run ends with `status` and the message
// as the reason (never an infrastructure failure).
struct RunFailure : std::runtime_error {
  RunStatus status;
  RunFailure(RunStatus s, const std::string& what) : std::runtime_error(what), status(s) {}
};

// Intra-op threads: the config's `threads` when > 0, else $OMP_NUM_THREADS of the run's
// environment (the agent sets it to resources.threads_per_trial), else 1 — LibTorch's own
// default on this platform, made explicit so runs are reproducible.
inline int thread_count(int configured, const std::map<std::string, std::string>& env) {
  if (configured > 0) return configured;
  const auto it = env.find("OMP_NUM_THREADS");
  if (it != env.end()) {
    try {
      return std::max(1, std::stoi(it->second));
    } catch (const std::exception&) {
    }
  }
  return 1;
}

// Peak resident set size of this process, in bytes (Linux reports ru_maxrss in KiB).
inline double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

}  // namespace scaletune::trainer
