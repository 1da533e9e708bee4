// Pareto front of (output, cost) observations with the cheap-cost bucket and the conservative
// rule (carbs.md §5).
#include <algorithm>
#include <limits>
#include <map>

#include "orchestrator/search/carbs.h"
#include "orchestrator/search/stats.h"

namespace scaletune::search {

std::vector<FrontGroup> pareto_front(const std::vector<double>& outputs,
                                     const std::vector<double>& costs,
                                     const std::vector<std::size_t>& group_of,
                                     const FrontOptions& options) {
  const std::size_t n = outputs.size();
  if (n == 0) return {};
  // Groups in order of first appearance.
  struct Group {
    FrontGroup g;
    double best_signed = -std::numeric_limits<double>::infinity();  // best individual sample
  };
  std::vector<Group> groups;
  std::map<std::size_t, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t key = group_of.empty() ? i : group_of[i];
    auto [it, added] = index.emplace(key, groups.size());
    if (added) groups.emplace_back();
    Group& gr = groups[it->second];
    gr.g.members.push_back(i);
    gr.best_signed = std::max(gr.best_signed, options.sign * outputs[i]);
  }
  for (auto& gr : groups) {
    double so = 0, sc = 0;
    for (std::size_t i : gr.g.members) {
      so += outputs[i];
      sc += costs[i];
    }
    gr.g.mean_output = so / static_cast<double>(gr.g.members.size());
    gr.g.mean_cost = sc / static_cast<double>(gr.g.members.size());
  }
  const double threshold = quantile_linear(costs, options.min_cost_fraction);
  auto signed_mean = [&](const Group& gr) { return options.sign * gr.g.mean_output; };

  // 1. The cheap bucket: its best group (conservative: among multi-sample groups if any).
  std::vector<const Group*> cheap;
  bool any_multi = false;
  for (const auto& gr : groups)
    if (gr.g.mean_cost <= threshold) {
      cheap.push_back(&gr);
      any_multi = any_multi || gr.g.members.size() >= 2;
    }
  const Group* first = nullptr;
  for (const Group* gr : cheap) {
    if (options.conservative && any_multi && gr->g.members.size() < 2) continue;
    if (!first || signed_mean(*gr) > signed_mean(*first)) first = gr;
  }
  // The bucket can be empty when repeated groups have mixed costs (the reference raises there);
  // the cheapest group then starts the front.
  std::vector<const Group*> rest;
  for (const auto& gr : groups)
    if (gr.g.mean_cost > threshold) rest.push_back(&gr);
  std::stable_sort(rest.begin(), rest.end(),
                   [](const Group* a, const Group* b) { return a->g.mean_cost < b->g.mean_cost; });
  std::size_t start = 0;
  if (!first) first = rest[start++];

  // 2. Costlier groups in increasing cost, each kept only if it improves on the last kept one.
  std::vector<const Group*> front = {first};
  for (std::size_t k = start; k < rest.size(); ++k) {
    const Group* gr = rest[k];
    const Group* last = front.back();
    double bar = signed_mean(*last);
    // Conservative: one lucky sample must beat the last point's best sample, not its mean.
    if (options.conservative && gr->g.members.size() < 2) bar = last->best_signed;
    if (signed_mean(*gr) > bar) front.push_back(gr);
  }
  std::vector<FrontGroup> out;
  for (const Group* gr : front) out.push_back(gr->g);
  return out;
}

}  // namespace scaletune::search
