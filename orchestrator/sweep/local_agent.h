// An agent running in a thread of the orchestrator's process, and the transport that puts it
// next to the MPI ranks. Used for the embedded mode (no mpirun: one process runs the
// orchestrator and a local agent) and for `resources.trials_on_rank0` under MPI.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "orchestrator/sweep/agent.h"
#include "orchestrator/sweep/transport.h"

namespace scaletune::sweep {

// Runs run_agent() for `options` in its own thread, talking through `endpoint` to rank 0 of
// that endpoint's transport. The destructor waits for the agent to finish (it ends once the
// orchestrator sent Shutdown and every trial ended, or `abort` became true).
class LocalAgent {
 public:
  LocalAgent(AgentOptions options, std::unique_ptr<Transport> endpoint,
             const std::atomic<bool>& abort);
  ~LocalAgent();
  LocalAgent(const LocalAgent&) = delete;
  LocalAgent& operator=(const LocalAgent&) = delete;

 private:
  std::unique_ptr<Transport> endpoint_;
  std::unique_ptr<Agent> agent_;
  std::thread thread_;
};

// The orchestrator's view of `outer` (e.g. MPI, ranks 0..n-1) plus one extra rank n, whose
// messages go through `local` (rank 0 of a two-endpoint LocalHub whose rank 1 is the local
// agent). Rank numbers of `outer` are unchanged.
class MergedTransport : public Transport {
 public:
  MergedTransport(Transport& outer, std::unique_ptr<Transport> local)
      : outer_(outer), local_(std::move(local)) {}
  int rank() const override { return outer_.rank(); }
  int size() const override { return outer_.size() + 1; }
  int local_rank() const { return outer_.size(); }
  void send(int to, const nlohmann::json& message) override;
  std::optional<Envelope> try_receive() override;
  std::vector<int> wait_fds() const override;
  std::chrono::microseconds poll_interval() override;

 private:
  Transport& outer_;
  std::unique_ptr<Transport> local_;
  bool local_first_ = false;  // alternate so neither side starves
};

}  // namespace scaletune::sweep
