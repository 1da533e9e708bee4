// The main loop of an agent-only rank: receive, act, watch trials, until shut down.
#pragma once

#include <atomic>

#include "orchestrator/sweep/agent.h"
#include "orchestrator/sweep/transport.h"

namespace scaletune::sweep {

// Says hello to the orchestrator (rank `orchestrator`), then serves it until it sends Shutdown
// and every trial has ended. If `abort_requested` becomes true (e.g. SIGTERM), the agent shuts
// its trials down by itself. Between events it sleeps in wait_for_events() (events.h) on the
// transport and the ranks' pidfds: a message or a rank's exit wakes it within microseconds (MPI:
// within the transport's poll interval), and it uses no CPU while trials run.
void run_agent(Transport& transport, Agent& agent, const std::atomic<bool>& abort_requested,
               int orchestrator = 0);

}  // namespace scaletune::sweep
