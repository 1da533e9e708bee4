#include "orchestrator/sweep/local_agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "orchestrator/sweep/agent_loop.h"

namespace scaletune::sweep {

LocalAgent::LocalAgent(AgentOptions options, std::unique_ptr<Transport> endpoint,
                       const std::atomic<bool>& abort)
    : endpoint_(std::move(endpoint)) {
  Transport* t = endpoint_.get();
  agent_ =
      std::make_unique<Agent>(std::move(options), [t](const nlohmann::json& m) { t->send(0, m); });
  thread_ = std::thread([this, &abort] {
    try {
      run_agent(*endpoint_, *agent_, abort, 0);
    } catch (const std::exception& e) {
      spdlog::error("local agent: {}", e.what());
    }
  });
}

LocalAgent::~LocalAgent() {
  if (thread_.joinable()) thread_.join();
}

void MergedTransport::send(int to, const nlohmann::json& message) {
  if (to == local_rank())
    local_->send(1, message);
  else
    outer_.send(to, message);
}

std::vector<int> MergedTransport::wait_fds() const {
  std::vector<int> fds = local_->wait_fds();
  for (int fd : outer_.wait_fds()) fds.push_back(fd);
  return fds;
}

std::chrono::microseconds MergedTransport::poll_interval() {
  const auto outer = outer_.poll_interval();
  const auto local = local_->poll_interval();
  if (outer.count() == 0) return local;
  if (local.count() == 0) return outer;
  return std::min(outer, local);
}

std::optional<Envelope> MergedTransport::try_receive() {
  local_first_ = !local_first_;
  for (int i = 0; i < 2; ++i) {
    const bool local = (i == 0) == local_first_;
    if (local) {
      if (auto e = local_->try_receive()) {
        e->from = local_rank();
        return e;
      }
    } else if (auto e = outer_.try_receive()) {
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace scaletune::sweep
