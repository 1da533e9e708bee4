// Search quality on the carbs.md §14 problems: CARBS against random search and a GP-free local
// search (CARBS' candidate sampler around the Pareto front without any model), side by side.
//
//   bench/search_quality [--seeds 10] [--n 100] [--problems a,b] [--parallel 1,4]
//                        [--own FRACTION] [--pending-origins 1|0] [--adaptive 1|0]
//                        [--grow N] [--shrink N] [--max-radius F]   (adaptive_radius settings)
//                        [--carbs key=value,...]   (numeric carbs: settings)
//                        [--budgets B1,B2]   (the two cost budgets; default per problem)
//                        [--trace 1]   (print every evaluation of seed 0)
//   (--own 0 --pending-origins 0 --adaptive 0: the reference's algorithm)
//
// For each problem, mode (1 or 4 suggestions outstanding, the oldest observed first) and method
// it prints median [min, max] over seeds of: best_obs_true (true value of the best *observed*
// success, what a user would deploy) after 25/50/100 evaluations and within two cost budgets,
// the Pareto-front regret (B1, B2), cumulative cost (failures included) and failure count.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <sstream>

#include "bench/search/problems.h"
#include "orchestrator/search/space.h"
#include "orchestrator/search/stats.h"

namespace scaletune::bench {
namespace {

struct Pick {
  std::string id;
  std::map<std::string, double> params;
  std::string kind;  // CARBS' suggestion kind ("random", "bo", ...); empty for the baselines
};

class Method {
 public:
  virtual ~Method() = default;
  virtual Pick suggest() = 0;
  virtual void observe(const Pick& p, const Eval& e) = 0;
};

class CarbsMethod : public Method {
 public:
  explicit CarbsMethod(const search::SearchConfig& c) : carbs_(c) {}
  Pick suggest() override {
    const auto s = carbs_.suggest();
    char radius[32];
    std::snprintf(radius, sizeof radius, "@r%.2g", carbs_.search_radius());
    return {s.id, s.params, std::string(search::kind_name(s.kind)) + radius};
  }
  void observe(const Pick& p, const Eval& e) override {
    search::Observation o;
    o.suggestion_id = p.id;
    o.output = e.observed;
    o.cost = e.cost;
    o.failed = e.failed;
    carbs_.observe(o);
  }

 private:
  search::Carbs carbs_;
};

// Uniform in each parameter's own space (log-uniform for log, ...) over the problem's box.
class RandomMethod : public Method {
 public:
  RandomMethod(const Problem& p, std::uint64_t seed)
      : space_(p.config.search), box_(p.box), rng_(seed) {}
  Pick suggest() override {
    Pick pick;
    for (int i = 0; i < space_.dims(); ++i) {
      const double lo = space_.basic_from_param(i, box_[i].first),
                   hi = space_.basic_from_param(i, box_[i].second);
      double v;
      do {
        v = space_.param_from_basic(i, rng_.uniform(lo, hi));
      } while (space_.spec(i).integer &&
               (v < search::param_min(space_.spec(i)) || v > search::param_max(space_.spec(i))));
      pick.params[space_.name(i)] = v;
    }
    return pick;
  }
  void observe(const Pick&, const Eval&) override {}

 private:
  search::Space space_;
  std::vector<std::pair<double, double>> box_;
  search::Rng rng_;
};

// GP-free local search: the random phase of CARBS, then Gaussian steps (radius r in basic units)
// from a uniformly chosen point of the current Pareto front (cheap bucket + conservative rule).
class LocalMethod : public Method {
 public:
  LocalMethod(const Problem& p, std::uint64_t seed)
      : space_(p.config.search), sign_(p.config.sign()), rng_(seed) {}
  Pick suggest() override {
    std::vector<std::vector<double>> origins;
    if (static_cast<int>(outs_.size()) < 4) {
      origins.push_back(space_.center_basic());
    } else {
      search::FrontOptions fo;
      fo.sign = sign_;
      for (const auto& g : search::pareto_front(outs_, costs_, {}, fo))
        origins.push_back(basics_[g.members[0]]);
    }
    const double r = 0.3;
    for (int attempt = 0; attempt < 10000; ++attempt) {
      const auto& o = origins[rng_.index(origins.size())];
      std::vector<double> x(o.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = space_.round_in_basic(static_cast<int>(i), o[i] + r * rng_.normal());
      if (!space_.inside(x.data())) continue;
      Pick pick;
      for (int i = 0; i < space_.dims(); ++i)
        pick.params[space_.name(i)] = space_.param_from_basic(i, x[static_cast<std::size_t>(i)]);
      return pick;
    }
    return {};
  }
  void observe(const Pick& p, const Eval& e) override {
    if (e.failed || !std::isfinite(e.observed)) return;
    std::vector<double> b;
    for (int i = 0; i < space_.dims(); ++i)
      b.push_back(space_.basic_from_param(i, p.params.at(space_.name(i))));
    basics_.push_back(b);
    outs_.push_back(e.observed);
    costs_.push_back(e.cost);
  }

 private:
  search::Space space_;
  int sign_;
  search::Rng rng_;
  std::vector<std::vector<double>> basics_;
  std::vector<double> outs_, costs_;
};

struct Record {
  Eval e;
  bool success = false;
};

struct RunResult {
  std::vector<Record> evals;  // in observation order
  double seconds = 0;
};

// With `trace`, prints every evaluation (order, kind, parameters, true value, cost, spend).
RunResult run(const Problem& p, Method& m, int n, int parallel, std::uint64_t seed,
              bool trace = false) {
  std::mt19937_64 noise(1000 + seed);
  RunResult r;
  std::deque<Pick> pending;
  const auto t0 = std::chrono::steady_clock::now();
  int suggested = 0;
  double spent = 0;
  while (static_cast<int>(r.evals.size()) < n) {
    while (static_cast<int>(pending.size()) < parallel && suggested < n) {
      pending.push_back(m.suggest());
      ++suggested;
    }
    const Pick pick = pending.front();
    pending.pop_front();
    const Eval e = p.eval(pick.params, noise);
    m.observe(pick, e);
    r.evals.push_back({e, !e.failed && std::isfinite(e.observed)});
    if (trace) {
      spent += e.cost;
      std::printf("  %3zu %-13s", r.evals.size(), pick.kind.c_str());
      for (const auto& [k, v] : pick.params) std::printf(" %s=%-10.4g", k.c_str(), v);
      std::printf(" true=%-8.4g cost=%-8.4g spent=%.4g\n", e.truth, e.cost, spent);
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

struct Metrics {
  double best_obs_true(const std::vector<Record>& ev, std::size_t i, int sign) const {
    double best_obs = 0, truth = std::nan("");
    bool any = false;
    for (std::size_t k = 0; k < std::min(i, ev.size()); ++k) {
      if (!ev[k].success) continue;
      if (!any || sign * ev[k].e.observed > sign * best_obs) {
        best_obs = ev[k].e.observed;
        truth = ev[k].e.truth;
        any = true;
      }
    }
    return truth;
  }
  // Best observed success within cumulative cost <= budget.
  double at_budget(const std::vector<Record>& ev, double budget, int sign) const {
    double cum = 0;
    std::size_t i = 0;
    while (i < ev.size() && cum + ev[i].e.cost <= budget) cum += ev[i++].e.cost;
    return best_obs_true(ev, i, sign);
  }
  double cum_cost(const std::vector<Record>& ev) const {
    double c = 0;
    for (const auto& r : ev) c += r.e.cost;
    return c;
  }
  // Mean over a log grid of costs of (best true value with cost <= c) - f*(c), sign-adjusted.
  std::pair<double, double> front_regret(const Problem& p, const std::vector<Record>& ev) const {
    const int sign = p.config.sign();
    double sum = 0;
    int covered = 0;
    for (int g = 0; g < 20; ++g) {
      const double c = p.grid_lo * std::pow(p.grid_hi / p.grid_lo, g / 19.0);
      bool any = false;
      double best = 0;
      for (const auto& r : ev)
        if (r.success && r.e.cost <= c && (!any || sign * r.e.truth > sign * best)) {
          best = r.e.truth;
          any = true;
        }
      if (!any) continue;
      sum += sign * (p.front(c) - best);
      ++covered;
    }
    return {covered ? sum / covered : std::nan(""), covered / 20.0};
  }
};

// Median of the finite values; NaN when there is none.
double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::string stat(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return "      -             ";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%7.4g [%.4g,%.4g]", median(v), *lo, *hi);
  return buf;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

// `key=value` for a numeric CarbsParams field (bench experiments; configs use YAML).
bool set_carbs(search::CarbsParams& c, const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos) return false;
  const std::string key = kv.substr(0, eq);
  const double v = std::atof(kv.c_str() + eq + 1);
  const std::map<std::string, double*> reals = {
      {"initial_search_radius", &c.initial_search_radius},
      {"exploration_bias", &c.exploration_bias},
      {"min_pareto_cost_fraction", &c.min_pareto_cost_fraction},
      {"own_cost_fraction", &c.own_cost_fraction},
      {"max_radius_factor", &c.max_radius_factor},
      {"min_radius_factor", &c.min_radius_factor}};
  const std::map<std::string, int*> ints = {{"num_random_samples", &c.num_random_samples},
                                            {"num_candidates_per_dim", &c.num_candidates_per_dim},
                                            {"resample_frequency", &c.resample_frequency},
                                            {"radius_grow_after", &c.radius_grow_after},
                                            {"radius_shrink_after", &c.radius_shrink_after},
                                            {"refit_every", &c.refit_every},
                                            {"trend_steps", &c.trend_steps}};
  if (auto it = reals.find(key); it != reals.end()) {
    *it->second = v;
    return true;
  }
  if (auto it = ints.find(key); it != ints.end()) {
    *it->second = static_cast<int>(v);
    return true;
  }
  return false;
}

std::string short_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// Budgets of the best-versus-cost curve: 8 log-spaced points over the range the methods spend.
std::vector<double> cost_grid(const std::string& name) {
  double lo = 100, hi = 1e4;
  if (name == "lr_epochs") lo = 100, hi = 1e4;
  if (name == "chinchilla") lo = 1, hi = 1e7;
  if (name == "oom_failures") lo = 50, hi = 5000;
  if (name == "hartmann6") lo = 10, hi = 100;
  if (name == "rosenbrock10") lo = 100, hi = 1000;
  std::vector<double> g;
  for (int i = 0; i < 8; ++i) {
    const double v = lo * std::pow(hi / lo, i / 7.0);
    const double p = std::pow(10.0, std::floor(std::log10(v)) - 1);  // 2 significant digits
    g.push_back(std::round(v / p) * p);
  }
  return g;
}

// Cost budgets at which best_obs_true is compared (roughly 1/10 and 1/2 of CARBS' spend).
std::pair<double, double> budgets(const std::string& name) {
  if (name == "lr_epochs") return {1000, 5000};
  if (name == "chinchilla") return {100, 1e4};
  if (name == "oom_failures") return {200, 800};
  if (name == "hartmann6") return {25, 100};
  return {250, 1000};
}

}  // namespace
}  // namespace scaletune::bench

int main(int argc, char** argv) {
  using namespace scaletune::bench;
  int seeds = 10, n = 100;
  std::vector<std::string> names;
  std::vector<int> modes = {1, 4};
  std::string hyper = "fit", outstanding = "thompson";
  bool clamp = true;
  double own = -1;           // < 0: the config default
  int pending_origins = -1;  // < 0: the config default
  int adaptive = -1;         // < 0: the config default
  int grow = -1, shrink = -1;
  double max_radius = -1;
  bool trace = false;
  std::vector<double> budget_override;  // --budgets B1,B2
  std::vector<std::string> carbs_sets;  // --carbs key=value,...: numeric CarbsParams fields
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seeds"))
      seeds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--n"))
      n = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--problems"))
      names = split(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--hyper"))
      hyper = argv[i + 1];
    else if (!std::strcmp(argv[i], "--outstanding"))
      outstanding = argv[i + 1];
    else if (!std::strcmp(argv[i], "--clamp"))
      clamp = std::atoi(argv[i + 1]) != 0;
    else if (!std::strcmp(argv[i], "--pending-origins"))
      pending_origins = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--adaptive"))
      adaptive = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--grow"))
      grow = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--shrink"))
      shrink = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--max-radius"))
      max_radius = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--budgets")) {
      budget_override.clear();
      for (const auto& b : split(argv[i + 1])) budget_override.push_back(std::atof(b.c_str()));
    } else if (!std::strcmp(argv[i], "--carbs"))
      carbs_sets = split(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--trace"))
      trace = std::atoi(argv[i + 1]) != 0;
    else if (!std::strcmp(argv[i], "--own"))
      own = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--parallel")) {
      modes.clear();
      for (const auto& m : split(argv[i + 1])) modes.push_back(std::atoi(m.c_str()));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seeds N] [--n N] [--problems a,b] [--parallel 1,4] "
                   "[--hyper fit|fixed] [--outstanding thompson|mean] [--clamp 1|0] [--own "
                   "FRACTION] [--pending-origins 1|0] [--adaptive 1|0] [--grow N] [--shrink N] "
                   "[--max-radius F] [--carbs key=value,...] [--budgets B1,B2] [--trace 1]\n",
                   argv[0]);
      return 2;
    }
  }
  std::printf(
      "search quality: %d seeds, %d evaluations; median [min,max] over seeds; CARBS with "
      "hyperparameters=%s, outstanding=%s, clamp_pareto_threshold=%d, own_cost_fraction=%g, "
      "pending_origins=%d, adaptive_radius=%d\n",
      seeds, n, hyper.c_str(), outstanding.c_str(), clamp ? 1 : 0,
      own >= 0 ? own : scaletune::search::CarbsParams().own_cost_fraction,
      pending_origins >= 0 ? pending_origins
                           : static_cast<int>(scaletune::search::CarbsParams().pending_origins),
      adaptive >= 0 ? adaptive
                    : static_cast<int>(scaletune::search::CarbsParams().adaptive_radius));
  std::printf(
      "best_obs@i = true value of the best observed success after i evaluations; "
      "@$B = within cumulative cost B\n\n");
  Metrics mt;
  for (const Problem& p : all_problems()) {
    if (!names.empty() && std::find(names.begin(), names.end(), p.name) == names.end()) continue;
    const int sign = p.config.sign();
    auto [b1, b2] = budgets(p.name);
    if (budget_override.size() == 2) {
      b1 = budget_override[0];
      b2 = budget_override[1];
    }
    std::printf("%s (%s)\n", p.name.c_str(), p.config.direction.c_str());
    std::printf("%-3s %-7s %-22s %-22s %-22s %-22s %-22s %-22s %-22s %-6s %s\n", "par", "method",
                "best_obs@25", "best_obs@50", "best_obs@100",
                ("best_obs@$" + std::to_string(static_cast<long long>(b1))).c_str(),
                ("best_obs@$" + std::to_string(static_cast<long long>(b2))).c_str(), "front_regret",
                "cum_cost", "fails", "s/run");
    // Best observed value versus cumulative cost: medians at 8 log-spaced budgets.
    const auto grid = cost_grid(p.name);
    std::vector<std::string> curve_lines;
    for (int par : modes) {
      for (const std::string method : {"carbs", "local", "random"}) {
        std::vector<double> o25, o50, o100, ob1, ob2, reg, cost, fails, secs;
        std::vector<std::vector<double>> at_grid(grid.size());
        for (int s = 0; s < seeds; ++s) {
          std::unique_ptr<Method> m;
          auto cfg = p.config;
          cfg.seed = s;
          cfg.carbs.hyperparameters = hyper;
          cfg.carbs.outstanding = outstanding;
          cfg.carbs.clamp_pareto_threshold = clamp;
          if (own >= 0) cfg.carbs.own_cost_fraction = own;
          if (pending_origins >= 0) cfg.carbs.pending_origins = pending_origins != 0;
          if (adaptive >= 0) cfg.carbs.adaptive_radius = adaptive != 0;
          if (grow > 0) cfg.carbs.radius_grow_after = grow;
          if (shrink > 0) cfg.carbs.radius_shrink_after = shrink;
          if (max_radius > 0) cfg.carbs.max_radius_factor = max_radius;
          for (const auto& kv : carbs_sets) {
            if (!set_carbs(cfg.carbs, kv)) {
              std::fprintf(stderr, "--carbs: unknown or malformed setting '%s'\n", kv.c_str());
              return 2;
            }
          }
          if (method == "carbs")
            m = std::make_unique<CarbsMethod>(cfg);
          else if (method == "local")
            m = std::make_unique<LocalMethod>(p, 77 + s);
          else
            m = std::make_unique<RandomMethod>(p, 77 + s);
          if (trace && s == 0)
            std::printf(" trace: %s, %d outstanding, seed 0\n", method.c_str(), par);
          const RunResult r = run(p, *m, n, par, static_cast<std::uint64_t>(s), trace && s == 0);
          o25.push_back(mt.best_obs_true(r.evals, 25, sign));
          o50.push_back(mt.best_obs_true(r.evals, 50, sign));
          o100.push_back(mt.best_obs_true(r.evals, 100, sign));
          ob1.push_back(mt.at_budget(r.evals, b1, sign));
          ob2.push_back(mt.at_budget(r.evals, b2, sign));
          for (std::size_t g = 0; g < grid.size(); ++g)
            at_grid[g].push_back(mt.at_budget(r.evals, grid[g], sign));
          reg.push_back(p.front ? mt.front_regret(p, r.evals).first : std::nan(""));
          cost.push_back(mt.cum_cost(r.evals));
          double f = 0;
          for (const auto& e : r.evals) f += e.success ? 0 : 1;
          fails.push_back(f);
          secs.push_back(r.seconds);
        }
        std::sort(fails.begin(), fails.end());
        std::sort(secs.begin(), secs.end());
        std::printf("%-3d %-7s %s %s %s %s %s %s %s %-6.0f %.2f\n", par, method.c_str(),
                    stat(o25).c_str(), stat(o50).c_str(), stat(o100).c_str(), stat(ob1).c_str(),
                    stat(ob2).c_str(), stat(reg).c_str(), stat(cost).c_str(),
                    fails[fails.size() / 2], secs[secs.size() / 2]);
        std::fflush(stdout);
        std::string line = std::to_string(par) + "   " + method;
        line.resize(12, ' ');
        for (auto& v : at_grid) {
          char cell[16];
          const double m = median(v);
          if (std::isfinite(m))
            std::snprintf(cell, sizeof cell, " %9.4g", m);
          else
            std::snprintf(cell, sizeof cell, " %9s", "-");
          line += cell;
        }
        curve_lines.push_back(line);
      }
    }
    std::printf(
        "best_obs versus cumulative cost (median over seeds; - = nothing affordable yet)\n");
    std::printf("%-12s", "par method");
    for (double b : grid) std::printf(" %9s", ("$" + short_number(b)).c_str());
    std::printf("\n");
    for (const auto& l : curve_lines) std::printf("%s\n", l.c_str());
    std::printf("\n");
  }
  return 0;
}
