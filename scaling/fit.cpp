// The fitting pipeline: one pass `fit_sample` fits every planned law on a set of runs; the full
// data get one pass (plus the leave-one-scale-out checks) and every bootstrap resample of whole
// runs gets another, in parallel; percentile intervals and flags come from the replicates.
#include "scaling/fit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>

#include "scaling/parallel.h"

namespace scaletune::scaling {

namespace {

bool positive(double x) { return std::isfinite(x) && x > 0; }

// Which laws to fit, decided once on the full data so every replicate fits the same set.
struct Plan {
  std::vector<std::string> power_y;  // quantities fitted against compute
  std::vector<std::string> two_variable_y;
  bool band = false, frontier = false, approach1 = false, approach2 = false;
  bool approach3 = false, approach3_likelihood = false;
  std::array<double, 6> a3_start{}, a3l_start{};
};

bool wanted(const FitOptions& o, const std::string& family) {
  return o.laws.empty() || std::find(o.laws.begin(), o.laws.end(), family) != o.laws.end();
}

// The values of quantity `y` for the runs: N, D or a hyper-parameter.
double value_of(const Run& r, const std::string& y) {
  if (y == "N") return r.n;
  if (y == "D") return r.d;
  if (y == "loss") return r.loss;
  const auto it = r.params.find(y);
  return it == r.params.end() ? kNaN : it->second;
}

std::vector<int> buckets_for(const std::vector<double>& compute, const FitOptions& o) {
  if (!o.budgets.empty()) return snap_to_budgets(compute, o.budgets, o.snap_tolerance);
  return compute_buckets(compute, o.bucket_gap);
}

Law power_law(const std::string& y, const std::string& method, const std::vector<double>& c,
              const std::vector<double>& v, const FitOptions& o) {
  Law law;
  law.y = y;
  law.form = "power";
  law.method = method;
  law.names = {"k", "p"};
  std::vector<double> xs, ys;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (positive(c[i]) && positive(v[i])) {
      xs.push_back(c[i]);
      ys.push_back(v[i]);
    }
  }
  law.points["C"] = xs;
  law.points[y] = ys;
  law.scales = count_buckets(compute_buckets(xs, o.bucket_gap));
  const PowerLawFit fit = fit_power_law(xs, ys);
  if (!fit.ok) {
    law.extra["error"] = fit.error;
    return law;
  }
  law.coef = {{"k", std::exp(fit.log_k)}, {"p", fit.p}};
  law.residuals = fit.residuals;
  law.r2 = fit.r2;
  return law;
}

// L = E + k C^-gamma: for a fixed E this is a power law in (L - E), so search E in [0, min L)
// (coarse grid, then golden section) minimising the squared error of ln L.
Law frontier_law(const std::vector<double>& c, const std::vector<double>& l, const FitOptions& o) {
  Law law;
  law.y = "loss";
  law.form = "loss_frontier";
  law.method = "pareto_front";
  law.names = {"E", "k", "gamma"};
  law.points["C"] = c;
  law.points["loss"] = l;
  law.scales = count_buckets(compute_buckets(c, o.bucket_gap));
  if (c.size() < 4) {
    law.extra["error"] = "needs at least 4 front points, got " + std::to_string(c.size());
    return law;
  }
  const double l_min = *std::min_element(l.begin(), l.end());
  if (!(l_min > 0)) {
    law.extra["error"] = "the frontier form needs positive losses";
    return law;
  }
  auto sse = [&](double e, PowerLawFit* out) {
    std::vector<double> excess(l.size());
    for (std::size_t i = 0; i < l.size(); ++i) excess[i] = l[i] - e;
    const PowerLawFit f = fit_power_law(c, excess);
    if (!f.ok || f.p >= 0) return std::numeric_limits<double>::infinity();
    double s = 0;
    for (std::size_t i = 0; i < l.size(); ++i) {
      const double r = std::log(l[i]) - std::log(e + f.predict(c[i]));
      s += r * r;
    }
    if (out) *out = f;
    return s;
  };
  const double hi = l_min * (1 - 1e-9);
  const int grid = 200;
  int best = 0;
  double best_sse = std::numeric_limits<double>::infinity();
  for (int g = 0; g <= grid; ++g) {
    const double s = sse(hi * g / grid, nullptr);
    if (s < best_sse) {
      best_sse = s;
      best = g;
    }
  }
  if (!std::isfinite(best_sse)) {
    law.extra["error"] = "loss does not decrease with compute along the front";
    return law;
  }
  double a = hi * std::max(0, best - 1) / grid, b = hi * std::min(grid, best + 1) / grid;
  const double phi = (std::sqrt(5.0) - 1) / 2;
  for (int it = 0; it < 60; ++it) {
    const double x1 = b - phi * (b - a), x2 = a + phi * (b - a);
    if (sse(x1, nullptr) < sse(x2, nullptr))
      b = x2;
    else
      a = x1;
  }
  const double e = 0.5 * (a + b);
  PowerLawFit f;
  if (!std::isfinite(sse(e, &f))) {
    law.extra["error"] = "frontier fit failed";
    return law;
  }
  law.coef = {{"E", e}, {"k", std::exp(f.log_k)}, {"gamma", -f.p}};
  for (std::size_t i = 0; i < l.size(); ++i)
    law.residuals.push_back(std::log(l[i]) - std::log(e + f.predict(c[i])));
  return law;
}

Law surface_law(const std::string& method, const Approach3Fit& fit, const std::vector<double>& n,
                const std::vector<double>& d, const std::vector<double>& l,
                const std::vector<double>& c, const FitOptions& o) {
  Law law;
  law.y = "loss";
  law.form = "loss_surface";
  law.method = method;
  law.names = {"E", "A", "B", "alpha", "beta", "a", "b"};
  law.points["N"] = n;
  law.points["D"] = d;
  law.points["C"] = c;
  law.points["loss"] = l;
  law.scales = count_buckets(compute_buckets(c, o.bucket_gap));
  if (!fit.ok) {
    law.extra["error"] = fit.error;
    return law;
  }
  const LossSurface& s = fit.surface;
  law.coef = {{"E", s.E},       {"A", s.A},   {"B", s.B},  {"alpha", s.alpha},
              {"beta", s.beta}, {"a", s.a()}, {"b", s.b()}};
  law.residuals = fit.residuals;
  law.objective = fit.objective;
  law.extra["starts"] = fit.starts;
  law.extra["converged_starts"] = fit.converged;
  law.extra["huber_delta"] = o.approach3.delta;
  if (method == "approach3_likelihood") law.extra["sigma"] = std::exp(fit.log_scale);
  return law;
}

struct SampleResult {
  std::vector<Law> laws;
  std::vector<std::size_t> front, band;
  std::vector<int> bucket;
  std::vector<std::string> warnings;
  Approach3Fit a3, a3l;
};

// Fits every planned law on `runs` (a resample may repeat runs). On the full data (`full`)
// Approach 3 runs the whole start grid; resamples refine from the full-data optimum.
SampleResult fit_sample(const std::vector<Run>& runs, const FitOptions& o, const Plan& plan,
                        bool full) {
  SampleResult out;
  const std::size_t m = runs.size();
  std::vector<double> c(m), l(m), n(m), d(m);
  for (std::size_t i = 0; i < m; ++i) {
    c[i] = runs[i].compute;
    l[i] = runs[i].loss;
    n[i] = runs[i].n;
    d[i] = runs[i].d;
  }
  out.bucket = buckets_for(c, o);
  out.front = pareto_front(c, l);
  out.band = near_optimal_band(l, out.bucket, o.band_fraction);
  auto column = [&](const std::vector<std::size_t>& idx, const std::vector<double>& v) {
    std::vector<double> r;
    for (auto i : idx) r.push_back(v[i]);
    return r;
  };
  auto quantity = [&](const std::vector<std::size_t>& idx, const std::string& y) {
    std::vector<double> r;
    for (auto i : idx) r.push_back(value_of(runs[i], y));
    return r;
  };
  for (const auto& y : plan.power_y) {
    out.laws.push_back(
        power_law(y, "pareto_front", column(out.front, c), quantity(out.front, y), o));
    if (plan.band)
      out.laws.push_back(
          power_law(y, "near_optimal_band", column(out.band, c), quantity(out.band, y), o));
  }
  if (plan.frontier)
    out.laws.push_back(frontier_law(column(out.front, c), column(out.front, l), o));
  for (const auto& y : plan.two_variable_y) {
    Law law;
    law.y = y;
    law.form = "two_variable";
    law.method = "near_optimal_band";
    law.names = {"k", "p", "q"};
    std::vector<double> nn, dd, yy, cc;
    for (auto i : out.band) {
      const double v = value_of(runs[i], y);
      if (positive(n[i]) && positive(d[i]) && positive(v)) {
        nn.push_back(n[i]);
        dd.push_back(d[i]);
        yy.push_back(v);
        cc.push_back(c[i]);
      }
    }
    law.points = {{"N", nn}, {"D", dd}, {y, yy}, {"C", cc}};
    law.scales = count_buckets(compute_buckets(cc, o.bucket_gap));
    const TwoVariableFit f = fit_two_variable(nn, dd, yy);
    if (f.ok) {
      law.coef = {{"k", std::exp(f.log_k)}, {"p", f.p}, {"q", f.q}};
      law.residuals = f.residuals;
      law.r2 = f.r2;
    } else {
      law.extra["error"] = f.error;
    }
    out.laws.push_back(law);
  }
  if (plan.approach3 || plan.approach3_likelihood) {
    Approach3Options a3o = o.approach3;
    a3o.threads = full ? o.threads : 1;  // resamples are already spread over the threads
    if (plan.approach3) {
      a3o.likelihood = false;
      out.a3 = full ? fit_approach3(n, d, l, a3o) : refine_approach3(n, d, l, a3o, plan.a3_start);
      out.laws.push_back(surface_law("approach3", out.a3, n, d, l, c, o));
    }
    if (plan.approach3_likelihood) {
      a3o.likelihood = true;
      out.a3l = full ? fit_approach3(n, d, l, a3o) : refine_approach3(n, d, l, a3o, plan.a3l_start);
      out.laws.push_back(surface_law("approach3_likelihood", out.a3l, n, d, l, c, o));
    }
  }
  if (plan.approach2) {
    IsoFlopOptions io;
    io.budgets = o.budgets;
    io.snap_tolerance = o.snap_tolerance;
    io.bucket_gap = o.bucket_gap;
    io.min_points = o.isoflop_min_points;
    const IsoFlopFit iso = fit_isoflops(c, n, l, io);
    nlohmann::json curves = nlohmann::json::array();
    std::vector<double> bc, bn, bd;
    for (const auto& cv : iso.curves) {
      nlohmann::json j = {{"compute", cv.compute}, {"ok", cv.ok}, {"points", cv.points.size()}};
      if (cv.ok) {
        j["c2"] = cv.c2;
        j["c1"] = cv.c1;
        j["c0"] = cv.c0;
        j["n_opt"] = cv.n_opt;
        j["d_opt"] = cv.d_opt;
        j["loss_opt"] = cv.loss_opt;
        j["vertex_inside"] = cv.vertex_inside;
        bc.push_back(cv.compute);
        bn.push_back(cv.n_opt);
        bd.push_back(cv.d_opt);
        if (full && !cv.vertex_inside)
          out.warnings.push_back("approach2: the vertex at budget " +
                                 nlohmann::json(cv.compute).dump() +
                                 " lies outside the sampled model sizes (extrapolated)");
      } else {
        j["error"] = cv.error;
      }
      std::vector<double> cn, cl;
      for (auto i : cv.points) {
        cn.push_back(n[i]);
        cl.push_back(l[i]);
      }
      j["N"] = cn;
      j["loss"] = cl;
      curves.push_back(j);
    }
    for (const char* y : {"N", "D"}) {
      Law law = power_law(y, "approach2", bc, std::string(y) == "N" ? bn : bd, o);
      law.extra["curves"] = curves;
      out.laws.push_back(law);
    }
  }
  if (plan.approach1) {
    std::vector<Curve> curves;
    for (const auto& r : runs)
      if (r.curve.compute.size() >= 2) curves.push_back(r.curve);
    const auto env = envelope(curves);
    std::vector<double> ec, en, ed;
    for (const auto& p : env) {
      ec.push_back(p.compute);
      en.push_back(p.n);
      ed.push_back(p.d);
    }
    out.laws.push_back(power_law("N", "approach1", ec, en, o));
    out.laws.push_back(power_law("D", "approach1", ec, ed, o));
    // The envelope has ~1500 grid points, too many to keep per law; thin it for the report.
    for (auto& law : {&out.laws[out.laws.size() - 2], &out.laws.back()}) {
      auto& pc = law->points["C"];
      auto& py = law->points[law->y];
      if (pc.size() > 100) {
        std::vector<double> tc, ty;
        for (std::size_t i = 0; i < pc.size(); i += pc.size() / 100) {
          tc.push_back(pc[i]);
          ty.push_back(py[i]);
        }
        pc = tc;
        py = ty;
        law->residuals.clear();
      }
    }
  }
  return out;
}

// Leave-one-scale-out for a power law: fit without the largest compute bucket, predict it.
nlohmann::json loso_power(const Law& law, const FitOptions& o) {
  const auto& c = law.points.at("C");
  const auto& y = law.points.at(law.y);
  const auto b = compute_buckets(c, o.bucket_gap);
  const int top = count_buckets(b) - 1;
  if (top < 2) return {{"skipped", "needs 3 compute scales to leave one out"}};
  std::vector<double> tc, ty;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (b[i] != top) {
      tc.push_back(c[i]);
      ty.push_back(y[i]);
    }
  const PowerLawFit f = fit_power_law(tc, ty);
  if (!f.ok) return {{"skipped", f.error}};
  // Bias of the prediction against the left-out points' geometric mean: band points spread
  // around the optimum on purpose, so a per-point error would measure that spread, not the law.
  double sum = 0, cmax = 0;
  int k = 0;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (b[i] == top) {
      sum += std::log(f.predict(c[i]) / y[i]);
      cmax = std::max(cmax, c[i]);
      ++k;
    }
  return {{"left_out_compute", cmax},
          {"points", k},
          {"p_without", f.p},
          {"relative_error", std::expm1(std::fabs(sum / k))}};
}

nlohmann::json loso_surface(const Law& law, const Approach3Fit& full, const FitOptions& o,
                            bool likelihood) {
  const auto& c = law.points.at("C");
  const auto b = compute_buckets(c, o.bucket_gap);
  const int top = count_buckets(b) - 1;
  if (top < 2) return {{"skipped", "needs 3 compute scales to leave one out"}};
  std::vector<double> n, d, l;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (b[i] != top) {
      n.push_back(law.points.at("N")[i]);
      d.push_back(law.points.at("D")[i]);
      l.push_back(law.points.at("loss")[i]);
    }
  Approach3Options a3o = o.approach3;
  a3o.likelihood = likelihood;
  const Approach3Fit f = refine_approach3(n, d, l, a3o, full.params);
  if (!f.ok) return {{"skipped", f.error}};
  double sum = 0, cmax = 0;
  int k = 0;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (b[i] == top) {
      const double pred = f.surface.loss(law.points.at("N")[i], law.points.at("D")[i]);
      sum += std::fabs(pred / law.points.at("loss")[i] - 1);
      cmax = std::max(cmax, c[i]);
      ++k;
    }
  return {{"left_out_compute", cmax}, {"points", k}, {"relative_error", sum / k}};
}

void add_flags(Law& law, const FitOptions& o, int replicates_wanted) {
  if (law.coef.empty()) {
    law.flags.push_back("not_fitted: " + law.extra.value("error", std::string("fit failed")));
    return;
  }
  if (law.scales < o.min_scales)
    law.flags.push_back("too_few_scales: " + std::to_string(law.scales) +
                        " distinct compute scales (needs " + std::to_string(o.min_scales) + ")");
  std::vector<std::string> exponents;
  if (law.form == "power") exponents = {"p"};
  if (law.form == "two_variable") exponents = {"p", "q"};
  if (law.form == "loss_surface") exponents = {"alpha", "beta"};
  if (law.form == "loss_frontier") exponents = {"gamma"};
  for (const auto& e : exponents) {
    const auto it = law.interval.find(e);
    if (it == law.interval.end()) continue;
    const double width = it->second.second - it->second.first;
    const double limit =
        std::max(o.max_relative_width * std::fabs(law.coef.at(e)), o.max_absolute_width);
    if (!(width <= limit)) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "wide_interval: %s interval width %.3g > %.3g", e.c_str(),
                    width, limit);
      law.flags.push_back(buf);
    }
  }
  if (law.loso.contains("relative_error") &&
      law.loso["relative_error"].get<double>() > o.max_loso_error)
    law.flags.push_back("loso_error: leaving out the largest scale mispredicts it by " +
                        std::to_string(static_cast<int>(
                            std::round(100 * law.loso["relative_error"].get<double>()))) +
                        "%");
  if (replicates_wanted > 0 && !law.names.empty()) {
    const auto& reps = law.replicates[law.names[0]];
    const auto ok =
        std::count_if(reps.begin(), reps.end(), [](double v) { return std::isfinite(v); });
    if (ok < 0.8 * replicates_wanted)
      law.flags.push_back("bootstrap_unstable: only " + std::to_string(ok) + " of " +
                          std::to_string(replicates_wanted) + " resamples could be fitted");
  }
}

double json_double(const nlohmann::json& j) { return j.is_number() ? j.get<double>() : kNaN; }

std::vector<double> json_doubles(const nlohmann::json& j) {
  std::vector<double> out;
  for (const auto& v : j) out.push_back(json_double(v));
  return out;
}

}  // namespace

Dataset dataset_from_arrays(const std::vector<double>& compute, const std::vector<double>& loss,
                            const std::map<std::string, std::vector<double>>& params,
                            const std::vector<double>& n, const std::vector<double>& d) {
  Dataset data;
  data.source = "arrays";
  for (std::size_t i = 0; i < compute.size(); ++i) {
    Run r;
    r.id = std::to_string(i);
    r.compute = compute[i];
    r.loss = i < loss.size() ? loss[i] : kNaN;
    if (i < n.size()) r.n = n[i];
    if (i < d.size()) r.d = d[i];
    for (const auto& [name, values] : params)
      if (i < values.size() && std::isfinite(values[i])) r.params[name] = values[i];
    data.runs.push_back(std::move(r));
  }
  return data;
}

double Law::at(double compute, const std::map<std::string, double>& c, double n, double d,
               const std::string& quantity) const {
  auto get = [&](const char* k) {
    const auto it = c.find(k);
    return it == c.end() ? kNaN : it->second;
  };
  if (form == "power") return get("k") * std::pow(compute, get("p"));
  if (form == "two_variable") return get("k") * std::pow(n, get("p")) * std::pow(d, get("q"));
  if (form == "loss_frontier") return get("E") + get("k") * std::pow(compute, -get("gamma"));
  if (form == "loss_surface") {
    const LossSurface s{get("E"), get("A"), get("B"), get("alpha"), get("beta")};
    const std::string q = quantity.empty() ? y : quantity;
    if (q == "N") return s.n_opt(compute);
    if (q == "D") return s.d_opt(compute);
    return s.loss_opt(compute);
  }
  return kNaN;
}

std::vector<double> Law::replicate_values(double compute, const std::string& quantity) const {
  std::vector<double> out;
  if (names.empty() || !replicates.count(names[0])) return out;
  const std::size_t r_count = replicates.at(names[0]).size();
  for (std::size_t r = 0; r < r_count; ++r) {
    std::map<std::string, double> c;
    for (const auto& [name, values] : replicates) c[name] = values[r];
    out.push_back(at(compute, c, kNaN, kNaN, quantity));
  }
  return out;
}

const Law* FitResult::find(const std::string& y, const std::string& method,
                           const std::string& form) const {
  for (const auto& law : laws)
    if (law.y == y && law.method == method && (form.empty() || law.form == form)) return &law;
  return nullptr;
}

FitResult fit_laws(const Dataset& data, const FitOptions& options) {
  FitResult result;
  result.source = data.source;
  result.options = options;
  // 1. Usable runs: finite positive compute (or 6ND) and a finite loss; D derived as C / (6N).
  int dropped = 0;
  for (Run r : data.runs) {
    if (!positive(r.compute) && positive(r.n) && positive(r.d)) r.compute = 6 * r.n * r.d;
    if (!positive(r.d) && positive(r.n) && positive(r.compute)) r.d = r.compute / (6 * r.n);
    if (!positive(r.n) && positive(r.d) && positive(r.compute)) r.n = r.compute / (6 * r.d);
    if (!positive(r.compute) || !std::isfinite(r.loss)) {
      ++dropped;
      continue;
    }
    result.runs.push_back(std::move(r));
  }
  if (dropped > 0)
    result.warnings.push_back(std::to_string(dropped) +
                              " runs without a positive compute or a finite loss were left out");
  if (result.runs.size() < 2)
    throw std::invalid_argument("needs at least 2 runs with compute and loss, got " +
                                std::to_string(result.runs.size()));
  std::vector<double> c;
  for (const auto& r : result.runs) c.push_back(r.compute);
  if (count_buckets(compute_buckets(c, options.bucket_gap)) < 2)
    throw std::invalid_argument(
        "all runs have about the same compute (within " +
        std::to_string(static_cast<int>(100 * options.bucket_gap)) +
        "%): a scaling law needs runs at 2 or more compute scales (3+ to be determined)");
  result.min_compute = *std::min_element(c.begin(), c.end());
  result.max_compute = *std::max_element(c.begin(), c.end());
  for (const auto& r : result.runs)
    if (positive(r.d))
      result.max_tokens_seen =
          std::isfinite(result.max_tokens_seen) ? std::max(result.max_tokens_seen, r.d) : r.d;

  // 2. The plan.
  Plan plan;
  auto varies = [&](const std::string& y) {
    std::set<double> values;
    for (const auto& r : result.runs) {
      const double v = value_of(r, y);
      if (positive(v)) values.insert(v);
    }
    return values.size() >= 2;
  };
  const bool have_nd = varies("N") && varies("D");
  std::set<std::string> param_names;
  for (const auto& r : result.runs)
    for (const auto& [name, v] : r.params) param_names.insert(name);
  if (wanted(options, "power")) {
    for (const char* y : {"N", "D"})
      if (varies(y)) plan.power_y.push_back(y);
    for (const auto& name : param_names)
      if (varies(name)) plan.power_y.push_back(name);
    plan.band = true;
  }
  if (wanted(options, "two_variable") && have_nd)
    for (const auto& name : param_names)
      if (varies(name)) plan.two_variable_y.push_back(name);
  plan.frontier = wanted(options, "frontier");
  std::size_t with_nd = 0, with_curves = 0;
  for (const auto& r : result.runs) {
    with_nd += positive(r.n) && positive(r.d) && r.loss > 0 ? 1 : 0;
    with_curves += r.curve.compute.size() >= 2 ? 1 : 0;
  }
  const bool nd_complete = have_nd && with_nd == result.runs.size();
  if (wanted(options, "approach3") || wanted(options, "approach3_likelihood")) {
    if (nd_complete && result.runs.size() >= 6) {
      plan.approach3 = wanted(options, "approach3");
      plan.approach3_likelihood = wanted(options, "approach3_likelihood");
    } else if (!options.laws.empty()) {
      result.warnings.push_back(
          "approach3 skipped: needs N and D (or C) for every run, varying, and >= 6 runs");
    }
  }
  if (wanted(options, "approach2")) {
    if (nd_complete)
      plan.approach2 = true;
    else if (!options.laws.empty())
      result.warnings.push_back("approach2 skipped: needs N for every run");
  }
  if (wanted(options, "approach1")) {
    if (with_curves >= 2)
      plan.approach1 = true;
    else if (!options.laws.empty())
      result.warnings.push_back(
          "approach1 skipped: needs learning curves of >= 2 runs (without curves the "
          "pareto_front laws of N and D are Approach 1 on final points)");
  }

  // 3. The full-data fit and its leave-one-scale-out checks.
  SampleResult full = fit_sample(result.runs, options, plan, true);
  result.front = full.front;
  result.band = full.band;
  result.bucket = full.bucket;
  result.warnings.insert(result.warnings.end(), full.warnings.begin(), full.warnings.end());
  plan.a3_start = full.a3.params;
  plan.a3l_start = full.a3l.params;
  if (plan.approach3 && !full.a3.ok) plan.approach3 = false;
  if (plan.approach3_likelihood && !full.a3l.ok) plan.approach3_likelihood = false;
  for (auto& law : full.laws) {
    if (law.coef.empty()) continue;
    if (law.form == "power") law.loso = loso_power(law, options);
    if (law.method == "approach3") law.loso = loso_surface(law, full.a3, options, false);
    if (law.method == "approach3_likelihood") law.loso = loso_surface(law, full.a3l, options, true);
  }

  // 4. Bootstrap over whole runs: resample n runs with replacement, refit everything.
  const int reps = std::max(0, options.bootstrap);
  std::vector<std::map<std::string, std::map<std::string, double>>> rep(reps);
  parallel_for(static_cast<std::size_t>(reps), options.threads, [&](std::size_t r) {
    std::seed_seq seq{static_cast<std::uint64_t>(options.seed), static_cast<std::uint64_t>(r)};
    std::mt19937_64 rng(seq);
    std::uniform_int_distribution<std::size_t> pick(0, result.runs.size() - 1);
    std::vector<Run> sample;
    sample.reserve(result.runs.size());
    for (std::size_t i = 0; i < result.runs.size(); ++i) sample.push_back(result.runs[pick(rng)]);
    const SampleResult s = fit_sample(sample, options, plan, false);
    for (const auto& law : s.laws)
      if (!law.coef.empty()) rep[r][law.key()] = law.coef;
  });
  result.bootstrap_done = reps;
  const double lo_q = (1 - options.level) / 2, hi_q = 1 - lo_q;
  for (auto& law : full.laws) {
    if (law.coef.empty()) {
      add_flags(law, options, reps);
      result.laws.push_back(std::move(law));
      continue;
    }
    for (const auto& [name, value] : law.coef) {
      std::vector<double> values(reps, kNaN), finite;
      for (int r = 0; r < reps; ++r) {
        const auto it = rep[r].find(law.key());
        if (it != rep[r].end() && it->second.count(name)) values[r] = it->second.at(name);
        if (std::isfinite(values[r])) finite.push_back(values[r]);
      }
      if (reps > 0) law.replicates[name] = values;
      if (finite.size() >= 2) law.interval[name] = {quantile(finite, lo_q), quantile(finite, hi_q)};
    }
    add_flags(law, options, reps);
    result.laws.push_back(std::move(law));
  }
  return result;
}

FitResult refit_laws(const std::vector<double>& compute, const std::vector<double>& loss,
                     const std::map<std::string, std::vector<double>>& params, int bootstrap,
                     std::uint64_t seed) {
  FitOptions options;
  options.laws = {"power", "frontier"};
  options.bootstrap = bootstrap;
  options.seed = seed;
  try {
    return fit_laws(dataset_from_arrays(compute, loss, params), options);
  } catch (const std::invalid_argument& e) {
    FitResult empty;
    empty.source = "arrays";
    empty.options = options;
    empty.warnings.push_back(std::string("no laws yet: ") + e.what());
    return empty;
  }
}

// ---- JSON -------------------------------------------------------------------------------------

nlohmann::json to_json(const Law& law) {
  nlohmann::json j;
  j["y"] = law.y;
  j["form"] = law.form;
  j["method"] = law.method;
  j["names"] = law.names;
  j["coefficients"] = law.coef;
  nlohmann::json intervals = nlohmann::json::object();
  for (const auto& [k, v] : law.interval) intervals[k] = {v.first, v.second};
  j["intervals"] = intervals;
  j["flags"] = law.flags;
  j["determined"] = law.flags.empty();
  j["scales"] = law.scales;
  j["n_points"] = law.points.empty() ? 0 : law.points.begin()->second.size();
  j["points"] = law.points;
  j["residuals"] = law.residuals;
  j["r2"] = law.r2;
  if (std::isfinite(law.objective)) j["objective"] = law.objective;
  j["loso"] = law.loso.is_null() ? nlohmann::json::object() : law.loso;
  if (!law.extra.is_null()) j["details"] = law.extra;
  j["bootstrap"] = law.replicates;
  return j;
}

nlohmann::json to_json(const FitResult& fit) {
  const FitOptions& o = fit.options;
  nlohmann::json j;
  j["format"] = "scaletune-fit";
  j["version"] = 1;
  j["source"] = fit.source;
  j["options"] = {{"band_fraction", o.band_fraction},
                  {"bucket_gap", o.bucket_gap},
                  {"budgets", o.budgets},
                  {"snap_tolerance", o.snap_tolerance},
                  {"bootstrap", o.bootstrap},
                  {"seed", o.seed},
                  {"level", o.level},
                  {"huber_delta", o.approach3.delta},
                  {"approach3_starts", o.approach3.grid.size()},
                  {"min_scales", o.min_scales},
                  {"max_relative_width", o.max_relative_width},
                  {"max_absolute_width", o.max_absolute_width},
                  {"max_loso_error", o.max_loso_error},
                  {"compute_convention", "C = 6 N D unless the input gives C"}};
  j["summary"] = {{"runs", fit.runs.size()},          {"front", fit.front.size()},
                  {"band", fit.band.size()},          {"bootstrap", fit.bootstrap_done},
                  {"min_compute", fit.min_compute},   {"max_compute", fit.max_compute},
                  {"max_tokens", fit.max_tokens_seen}};
  std::set<std::size_t> front(fit.front.begin(), fit.front.end()),
      band(fit.band.begin(), fit.band.end());
  nlohmann::json runs = nlohmann::json::array();
  for (std::size_t i = 0; i < fit.runs.size(); ++i) {
    const Run& r = fit.runs[i];
    runs.push_back({{"id", r.id},
                    {"C", r.compute},
                    {"loss", r.loss},
                    {"N", r.n},
                    {"D", r.d},
                    {"params", r.params},
                    {"front", front.count(i) > 0},
                    {"band", band.count(i) > 0},
                    {"bucket", i < fit.bucket.size() ? fit.bucket[i] : -1}});
  }
  j["runs"] = runs;
  nlohmann::json laws = nlohmann::json::array();
  for (const auto& law : fit.laws) laws.push_back(to_json(law));
  j["laws"] = laws;
  j["warnings"] = fit.warnings;
  return j;
}

FitResult fit_from_json(const nlohmann::json& j) {
  auto need = [&](const nlohmann::json& obj, const char* key) -> const nlohmann::json& {
    if (!obj.is_object() || !obj.contains(key))
      throw std::invalid_argument(std::string("fit JSON has no '") + key +
                                  "' (write it with `scaletune fit --out FILE`)");
    return obj.at(key);
  };
  if (!j.is_object() || j.value("format", "") != "scaletune-fit")
    throw std::invalid_argument(
        "not a scaletune fit file (no \"format\": \"scaletune-fit\"); write one with "
        "`scaletune fit --out fit.json`");
  FitResult fit;
  fit.source = j.value("source", "");
  const auto& o = need(j, "options");
  fit.options.level = o.value("level", 0.95);
  fit.options.bootstrap = o.value("bootstrap", 0);
  fit.options.bucket_gap = o.value("bucket_gap", 0.25);
  fit.options.band_fraction = o.value("band_fraction", 0.0025);
  const auto& s = need(j, "summary");
  fit.min_compute = json_double(need(s, "min_compute"));
  fit.max_compute = json_double(need(s, "max_compute"));
  fit.max_tokens_seen = s.contains("max_tokens") ? json_double(s["max_tokens"]) : kNaN;
  fit.bootstrap_done = s.value("bootstrap", 0);
  const auto& runs = need(j, "runs");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    Run run;
    run.id = r.value("id", std::to_string(i));
    run.compute = json_double(need(r, "C"));
    run.loss = json_double(need(r, "loss"));
    run.n = r.contains("N") ? json_double(r["N"]) : kNaN;
    run.d = r.contains("D") ? json_double(r["D"]) : kNaN;
    if (r.contains("params"))
      for (const auto& [k, v] : r["params"].items()) run.params[k] = json_double(v);
    if (r.value("front", false)) fit.front.push_back(i);
    if (r.value("band", false)) fit.band.push_back(i);
    fit.bucket.push_back(r.value("bucket", -1));
    fit.runs.push_back(run);
  }
  for (const auto& lj : need(j, "laws")) {
    Law law;
    law.y = need(lj, "y").get<std::string>();
    law.form = need(lj, "form").get<std::string>();
    law.method = need(lj, "method").get<std::string>();
    law.names = lj.value("names", std::vector<std::string>{});
    for (const auto& [k, v] : need(lj, "coefficients").items()) law.coef[k] = json_double(v);
    if (lj.contains("intervals"))
      for (const auto& [k, v] : lj["intervals"].items())
        law.interval[k] = {json_double(v.at(0)), json_double(v.at(1))};
    if (lj.contains("bootstrap"))
      for (const auto& [k, v] : lj["bootstrap"].items()) law.replicates[k] = json_doubles(v);
    if (lj.contains("points"))
      for (const auto& [k, v] : lj["points"].items()) law.points[k] = json_doubles(v);
    if (lj.contains("residuals")) law.residuals = json_doubles(lj["residuals"]);
    law.r2 = lj.contains("r2") ? json_double(lj["r2"]) : kNaN;
    law.objective = lj.contains("objective") ? json_double(lj["objective"]) : kNaN;
    law.scales = lj.value("scales", 0);
    law.loso = lj.value("loso", nlohmann::json::object());
    law.extra = lj.value("details", nlohmann::json());
    law.flags = lj.value("flags", std::vector<std::string>{});
    fit.laws.push_back(std::move(law));
  }
  fit.warnings = j.value("warnings", std::vector<std::string>{});
  return fit;
}

}  // namespace scaletune::scaling
