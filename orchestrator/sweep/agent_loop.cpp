#include "orchestrator/sweep/agent_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

namespace scaletune::sweep {

void run_agent(Transport& transport, Agent& agent, const std::atomic<bool>& abort_requested,
               int orchestrator) {
  transport.send(orchestrator, encode(agent.hello()));
  bool aborting = false;
  auto idle_sleep = std::chrono::microseconds(200);
  while (!agent.finished()) {
    bool busy = false;
    while (auto e = transport.try_receive()) {
      busy = true;
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
    busy = busy || agent.running_trials() != before;
    if (busy) {
      idle_sleep = std::chrono::microseconds(200);
    } else {
      std::this_thread::sleep_for(idle_sleep);
      // While trials run, their ends are noticed within 2 ms (a poll costs microseconds); an
      // idle agent backs off to 20 ms.
      const auto cap = std::chrono::microseconds(agent.running_trials() > 0 ? 2000 : 20000);
      idle_sleep = std::min(idle_sleep * 2, cap);
    }
  }
}

}  // namespace scaletune::sweep
