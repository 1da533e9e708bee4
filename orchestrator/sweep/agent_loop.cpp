#include "orchestrator/sweep/agent_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>

#include "orchestrator/sweep/events.h"

namespace scaletune::sweep {

void run_agent(Transport& transport, Agent& agent, const std::atomic<bool>& abort_requested,
               int orchestrator) {
  // `abort_requested` is set by a signal handler, which may run on another thread and so not
  // interrupt the wait: look at it at least this often.
  constexpr std::chrono::microseconds kAbortCheck = std::chrono::milliseconds(100);
  const auto started = std::chrono::steady_clock::now();
  const double cpu_at_start = thread_cpu_seconds();
  std::size_t trials = 0;
  transport.send(orchestrator, encode(agent.hello()));
  bool aborting = false;
  while (true) {
    bool busy = false;
    while (auto e = transport.try_receive()) {
      busy = true;
      if (message_type(e->message) == "launch") ++trials;
      try {
        agent.handle(e->message);
      } catch (const std::exception& ex) {
        // A malformed message is a bug in the orchestrator; say so and keep serving.
        spdlog::error("agent: ignoring a bad message from rank {}: {}", e->from, ex.what());
      }
    }
    if (abort_requested && !aborting) {
      aborting = true;
      spdlog::warn("agent: asked to stop; stopping its trials");
      agent.handle(encode(Shutdown{SIGTERM, 10}));
    }
    const std::size_t before = agent.running_trials();
    agent.poll();
    if (agent.finished()) break;
    busy = busy || agent.running_trials() != before;
    // After activity look once more at once (a reply may already be queued), then wait.
    if (!busy)
      wait_for_events(transport, agent.wait_fds(), std::min(agent.poll_within(), kAbortCheck));
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double cpu = thread_cpu_seconds() - cpu_at_start;
  spdlog::info("agent: {} trial launch(es); loop CPU {:.3f} s over {:.2f} s ({:.2f}% of a core)",
               trials, cpu, wall, wall > 0 ? 100 * cpu / wall : 0.0);
}

}  // namespace scaletune::sweep
