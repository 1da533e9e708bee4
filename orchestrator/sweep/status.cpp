#include "orchestrator/sweep/status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "orchestrator/search/carbs.h"
#include "orchestrator/sweep/budget.h"
#include "orchestrator/sweep/progress.h"
#include "orchestrator/sweep/sweep_config.h"
#include "orchestrator/sweep/trial_config.h"

namespace scaletune::sweep {
namespace {

std::string number(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

std::string percent(double f) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.0f%%", 100 * f);
  return buf;
}

}  // namespace

std::string format_status(const store::Records& records) {
  std::ostringstream out;
  std::optional<SweepConfig> config;
  try {
    config = config::bind<SweepConfig>(
        config::Document::parse(records.meta.config_yaml, records.path + " (stored config)"));
  } catch (const std::exception&) {
    // An older or hand-made file: show what the trials say without the budget.
  }
  const auto trials = records.latest_trials();
  std::map<std::string, int> by_status;
  std::map<std::string, int> by_kind;
  Spent spent;
  double first_start = INFINITY, last_end = -INFINITY;
  for (const auto& t : trials) {
    const std::string status = store::to_string(t.status);
    by_status[status] += 1;
    if (!t.failure_kind.empty() && status != "ok" && status != "running")
      by_kind[t.failure_kind] += 1;
    if (std::isfinite(t.start_time)) first_start = std::min(first_start, t.start_time);
    if (std::isfinite(t.end_time)) last_end = std::max(last_end, t.end_time);
    if (status == "ok" || status == "failed" || status == "infra_failed") {
      spent.trials += 1;
      if (std::isfinite(t.cost)) spent.cost += t.cost;
      if (std::isfinite(t.flops)) spent.flops += t.flops;
      if (std::isfinite(t.device_seconds)) spent.device_seconds += t.device_seconds;
    }
  }
  const std::string name = config ? config->name : records.path;
  out << "sweep " << name << " (" << records.path << ")\n";
  out << "trials: " << spent.trials << " done (" << by_status["ok"] << " ok, "
      << by_status["failed"] << " failed, " << by_status["infra_failed"] << " infra_failed), "
      << by_status["running"] << " running, " << by_status["interrupted"]
      << " interrupted (resume re-runs them)\n";
  if (!by_kind.empty()) {
    out << "failures:";
    for (const auto& [kind, n] : by_kind) out << " " << kind << " " << n;
    out << "\n";
  }
  out << "spent: cost " << number(spent.cost) << " (" << records.meta.cost_metric << "), flops "
      << number(spent.flops) << ", device-hours " << number(spent.device_seconds / 3600) << "\n";
  if (config) {
    Budget budget(config->budget);
    budget.restore(spent);
    const BudgetConfig& l = config->budget;
    out << "budget: " << percent(budget.fraction_used(0)) << " of the tightest limit (";
    std::string sep;
    if (l.max_trials > 0) {
      out << sep << spent.trials << "/" << l.max_trials << " trials";
      sep = ", ";
    }
    if (l.max_cost > 0) {
      out << sep << "cost " << number(spent.cost) << "/" << number(l.max_cost);
      sep = ", ";
    }
    if (l.max_flops > 0) {
      out << sep << "flops " << number(spent.flops) << "/" << number(l.max_flops);
      sep = ", ";
    }
    if (l.max_device_hours > 0) {
      out << sep << "device-hours " << number(spent.device_seconds / 3600) << "/"
          << number(l.max_device_hours);
      sep = ", ";
    }
    if (l.max_wall_seconds > 0)
      out << sep << "wall time limit " << format_duration(l.max_wall_seconds);
    out << ")\n";
  }
  if (std::isfinite(first_start) && std::isfinite(last_end) && last_end > first_start)
    out << "elapsed: " << format_duration(last_end - first_start) << " (first start to last end)\n";

  // The Pareto front of the successful trials; repeats of the same settings form one group.
  std::vector<double> outputs, costs;
  std::vector<std::size_t> group_of;
  std::vector<const store::TrialRecord*> ok;
  std::map<std::map<std::string, double>, std::size_t> groups;
  for (const auto& t : trials) {
    if (t.status != store::TrialStatus::kOk || !std::isfinite(t.objective) ||
        !std::isfinite(t.cost))
      continue;
    outputs.push_back(t.objective);
    costs.push_back(t.cost);
    group_of.push_back(groups.emplace(t.params, groups.size()).first->second);
    ok.push_back(&t);
  }
  search::FrontOptions front;
  front.sign = records.meta.direction == "maximize" ? 1 : -1;
  if (config) {
    front.min_cost_fraction = config->search.carbs.min_pareto_cost_fraction;
    front.conservative = config->search.carbs.conservative_pareto;
  }
  const auto groups_on_front = search::pareto_front(outputs, costs, group_of, front);
  out << "pareto front (" << groups_on_front.size() << " point(s), " << records.meta.direction
      << " " << records.meta.objective << "):\n";
  if (groups_on_front.empty()) return out.str();
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"trial", "cost", "objective", "n"};
  for (const auto& p : records.meta.params) header.push_back(p);
  table.push_back(header);
  for (const auto& g : groups_on_front) {
    const store::TrialRecord& t = *ok[g.members.front()];
    std::vector<std::string> row = {std::to_string(t.trial_id), number(g.mean_cost),
                                    number(g.mean_output), std::to_string(g.members.size())};
    for (const auto& p : records.meta.params) {
      auto it = t.params.find(p);
      row.push_back(it == t.params.end() ? "-" : number(it->second));
    }
    table.push_back(std::move(row));
  }
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : table)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (const auto& row : table) {
    out << " ";
    for (std::size_t i = 0; i < row.size(); ++i)
      out << " " << std::string(width[i] - row[i].size(), ' ') << row[i];
    out << "\n";
  }
  return out.str();
}

}  // namespace scaletune::sweep
