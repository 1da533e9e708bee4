#include "orchestrator/sweep/orchestrator.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "orchestrator/config/binder.h"
#include "orchestrator/sweep/events.h"
#include "orchestrator/sweep/sweep_plan.h"

namespace scaletune::sweep {
namespace {

namespace fs = std::filesystem;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string trial_dir_name(std::int64_t trial) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "trial-%06lld", static_cast<long long>(trial));
  return buf;
}

bool rank_failed(const RankExit& r) { return r.signal != 0 || r.code != 0; }

// The longest the orchestrator sleeps without a message: how late it may notice a stop request
// (set by a signal handler, which may run on another thread) or the end of the wall-time budget.
// Messages wake it at once (local agents) or within the MPI transport's poll interval.
constexpr std::chrono::microseconds kLongestWait = std::chrono::milliseconds(50);

}  // namespace

Orchestrator::Orchestrator(const SweepConfig& config, Searcher& searcher, SweepRecords& records,
                           Transport& transport, OrchestratorOptions options)
    : config_(config),
      searcher_(searcher),
      records_(records),
      transport_(transport),
      options_(std::move(options)),
      budget_(config.budget),
      progress_(options_.terminal, config.log_interval_seconds) {}

double Orchestrator::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

int Orchestrator::agent_index(int rank) const {
  auto it = agent_of_rank_.find(rank);
  return it == agent_of_rank_.end() ? -1 : it->second;
}

void Orchestrator::await_agents() {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(options_.hello_timeout_seconds);
  std::set<int> expected(options_.agent_ranks.begin(), options_.agent_ranks.end());
  while (agents_.size() < expected.size()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("only " + std::to_string(agents_.size()) + " of " +
                               std::to_string(expected.size()) + " agents reported within " +
                               std::to_string(options_.hello_timeout_seconds) + " s");
    auto e = transport_.try_receive();
    if (!e) {
      wait_for_events(transport_, {}, kLongestWait);
      continue;
    }
    if (message_type(e->message) != "hello" || !expected.count(e->from)) {
      spdlog::warn("orchestrator: unexpected '{}' from rank {} before start",
                   message_type(e->message), e->from);
      continue;
    }
    const Hello h = decode_hello(e->message);
    AgentSlots a;
    a.rank = e->from;
    a.host = h.host;
    a.slots = h.slots;
    a.occupant.assign(h.slots.size(), -1);
    agent_of_rank_[e->from] = static_cast<int>(agents_.size());
    agents_.push_back(std::move(a));
    spdlog::info("agent rank {} on {}: {} slot(s) ({})", e->from, h.host, h.slots.size(),
                 h.slots.empty() ? "none" : h.slots.front().device);
  }
}

SweepEnd Orchestrator::run(const std::atomic<int>& stop_requests) {
  started_ = std::chrono::steady_clock::now();
  await_agents();
  std::map<std::string, int> agents_on_host;
  for (const auto& a : agents_)
    if (++agents_on_host[a.host] == 2) shared_hosts_.insert(a.host);
  std::vector<int> counts;
  for (const auto& a : agents_) counts.push_back(a.total());
  const std::string fit = check_allocation(config_.resources, counts);
  if (!fit.empty()) {
    for (const auto& a : agents_) transport_.send(a.rank, encode(Shutdown{SIGTERM, 1}));
    std::set<int> waiting(options_.agent_ranks.begin(), options_.agent_ranks.end());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!waiting.empty() && std::chrono::steady_clock::now() < deadline) {
      if (auto e = transport_.try_receive()) {
        if (message_type(e->message) == "bye") waiting.erase(e->from);
      } else {
        wait_for_events(transport_, {}, kLongestWait);
      }
    }
    throw config::ConfigError({{"resources", "resources", fit}});
  }
  restore();

  const auto loop_started = std::chrono::steady_clock::now();
  const double cpu_at_start = thread_cpu_seconds();
  const double search_at_start = suggest_seconds_ + save_seconds_;
  while (true) {
    bool busy = false;
    while (auto e = transport_.try_receive()) {
      handle(*e);
      busy = true;
    }
    const int stops = stop_requests.load();
    if (stops >= 1 && !stopping_) {
      stopping_ = true;
      spdlog::warn("sweep {}: stop requested; no new trials; running trials: {} ({})", config_.name,
                   running_.size(), config_.resources.on_stop);
      if (config_.resources.on_stop != "finish") stop_running(config_.resources.on_stop == "kill");
    }
    if (stops >= 2 && !killing_) {
      killing_ = true;
      spdlog::warn("sweep {}: second stop request; killing running trials", config_.name);
      stop_running(true);
    }
    if (!stopping_) busy = fill_slots() || busy;
    const bool exhausted =
        !budget_blocked_.empty() ||
        !budget_
             .exhausted(static_cast<std::int64_t>(running_.size() + pending_.size()), elapsed(),
                        committed())
             .empty();
    if (running_.empty() && (stopping_ || (exhausted && pending_.empty()))) break;
    progress_.update(progress_state());
    // After activity look once more at once (a reply may already be queued); otherwise sleep
    // until a message comes, or at most kLongestWait (stop requests, the wall-time budget).
    if (!busy) {
      auto wait = kLongestWait;
      if (config_.budget.max_wall_seconds > 0)
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::duration<double>(
                                      std::max(0.0, config_.budget.max_wall_seconds - elapsed()))));
      wait_for_events(transport_, {}, wait);
    }
  }
  {
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_started).count();
    const double cpu = thread_cpu_seconds() - cpu_at_start;
    const double search = suggest_seconds_ + save_seconds_ - search_at_start;
    spdlog::info(
        "sweep {}: orchestrator loop CPU {:.3f} s over {:.2f} s ({:.2f}% of a core); searcher "
        "(wall) {:.3f} s of it",
        config_.name, cpu, wall, wall > 0 ? 100 * cpu / wall : 0.0, search);
  }
  if (!stopping_) {
    const std::string why =
        budget_blocked_.empty()
            ? budget_.exhausted(static_cast<std::int64_t>(pending_.size()), elapsed())
            : budget_blocked_;
    spdlog::info("sweep {}: budget spent ({})", config_.name, why);
  }
  save_state();

  // Shut the agents down; trials still ending are recorded (or queued for resume).
  std::set<int> waiting;
  for (const auto& a : agents_) {
    transport_.send(a.rank, encode(Shutdown{SIGTERM, config_.resources.stop_grace_seconds}));
    waiting.insert(a.rank);
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(config_.resources.stop_grace_seconds + 30);
  while (!waiting.empty() && std::chrono::steady_clock::now() < deadline) {
    if (auto e = transport_.try_receive()) {
      if (message_type(e->message) == "bye")
        waiting.erase(e->from);
      else
        handle(*e);
    } else {
      wait_for_events(transport_, {}, kLongestWait);
    }
  }
  if (!waiting.empty()) spdlog::warn("{} agent(s) did not say goodbye", waiting.size());
  // Suggestions that never started are forgotten on resume; the state keeps everything else.
  save_state();
  progress_.finish(progress_state());
  spdlog::info(
      "sweep {}: {} suggestions took {:.3f} s ({:.2f} ms each); searcher state saves "
      "{:.3f} s",
      config_.name, suggestions_, suggest_seconds_,
      suggestions_ ? 1e3 * suggest_seconds_ / suggestions_ : 0.0, save_seconds_);
  return stopping_ ? SweepEnd::kStopped : SweepEnd::kCompleted;
}

void Orchestrator::handle(const Envelope& e) {
  try {
    const std::string type = message_type(e.message);
    if (type == "launched") return on_launched(decode_launched(e.message));
    if (type == "launch_failed") return on_launch_failed(e.from, decode_launch_failed(e.message));
    if (type == "ended") return on_ended(e.from, decode_ended(e.message));
    if (type == "bye") return;
    spdlog::warn("orchestrator: ignoring a '{}' message from rank {}", type, e.from);
  } catch (const std::invalid_argument& ex) {
    spdlog::error("orchestrator: bad message from rank {}: {}", e.from, ex.what());
  }
}

void Orchestrator::on_launched(const Launched& m) {
  auto it = running_.find(m.trial);
  if (it == running_.end() || it->second.launch.attempt != m.attempt) return;
  Running& r = it->second;
  r.parts[0].launched = true;
  r.launch.master_addr = m.master_addr;
  r.launch.master_port = m.master_port;
  for (std::size_t i = 1; i < r.parts.size(); ++i) {
    LaunchTrial part = r.launch;
    part.ranks = r.parts[i].ranks;
    transport_.send(agents_[static_cast<std::size_t>(r.parts[i].agent)].rank, encode(part));
    r.parts[i].launched = true;
  }
}

void Orchestrator::on_launch_failed(int from, const LaunchFailed& m) {
  auto it = running_.find(m.trial);
  if (it == running_.end() || it->second.launch.attempt != m.attempt) return;
  Running& r = it->second;
  const int agent = agent_index(from);
  r.launch_failure = m.reason + " (on " + (agent >= 0 ? agents_[agent].host : "?") + ")";
  for (auto& part : r.parts) {
    if (part.agent == agent && !part.ended) {
      part.ended = true;
    } else if (!part.launched) {
      part.ended = true;  // never started
    } else if (!part.ended && !r.peers_stopped) {
      transport_.send(agents_[static_cast<std::size_t>(part.agent)].rank,
                      encode(StopTrial{m.trial, m.attempt, SIGTERM, 5}));
    }
  }
  r.peers_stopped = true;
  finish_attempt(m.trial);
}

void Orchestrator::on_ended(int from, const TrialEnded& m) {
  auto it = running_.find(m.trial);
  if (it == running_.end() || it->second.launch.attempt != m.attempt) return;
  Running& r = it->second;
  const int agent = agent_index(from);
  bool failed = false;
  for (auto& part : r.parts) {
    if (part.agent != agent || part.ended) continue;
    part.ended = true;
    part.end = m;
    for (const auto& x : m.ranks) failed = failed || rank_failed(x);
    break;
  }
  if (failed && !r.peers_stopped) {
    // The trial's other ranks would wait forever in their next collective.
    r.peers_stopped = true;
    for (const auto& part : r.parts)
      if (part.launched && !part.ended)
        transport_.send(agents_[static_cast<std::size_t>(part.agent)].rank,
                        encode(StopTrial{m.trial, m.attempt, SIGTERM, 5}));
  }
  finish_attempt(m.trial);
}

void Orchestrator::finish_attempt(std::int64_t trial) {
  auto it = running_.find(trial);
  for (const auto& part : it->second.parts)
    if (!part.ended) return;
  Running r = std::move(it->second);
  running_.erase(it);
  for (const auto& part : r.parts)
    for (const auto& rank : part.ranks)
      agents_[static_cast<std::size_t>(part.agent)].occupant[static_cast<std::size_t>(rank.slot)] =
          -1;

  // One view of the attempt: rank 0's result, every rank's exit.
  TrialEnded merged;
  Classification c;
  if (r.parts[0].end) {
    merged = *r.parts[0].end;
    for (std::size_t i = 1; i < r.parts.size(); ++i) {
      if (!r.parts[i].end) continue;
      const TrialEnded& e = *r.parts[i].end;
      merged.ranks.insert(merged.ranks.end(), e.ranks.begin(), e.ranks.end());
      merged.timed_out = merged.timed_out || e.timed_out;
      merged.stop_requested = merged.stop_requested || e.stop_requested;
      merged.wall_seconds = std::max(merged.wall_seconds, e.wall_seconds);
    }
  }
  if (!r.launch_failure.empty()) {
    c = {Outcome::kInfraFailure, "launch", "launch failed: " + r.launch_failure, std::nullopt};
  } else if (!r.parts[0].end) {
    c = {Outcome::kInfraFailure, "killed", "rank 0 ended without a report", std::nullopt};
  } else {
    c = classify(merged, config_.objective);
  }

  Pending next = r.p;
  next.attempt += 1;
  next.has_row = true;
  if (c.outcome == Outcome::kInterrupted && !stopping_) {
    // Not asked for by this sweep (someone else stopped it): an infrastructure failure.
    c.outcome = Outcome::kInfraFailure;
    c.failure_kind = "killed";
    c.reason = "stopped from outside: " + c.reason;
  }
  switch (c.outcome) {
    case Outcome::kSuccess:
    case Outcome::kHyperFailure:
      record(r, c, merged);
      break;
    case Outcome::kInterrupted:
      // Resumed later in the same trial directory (trainers resume from their checkpoints).
      records_.append(row_for(r, c, merged));
      pending_.push_back(std::move(next));
      break;
    case Outcome::kInfraFailure:
      next.failures += 1;
      if (next.failures <= config_.resources.max_retries) {
        spdlog::warn("trial {} attempt {}: {} ({}); retrying on other slots ({}/{})", r.p.trial,
                     r.p.attempt, c.failure_kind, c.reason, next.failures,
                     config_.resources.max_retries);
        for (const auto& part : r.parts)
          for (const auto& rank : part.ranks) next.avoid.insert({part.agent, rank.slot});
        records_.append(row_for(r, c, merged));  // every failure's reason and log is kept
        pending_.push_back(std::move(next));
      } else {
        record(r, c, merged);
      }
      break;
  }
}

std::vector<std::string> Orchestrator::slot_names(const std::vector<Part>& parts) const {
  std::vector<std::pair<int, std::string>> ranks;
  for (const auto& part : parts)
    for (const auto& rank : part.ranks) {
      const AgentSlots& a = agents_[static_cast<std::size_t>(part.agent)];
      const Slot& slot = a.slots[static_cast<std::size_t>(rank.slot)];
      // GPUs by their device ("cuda:3", unique on a node: agents split its GPUs); CPU slots,
      // which all say "cpu", by their index, and by the agent's rank when agents share a host.
      std::string name = a.host + "/";
      if (slot.gpu >= 0) {
        name += slot.device;
      } else {
        if (shared_hosts_.count(a.host)) name += "rank" + std::to_string(a.rank) + "/";
        name += slot.device + ":" + std::to_string(slot.index);
      }
      ranks.push_back({rank.rank, std::move(name)});
    }
  std::sort(ranks.begin(), ranks.end());
  std::vector<std::string> names;
  for (auto& [rank, name] : ranks) names.push_back(std::move(name));
  return names;
}

TrialRow Orchestrator::row_for(const Running& r, const Classification& c,
                               const TrialEnded& rank0) const {
  TrialRow row;
  row.trial = r.p.trial;
  row.suggestion_id = r.p.suggestion_id;
  row.attempt = r.p.attempt;
  row.status = to_string(c.outcome);
  row.failure_kind = c.failure_kind;
  row.reason = c.reason;
  row.params = r.p.params;
  row.devices = r.p.devices;
  row.host = rank0.host;
  row.slots = slot_names(r.parts);
  if (row.host.empty() && !r.parts.empty())
    row.host = agents_[static_cast<std::size_t>(r.parts[0].agent)].host;
  row.start_unix = r.start_unix;
  row.end_unix = unix_now();
  row.wall_seconds = rank0.wall_seconds;
  row.dir = r.launch.dir;
  row.log_path = rank0.log_path;
  row.device_seconds = rank0.wall_seconds * r.p.devices;
  if (c.result) {
    const trainer::TrainResult& res = *c.result;
    const std::string objective = config_.objective.empty() ? res.objective : config_.objective;
    auto m = res.metrics.find(objective);
    if (m != res.metrics.end()) row.objective = m->second;
    row.cost = cost_value(res, config_.cost_metric());
    row.flops = res.cost.flops;
    row.flops_6n = res.cost.flops_6n;
    row.tokens = res.cost.tokens;
    if (res.cost.device_seconds > 0) row.device_seconds = res.cost.device_seconds;
    row.curve = res.curve;
    row.metrics = res.metrics;
  }
  return row;
}

void Orchestrator::count(const TrialRow& row) {
  budget_.add(std::isfinite(row.cost) ? row.cost : 0, std::isfinite(row.flops) ? row.flops : 0,
              std::isfinite(row.device_seconds) ? row.device_seconds : 0);
  recorded_devices_ += row.devices;
  budget_blocked_.clear();  // what was spent changed: a refused suggestion may fit now
  if (row.status == "ok") {
    const int decade = static_cast<int>(std::floor(std::log10(row.cost)));
    auto [it, inserted] = best_by_decade_.emplace(decade, row.objective);
    const bool minimize = config_.search.direction != "maximize";
    if (!inserted)
      it->second =
          minimize ? std::min(it->second, row.objective) : std::max(it->second, row.objective);
  } else {
    ++failed_;
  }
}

void Orchestrator::record(const Running& r, const Classification& c, const TrialEnded& rank0) {
  TrialRow row = row_for(r, c, rank0);
  if (c.outcome == Outcome::kSuccess && !(std::isfinite(row.cost) && row.cost > 0)) {
    spdlog::warn(
        "trial {}: cost metric '{}' missing or not positive in its result; counting "
        "device-seconds ({:.3g}) instead",
        row.trial, config_.cost_metric(), row.device_seconds);
    row.cost = std::max(row.device_seconds, 1e-9);
  }
  records_.append(row);
  count(row);

  // Teach the searcher (hyper-parameter outcomes) or make it forget (infrastructure).
  try {
    if (row.status == "infra_failed") {
      searcher_.forget(row.suggestion_id);
    } else {
      search::Observation o;
      o.suggestion_id = row.suggestion_id;
      o.output = row.status == "ok" ? row.objective : trainer::kNaN;
      o.failed = row.status != "ok";
      // A failure without a cost (a crash) feeds only the success model, which ignores costs.
      o.cost = std::isfinite(row.cost) && row.cost > 0 ? row.cost : 1.0;
      searcher_.observe(o);
    }
  } catch (const search::SearchError& e) {
    spdlog::error("trial {}: the searcher rejected its result: {}", row.trial, e.what());
  }
  state_dirty_ = true;
  spdlog::info("trial {} {}{}{} | objective {:.5g} | cost {:.3g} | {:.2f} s | {}", row.trial,
               row.status, row.failure_kind.empty() ? "" : " ", row.failure_kind, row.objective,
               row.cost, row.wall_seconds, row.status == "ok" ? row.dir : row.reason);
  if (options_.on_record) options_.on_record(row);
  if (options_.refit && config_.scaling.refit_every > 0) {
    rows_for_refit_.push_back(row);
    if (++observations_since_refit_ >= config_.scaling.refit_every) {
      observations_since_refit_ = 0;
      try {
        const std::string fit = options_.refit(rows_for_refit_);
        if (!fit.empty()) records_.put_text(kScalingKey, fit);
      } catch (const std::exception& e) {
        spdlog::warn("scaling-law refit failed: {}", e.what());
      }
    }
  }
}

bool Orchestrator::try_start(Pending& p) {
  std::optional<Placement> placement;
  bool avoid = false;
  if (!p.avoid.empty()) {
    // A retry runs on slots that did not fail before, and waits for them when the allocation
    // has enough of them; only otherwise it may reuse a failed slot.
    std::vector<AgentSlots> view = agents_;
    for (const auto& [agent, slot] : p.avoid)
      if (view[static_cast<std::size_t>(agent)].occupant[static_cast<std::size_t>(slot)] == -1)
        view[static_cast<std::size_t>(agent)].occupant[static_cast<std::size_t>(slot)] = -2;
    placement = place(view, p.devices, config_.resources.span_nodes);
    std::vector<AgentSlots> usable;
    for (std::size_t a = 0; a < agents_.size(); ++a) {
      AgentSlots u;
      for (std::size_t s = 0; s < agents_[a].slots.size(); ++s)
        if (!p.avoid.count({static_cast<int>(a), static_cast<int>(s)}))
          u.slots.push_back(agents_[a].slots[s]);
      u.occupant.assign(u.slots.size(), -1);
      usable.push_back(std::move(u));
    }
    avoid = could_ever_fit(usable, p.devices, config_.resources.span_nodes);
  }
  if (!placement && !avoid) placement = place(agents_, p.devices, config_.resources.span_nodes);
  if (!placement) return false;

  Running r;
  r.p = p;
  r.p.has_row = true;
  r.start_unix = unix_now();
  const YAML::Node cfg = trial_config(config_, p.trial, p.params);
  r.launch = launch_for(config_, p.trial, p.attempt, p.params, cfg,
                        (fs::path(options_.trials_dir) / trial_dir_name(p.trial)).string());
  r.launch.world_size = p.devices;
  for (const auto& part : placement->parts) {
    Part mine;
    mine.agent = part.agent;
    mine.ranks = part.ranks;
    r.parts.push_back(std::move(mine));
  }
  occupy(agents_, *placement, p.trial);

  // Durable before it starts: a resumed sweep re-queues it.
  TrialRow row;
  row.trial = p.trial;
  row.suggestion_id = p.suggestion_id;
  row.attempt = p.attempt;
  row.status = "running";
  row.params = p.params;
  row.devices = p.devices;
  row.host = agents_[static_cast<std::size_t>(r.parts[0].agent)].host;
  row.slots = slot_names(r.parts);
  row.start_unix = r.start_unix;
  row.dir = r.launch.dir;
  row.log_path = (fs::path(r.launch.dir) / "rank0.log").string();
  records_.append(row);

  LaunchTrial first = r.launch;
  first.ranks = r.parts[0].ranks;
  first.master_addr.clear();
  first.master_port = 0;
  const int to = agents_[static_cast<std::size_t>(r.parts[0].agent)].rank;
  running_.emplace(p.trial, std::move(r));
  transport_.send(to, encode(first));
  return true;
}

Spent Orchestrator::predict(const YAML::Node& trial_cfg, int devices, double searcher_cost) const {
  // Best first: the trainer's own count when the cost metric is one it knows (exact up to early
  // stops), then the searcher's prediction (CARBS models cost), then the mean of recorded trials.
  const CostEstimate e = estimate_cost(config_, trial_cfg);
  const std::string metric = config_.cost_metric();
  const double analytic = metric == "flops"            ? e.flops
                          : metric == "flops_6n"       ? e.flops_6n
                          : metric == "tokens"         ? e.tokens
                          : metric == "wall_seconds"   ? e.wall_seconds
                          : metric == "device_seconds" ? e.wall_seconds * devices
                                                       : trainer::kNaN;
  const Spent& spent = budget_.spent();
  const double n = static_cast<double>(spent.trials);
  Spent p;
  p.cost = std::isfinite(analytic)                             ? analytic
           : std::isfinite(searcher_cost) && searcher_cost > 0 ? searcher_cost
           : n > 0                                             ? spent.cost / n
                                                               : 0;
  p.flops = std::isfinite(e.flops) ? e.flops
            : metric == "flops"    ? p.cost
            : n > 0                ? spent.flops / n
                                   : 0;
  p.device_seconds = std::isfinite(e.wall_seconds) ? e.wall_seconds * devices
                     : recorded_devices_ > 0 ? spent.device_seconds / recorded_devices_ * devices
                                             : 0;
  return p;
}

Spent Orchestrator::committed() const {
  Spent c;
  auto add = [&c](const Spent& p) {
    c.cost += p.cost;
    c.flops += p.flops;
    c.device_seconds += p.device_seconds;
  };
  for (const auto& [id, r] : running_) add(r.p.predicted);
  for (const auto& p : pending_) add(p.predicted);
  return c;
}

bool Orchestrator::fill_slots() {
  bool started = false;
  // The oldest waiting trial (the head) has the first claim on free slots.
  while (!pending_.empty() && try_start(pending_.front())) {
    pending_.pop_front();
    backfill_asks_ = 0;
    started = true;
  }
  // Behind a head that does not fit, queued trials start where they fit. There are few of them
  // (the backfill asks below, retries, resumed trials), so the head is delayed by few trials.
  for (auto it = pending_.empty() ? pending_.end() : std::next(pending_.begin());
       it != pending_.end();) {
    if (try_start(*it)) {
      spdlog::debug("trial {} ({} devices) backfills idle slots; trial {} ({} devices) waits",
                    it->trial, it->devices, pending_.front().trial, pending_.front().devices);
      it = pending_.erase(it);
      started = true;
    } else {
      ++it;
    }
  }
  auto any_free = [&] {
    for (const auto& a : agents_)
      if (a.free() > 0) return true;
    return false;
  };
  // New suggestions while slots are free: any number when nothing waits; while a head waits,
  // `resources.backfill` of them, which run on the idle slots if they fit and queue otherwise.
  // Then the head is held: slots that free up wait for it, so it is never starved.
  while (any_free() && budget_blocked_.empty()) {
    if (!pending_.empty() && backfill_asks_ >= config_.resources.backfill) break;
    const std::string why = budget_.exhausted(
        static_cast<std::int64_t>(running_.size() + pending_.size()), elapsed(), committed());
    if (!why.empty()) break;
    const auto t0 = std::chrono::steady_clock::now();
    search::Suggestion s = searcher_.suggest();
    suggest_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++suggestions_;
    Pending p;
    p.trial = next_trial_;
    p.suggestion_id = s.id;
    p.params = s.params;
    const YAML::Node cfg = trial_config(config_, p.trial, p.params);
    try {
      p.devices = devices_for(config_.resources, cfg);
    } catch (const std::exception& e) {
      spdlog::error("trial {}: {}; using devices_per_trial", p.trial, e.what());
      p.devices = config_.resources.devices_per_trial;
    }
    p.predicted = predict(cfg, p.devices, s.predicted_cost);
    const std::string over = budget_.would_exceed(committed(), p.predicted);
    if (!over.empty()) {
      // Never started, never recorded: the searcher forgets it, and no suggestion is made until
      // a trial ends (then the spent and predicted costs have changed).
      spdlog::info("sweep {}: not starting a trial that would overshoot the budget ({})",
                   config_.name, over);
      searcher_.forget(s.id);
      budget_blocked_ = over;
      state_dirty_ = true;
      break;
    }
    ++next_trial_;
    if (!pending_.empty()) ++backfill_asks_;
    save_state();  // every observation and this outstanding suggestion, before it runs
    if (try_start(p)) {
      started = true;
      continue;
    }
    if (pending_.empty()) backfill_asks_ = 0;  // a new head: it gets its own backfill asks
    pending_.push_back(std::move(p));
  }
  return started;
}

void Orchestrator::save_state() {
  const auto t0 = std::chrono::steady_clock::now();
  records_.put_text(kSearchStateKey, searcher_.save_state());
  save_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state_dirty_ = false;
}

void Orchestrator::restore() {
  const std::vector<TrialRow> rows = records_.rows();
  std::map<std::int64_t, const TrialRow*> latest;
  std::map<std::int64_t, int> failures;
  for (const auto& row : rows) {
    latest[row.trial] = &row;
    next_trial_ = std::max(next_trial_, row.trial + 1);
    if (row.status == "infra_failed") ++failures[row.trial];
  }
  std::unordered_map<std::string, const TrialRow*> by_suggestion;
  for (const auto& [id, row] : latest) {
    by_suggestion[row->suggestion_id] = row;
    const bool final = row->final() && (row->status != "infra_failed" ||
                                        failures[id] > config_.resources.max_retries);
    if (!final) continue;
    count(*row);
    if (options_.refit && config_.scaling.refit_every > 0) rows_for_refit_.push_back(*row);
  }
  if (!options_.resume) return;
  std::size_t replayed = 0, forgotten = 0;
  for (const auto& id : searcher_.outstanding_ids()) {
    auto found = by_suggestion.find(id);
    if (found == by_suggestion.end()) {
      searcher_.forget(id);  // suggested, never started
      ++forgotten;
      continue;
    }
    const TrialRow& t = *found->second;
    const int failed = failures[t.trial];
    if (!t.final() || (t.status == "infra_failed" && failed <= config_.resources.max_retries)) {
      Pending p;
      p.trial = t.trial;
      p.suggestion_id = id;
      p.params = t.params;
      p.attempt = t.attempt + 1;
      p.failures = failed;
      p.devices = t.devices;
      p.has_row = true;
      p.predicted = predict(trial_config(config_, p.trial, p.params), p.devices, trainer::kNaN);
      pending_.push_back(std::move(p));
      continue;
    }
    // Recorded, but the kill came before the searcher's state was saved: teach it now.
    if (t.status == "infra_failed") {
      searcher_.forget(id);
    } else {
      search::Observation o;
      o.suggestion_id = id;
      o.output = t.status == "ok" ? t.objective : trainer::kNaN;
      o.failed = t.status != "ok";
      o.cost = std::isfinite(t.cost) && t.cost > 0 ? t.cost : 1.0;
      searcher_.observe(o);
    }
    ++replayed;
  }
  for (const auto& [id, row] : latest)
    if (!row->final()) {
      bool queued = false;
      for (const auto& p : pending_) queued = queued || p.trial == id;
      if (!queued)
        spdlog::warn("trial {} was {} but the searcher does not know it; not re-run", id,
                     row->status);
    }
  spdlog::info("resuming sweep {}: {} trial(s) recorded, {} re-queued, {} replayed, {} forgotten",
               config_.name, latest.size(), pending_.size(), replayed, forgotten);
  state_dirty_ = true;
}

void Orchestrator::stop_running(bool kill) {
  for (auto& [id, r] : running_) {
    for (const auto& part : r.parts) {
      if (!part.launched || part.ended) continue;
      StopTrial s{id, r.launch.attempt, kill ? SIGKILL : SIGTERM,
                  kill ? 0.0 : config_.resources.stop_grace_seconds};
      transport_.send(agents_[static_cast<std::size_t>(part.agent)].rank, encode(s));
    }
    r.stop_sent = true;
  }
}

ProgressState Orchestrator::progress_state() const {
  ProgressState s;
  s.name = config_.name;
  s.done = budget_.spent().trials;
  s.failed = failed_;
  s.running = static_cast<std::int64_t>(running_.size());
  s.budget_fraction = budget_.fraction_used(elapsed());
  s.elapsed_seconds = elapsed();
  s.minimize = config_.search.direction != "maximize";
  s.best_by_decade = best_by_decade_;
  return s;
}

}  // namespace scaletune::sweep
