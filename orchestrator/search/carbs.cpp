// The CARBS searcher: state, suggest (random phase, resampling, Bayesian candidates, fallback),
// observe/forget, Pareto front and serialization. carbs.md §3-9 specifies the reference; where
// this differs (fitted hyper-parameters, correct P(success), caching, subsets) docs/search.md
// says why.
#include "orchestrator/search/carbs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>

#include "orchestrator/search/gp.h"
#include "orchestrator/search/space.h"
#include "orchestrator/search/stats.h"

namespace scaletune::search {
namespace {

constexpr int kStateVersion = 1;
constexpr int kMaxFitObservations = 160;  // hyper-parameters are fitted on at most this many
constexpr int kSampleAttempts = 8;        // random sampling gives up after this many rounds
constexpr int kRandomBatch = 32;

using Vec = Eigen::VectorXd;
using Mat = Eigen::MatrixXd;

bool isclose(const Vec& a, const Vec& b) {  // torch.isclose defaults: rtol 1e-5, atol 1e-8
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= 1e-8 + 1e-5 * std::fabs(b[i]))) return false;
  return true;
}

// P(success) from the success GP's mean and variance at a point (labels: -1 success, +1
// failure): Phi(-mu/sigma) with the standard deviation (the reference passes the variance,
// carbs.md §7.2).
double success_probability(double mu, double var) {
  const double sd = std::sqrt(var);
  return sd > 0 ? normal_cdf(-mu / sd) : (mu < 0 ? 1.0 : 0.0);
}

struct Point {
  std::vector<double> params;  // param units, dimension order
  Vec basic;
  double output = 0;
  double cost = 0;
  std::string id;
};

struct Pending {
  std::string id;
  std::vector<double> params;
  Vec basic;
  SuggestionKind kind = SuggestionKind::kRandom;
};

// Groups of successes at the same inputs (tolerance as the reference) by sorting, O(n log n)
// for distinct points instead of the reference's O(n^2) pairwise comparison.
std::vector<std::size_t> group_ids(const std::vector<Point>& pts) {
  const std::size_t n = pts.size();
  std::vector<std::size_t> order(n), gid(n, SIZE_MAX);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Vec &x = pts[a].basic, &y = pts[b].basic;
    for (Eigen::Index i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) return x[i] < y[i];
    return a < b;
  });
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t seed = order[k];
    if (gid[seed] != SIZE_MAX) continue;
    gid[seed] = seed;
    const double x0 = pts[seed].basic[0];
    const double tol = 1e-8 + 1e-5 * std::fabs(x0);
    for (std::size_t j = k + 1; j < n && pts[order[j]].basic[0] <= x0 + 2 * tol + 1e-12; ++j) {
      const std::size_t o = order[j];
      if (gid[o] == SIZE_MAX && isclose(pts[o].basic, pts[seed].basic)) gid[o] = seed;
    }
  }
  return gid;
}

Mat rows(const std::vector<const Vec*>& xs, int d) {
  Mat X(static_cast<Eigen::Index>(xs.size()), d);
  for (std::size_t i = 0; i < xs.size(); ++i)
    X.row(static_cast<Eigen::Index>(i)) = xs[i]->transpose();
  return X;
}

nlohmann::json theta_json(const GpHyper& h) { return h.theta; }

}  // namespace

// Everything derived from the observations; rebuilt only when observations change.
struct Model {
  bool valid = false;
  QuantileNormal quantile;
  LogCostScaler cost_scale;
  std::vector<FrontGroup> front;  // conservative (if configured) front over all successes
  std::vector<Vec> origins;       // first observation of each front group
  Gp output, cost, success, pareto;
  bool has_success = false;
  double pareto_lo = 0, pareto_hi = 0;
};

struct Carbs::Impl {
  SearchConfig config;
  Space space;
  int sign;
  int dims;
  std::vector<Point> successes, failures;
  std::vector<Pending> outstanding;  // in suggestion order
  int resample_count = 0;
  std::uint64_t next_id = 0;
  int factor = 1;
  Rng rng;
  Vec center;
  GpHyper hyp_output, hyp_cost, hyp_success, hyp_pareto;
  long long fitted_at = -1;  // observation count at the last hyper-parameter fit (-1: never)
  // Adaptive radius: initial_search_radius * 2^radius_level, and the current runs of Bayesian
  // results that did (improved_run) or did not (stalled_run) improve the front.
  int radius_level = 0, improved_run = 0, stalled_run = 0;
  // Trend steps suggested so far, and trend results in a row that did not beat the best
  // success (two end the trend phase for good).
  int trend_taken = 0, trend_misses = 0;
  Model model;
  mutable std::mutex mutex;

  explicit Impl(const SearchConfig& c)
      : config(c),
        space(c.search),
        sign(c.sign()),
        dims(space.dims()),
        factor(space.overgenerate_factor()),
        rng(static_cast<std::uint64_t>(c.seed)) {
    const auto cb = space.center_basic();
    center = Eigen::Map<const Vec>(cb.data(), dims);
    const double r = c.carbs.initial_search_radius;
    hyp_output = GpHyper::reference(KernelKind::kLinearMatern, dims, r);
    hyp_cost = hyp_output;
    hyp_success = hyp_output;
    hyp_pareto = GpHyper::reference(KernelKind::kRbf, 1, r);
  }

  double surrogate(double y) const { return sign * model.quantile.forward(y); }
  bool fixed() const { return config.carbs.hyperparameters == "fixed"; }

  // ---- parameters
  Vec basic_of(const std::vector<double>& params) const {
    Vec b(dims);
    for (int i = 0; i < dims; ++i) b[i] = space.basic_from_param(i, params[i]);
    return b;
  }
  std::vector<double> params_of(const Vec& b) const {
    std::vector<double> p(dims);
    for (int i = 0; i < dims; ++i) p[i] = space.param_from_basic(i, b[i]);
    return p;
  }
  std::map<std::string, double> named(const std::vector<double>& p) const {
    std::map<std::string, double> m;
    for (int i = 0; i < dims; ++i) m[space.name(i)] = p[i];
    return m;
  }
  // Params map -> vector; missing names come from `defaults`, else an error (or the center).
  std::vector<double> from_map(const std::map<std::string, double>& m,
                               const std::map<std::string, double>* defaults,
                               bool use_center) const {
    for (const auto& [k, v] : m) {
      if (std::find(space.names().begin(), space.names().end(), k) == space.names().end()) {
        const std::string hint = config::nearest(k, space.names());
        throw SearchError("unknown parameter '" + k + "'" +
                          (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      }
    }
    std::vector<double> p(dims);
    std::string missing;
    for (int i = 0; i < dims; ++i) {
      auto it = m.find(space.name(i));
      if (it == m.end() && defaults) it = defaults->find(space.name(i));
      if (it != m.end() && (!defaults || it != defaults->end())) {
        p[i] = it->second;
      } else if (use_center) {
        p[i] = space.spec(i).center;
      } else {
        missing += (missing.empty() ? "" : ", ") + space.name(i);
        continue;
      }
      if (!std::isfinite(p[i]))
        throw SearchError("parameter '" + space.name(i) + "' is not a finite number");
      const ParamSpec& s = space.spec(i);
      const double slack = (s.integer && s.space != "logit") ? 0.1 : 0.0;
      if (p[i] < param_min(s) - slack || p[i] > param_max(s) + slack ||
          !std::isfinite(space.basic_from_param(i, p[i])))
        throw SearchError("parameter '" + space.name(i) + "' = " + std::to_string(p[i]) +
                          " is outside its search space [" + std::to_string(param_min(s)) + ", " +
                          std::to_string(param_max(s)) + "]");
    }
    if (!missing.empty()) throw SearchError("missing parameters: " + missing);
    return p;
  }

  bool duplicates_outstanding(const Vec& b) const {
    for (const auto& o : outstanding)
      if (isclose(b, o.basic)) return true;
    return false;
  }

  // ---- random sampling around origins (random phase and fallback), carbs.md §4.1
  Vec sample_around(const std::vector<Vec>& origins) {
    const double r = config.carbs.initial_search_radius;
    for (int attempt = 0; attempt < kSampleAttempts; ++attempt) {
      const int draws = kRandomBatch * factor;
      int valid = 0;
      std::optional<Vec> pick;
      for (int k = 0; k < draws; ++k) {
        const Vec& o = origins[origins.size() == 1 ? 0 : rng.index(origins.size())];
        Vec x(dims);
        for (int i = 0; i < dims; ++i) x[i] = o[i] + r * rng.normal();
        if (!space.inside(x.data())) continue;
        ++valid;
        if (!pick) {
          Vec rounded = x;
          for (int i = 0; i < dims; ++i) rounded[i] = space.round_in_basic(i, x[i]);
          if (!duplicates_outstanding(rounded)) pick = x;
        }
      }
      if (valid < kRandomBatch) factor = std::min(factor * 2, 1 << std::min(dims, 20));
      if (pick) return *pick;
    }
    throw SearchError(
        "could not sample a point strictly inside the search bounds around the search center "
        "after " +
        std::to_string(kSampleAttempts) +
        " rounds; widen min/max or reduce carbs.initial_search_radius");
  }

  // ---- the model
  std::vector<FrontGroup> front_of(bool conservative) const {
    std::vector<double> out, cost;
    for (const auto& p : successes) {
      out.push_back(p.output);
      cost.push_back(p.cost);
    }
    FrontOptions fo;
    fo.sign = sign;
    fo.min_cost_fraction = config.carbs.min_pareto_cost_fraction;
    fo.conservative = conservative;
    return pareto_front(out, cost, group_ids(successes), fo);
  }

  void fit_gp(GpHyper& h, const Mat& X, const Vec& y, const char* what) {
    if (fixed() || X.rows() < 3) return;
    const Eigen::Index n = std::min<Eigen::Index>(X.rows(), kMaxFitObservations);
    std::string error;
    h = Gp::fit(h, X.topRows(n), y.head(n), config.carbs.initial_search_radius, &error);
    if (!error.empty())
      spdlog::warn("search: {} GP: {}; keeping the previous hyper-parameters", what, error);
  }

  void build_model() {
    if (model.valid) return;
    Model m;
    const int cap = config.carbs.max_gp_observations;
    std::vector<double> outs, costs;
    for (const auto& p : successes) {
      outs.push_back(p.output);
      costs.push_back(p.cost);
    }
    m.quantile.fit(outs);
    m.cost_scale.fit(costs);
    model.quantile = m.quantile;  // surrogate() reads model.quantile
    m.front = front_of(config.carbs.conservative_pareto);
    for (const auto& g : m.front) m.origins.push_back(successes[g.members[0]].basic);

    // Observations the GPs see: all of them up to the cap; beyond it the Pareto points' own
    // observations first, then the ones nearest to any Pareto origin (the candidates live
    // within a few search radii of the origins, so far-away points barely change predictions).
    auto nearest_first = [&](const std::vector<const Point*>& pts, std::size_t limit,
                             std::vector<char> preferred) {
      std::vector<std::size_t> idx(pts.size());
      std::iota(idx.begin(), idx.end(), 0);
      if (pts.size() <= limit) return idx;
      std::vector<double> dist(pts.size(), 0.0);
      for (std::size_t i = 0; i < pts.size(); ++i) {
        double best = std::numeric_limits<double>::infinity();
        for (const auto& o : m.origins) best = std::min(best, (pts[i]->basic - o).squaredNorm());
        dist[i] = preferred.empty() || !preferred[i] ? best : -1.0;
      }
      std::stable_sort(idx.begin(), idx.end(),
                       [&](std::size_t a, std::size_t b) { return dist[a] < dist[b]; });
      idx.resize(limit);
      return idx;
    };
    std::vector<const Point*> sp;
    for (const auto& p : successes) sp.push_back(&p);
    std::vector<char> on_front(successes.size(), 0);
    for (const auto& g : m.front)
      for (std::size_t i : g.members) on_front[i] = 1;
    const auto sub = nearest_first(sp, static_cast<std::size_t>(cap), on_front);
    std::vector<const Vec*> xs;
    Vec y_out(static_cast<Eigen::Index>(sub.size())), y_cost(y_out.size());
    for (std::size_t k = 0; k < sub.size(); ++k) {
      xs.push_back(&successes[sub[k]].basic);
      y_out[static_cast<Eigen::Index>(k)] = surrogate(successes[sub[k]].output);
      y_cost[static_cast<Eigen::Index>(k)] = m.cost_scale.forward(successes[sub[k]].cost);
    }
    const Mat X = rows(xs, dims);

    // Pareto GP data: every observation of every front group (not group means).
    std::vector<double> px, py;
    for (const auto& g : m.front)
      for (std::size_t i : g.members) {
        px.push_back(m.cost_scale.forward(successes[i].cost));
        py.push_back(surrogate(successes[i].output));
      }
    if (px.size() > static_cast<std::size_t>(cap)) {
      px.resize(static_cast<std::size_t>(cap));
      py.resize(static_cast<std::size_t>(cap));
    }
    const Mat PX = Eigen::Map<const Vec>(px.data(), static_cast<Eigen::Index>(px.size()));
    const Vec PY = Eigen::Map<const Vec>(py.data(), static_cast<Eigen::Index>(py.size()));
    m.pareto_lo = *std::min_element(px.begin(), px.end());
    m.pareto_hi = *std::max_element(px.begin(), px.end());

    // Success GP data: successes then failures, labels -1 / +1.
    m.has_success = !failures.empty() && !successes.empty();
    Mat SX;
    Vec SY;
    if (m.has_success) {
      std::vector<const Point*> fp;
      for (const auto& p : failures) fp.push_back(&p);
      const auto fsub = nearest_first(fp, static_cast<std::size_t>(cap / 2), {});
      std::vector<const Vec*> sx = xs;
      for (std::size_t k : fsub) sx.push_back(&failures[k].basic);
      SX = rows(sx, dims);
      SY = Vec::Constant(SX.rows(), -1.0);
      SY.tail(static_cast<Eigen::Index>(fsub.size())).setConstant(1.0);
    }

    // Hyper-parameters: refit every `refit_every` observations, warm-started from the last fit.
    const long long total = static_cast<long long>(successes.size() + failures.size());
    if (!fixed() && (fitted_at < 0 || total - fitted_at >= config.carbs.refit_every)) {
      fit_gp(hyp_output, X, y_out, "output");
      fit_gp(hyp_cost, X, y_cost, "cost");
      if (m.has_success) fit_gp(hyp_success, SX, SY, "success");
      fit_gp(hyp_pareto, PX, PY, "pareto");
      fitted_at = total;
    }
    m.output = Gp(hyp_output);
    m.output.set_data(X, y_out);
    m.cost = Gp(hyp_cost);
    m.cost.set_data(X, y_cost);
    if (m.has_success) {
      m.success = Gp(hyp_success);
      m.success.set_data(SX, SY);
    }
    m.pareto = Gp(hyp_pareto);
    m.pareto.set_data(PX, PY);
    m.valid = true;
    model = std::move(m);
  }

  double radius() const {
    return config.carbs.initial_search_radius * std::ldexp(1.0, radius_level);
  }

  // Whether a success improves the performance-cost front: nothing at most as expensive is as
  // good. O(successes), once per observation.
  bool improves_front(double output, double cost) const {
    for (const auto& q : successes)
      if (q.cost <= cost && sign * q.output >= sign * output) return false;
    return true;
  }

  // The trust-region rule of adaptive_radius (TuRBO, Eriksson et al. 2019, with the front in
  // place of the incumbent): a run of improving Bayesian results means the front moves faster
  // than one radius per step, a run without means the steps overshoot. Only Bayesian results
  // count (random and resample suggestions say nothing about the step size).
  void adapt_radius(bool improved) {
    const CarbsParams& cp = config.carbs;
    if (!cp.adaptive_radius) return;
    const int top = static_cast<int>(std::floor(std::log2(cp.max_radius_factor) + 1e-9));
    const int bottom = static_cast<int>(std::ceil(std::log2(cp.min_radius_factor) - 1e-9));
    if (improved) {
      stalled_run = 0;
      if (++improved_run >= cp.radius_grow_after) {
        radius_level = std::min(radius_level + 1, top);
        improved_run = 0;
      }
    } else {
      improved_run = 0;
      if (++stalled_run >= cp.radius_shrink_after) {
        radius_level = std::max(radius_level - 1, bottom);
        stalled_run = 0;
      }
    }
  }

  // ---- a Bayesian candidate, carbs.md §6-7. Returns false with a reason when there is none.
  bool bayes_candidate(Vec* best_x, Suggestion* s, std::string* reason) {
    build_model();
    const CarbsParams& cp = config.carbs;
    const double r = radius();
    const int n_want = cp.num_candidates_per_dim * dims;
    // With several workers, the pending Bayesian suggestions are where the front is moving: a
    // sequential searcher would already search around them once observed, so they are origins
    // too (their outcome enters through the Thompson/mean belief below).
    std::vector<Vec> origins = model.origins;
    if (cp.pending_origins)
      for (const auto& o : outstanding)
        if (o.kind == SuggestionKind::kBayes) origins.push_back(o.basic);

    // 1. Candidates around the origins with the Gaussian prior weight (before rounding). The
    // reference draws n_want * factor samples and keeps the first n_want inside the bounds;
    // drawing lazily until n_want are inside keeps the same candidates' distribution and the
    // same factor rule at a fraction of the cost (factor 32 for 10 bounded dimensions).
    Mat C(n_want, dims);  // (m, d), rounded candidates
    std::vector<double> prior;
    const long long draws = static_cast<long long>(n_want) * factor;
    Vec x(dims);
    int m = 0;
    for (long long k = 0; k < draws && m < n_want; ++k) {
      const Vec& o = origins[origins.size() == 1 ? 0 : rng.index(origins.size())];
      for (int i = 0; i < dims; ++i) x[i] = o[i] + r * rng.normal();
      double d2 = std::numeric_limits<double>::infinity();
      for (const auto& oo : origins) d2 = std::min(d2, (x - oo).squaredNorm());
      for (int i = 0; i < dims; ++i) x[i] = space.round_in_basic(i, x[i]);
      if (!space.inside(x.data())) continue;
      C.row(m++) = x.transpose();
      prior.push_back(prior_weight(d2, r));  // of the unrounded sample, as the reference
    }
    if (m < n_want) factor = std::min(factor * 2, 1 << std::min(dims, 20));
    if (m == 0) {
      *reason = "no candidate around the Pareto points fell inside the search bounds";
      return false;
    }
    C.conservativeResize(m, dims);

    // 2. Output GP with the outstanding suggestions believed (Thompson draws or the mean).
    Gp out = model.output;
    const double noise = kGpJitter + out.hyper().noise();
    for (const auto& o : outstanding) {
      Vec mu, var;
      out.predict(o.basic.transpose(), &mu, &var);
      double y = mu[0];
      if (cp.outstanding == "thompson") y += std::sqrt(var[0]) * rng.normal();
      out.append(o.basic, y, noise);
    }
    Vec mu, var, lcost, pmean;
    out.predict(C, &mu, &var);
    model.cost.predict(C, &lcost, nullptr);

    // 3. The Pareto reference at each candidate's predicted cost (+ the random threshold).
    Mat lclamped = lcost.cwiseMax(model.pareto_lo).cwiseMin(model.pareto_hi);
    model.pareto.predict(lclamped, &pmean, nullptr);
    // A fraction of suggestions skips the threshold and competes with the front at its own
    // predicted cost: the clamp alone only climbs the cost axis (carbs.md §16), while the paper
    // means to improve the whole front. No draw when the fraction is 0 (the reference stream).
    bool clamp = cp.clamp_pareto_threshold;
    if (clamp && cp.own_cost_fraction > 0 && rng.uniform(0, 1) < cp.own_cost_fraction)
      clamp = false;
    if (clamp) {
      const double a = std::log(model.front.front().mean_cost);
      double b = model.front.size() > 1 ? std::log(model.front.back().mean_cost) : a;
      if (cp.max_suggestion_cost) b = std::min(b, std::log(*cp.max_suggestion_cost));
      const double t = std::exp(rng.uniform(a, b));
      Mat lt(1, 1);
      lt(0, 0) = std::clamp(model.cost_scale.forward(t), model.pareto_lo, model.pareto_hi);
      Vec pt;
      model.pareto.predict(lt, &pt, nullptr);
      pmean = pmean.cwiseMax(pt[0]);
    }
    if (cp.pareto_value_always_max) pmean.setConstant(surrogate(model.front.back().mean_output));

    Vec smu, svar;
    if (model.has_success) model.success.predict(C, &smu, &svar);

    // 4. Acquisition = EI(threshold = pareto + bias) * prior * P(success) * [cost < max].
    int best = -1;
    double best_acq = -1;
    bool any_affordable = false;
    std::vector<double> psucc(static_cast<std::size_t>(m), 1.0), cost(psucc.size());
    for (std::size_t k = 0; k < psucc.size(); ++k) {
      const auto e = static_cast<Eigen::Index>(k);
      cost[k] = model.cost_scale.inverse(lcost[e]);
      if (cp.max_suggestion_cost && !(cost[k] < *cp.max_suggestion_cost)) continue;
      any_affordable = true;
      if (model.has_success) psucc[k] = success_probability(smu[e], svar[e]);
      const double acq =
          expected_improvement(mu[e], var[e], pmean[e], cp.exploration_bias) * prior[k] * psucc[k];
      if (acq > best_acq && !duplicates_outstanding(C.row(e).transpose())) {
        best_acq = acq;
        best = static_cast<int>(k);
      }
    }
    if (!any_affordable) {
      *reason = "every candidate is predicted to cost more than carbs.max_suggestion_cost (" +
                std::to_string(*cp.max_suggestion_cost) + ")";
      return false;
    }
    if (best < 0) {
      *reason = "every affordable candidate repeats an outstanding suggestion";
      return false;
    }
    const auto e = static_cast<Eigen::Index>(best);
    *best_x = C.row(e).transpose();
    s->predicted_output = model.quantile.inverse(sign * mu[e]);
    s->predicted_cost = cost[static_cast<std::size_t>(best)];
    s->p_success = psucc[static_cast<std::size_t>(best)];
    return true;
  }

  bool trend_due() const { return trend_misses < 2 && trend_taken < config.carbs.trend_steps; }

  // A trend step (trend_steps): one search radius from the best success along the gradient of
  // a linear model of the outputs' ranks, with the gradient of a linear model of log cost
  // projected out, so the step improves at the same cost instead of buying improvement with cost
  // (the clamp already climbs the cost axis). A line search with linear models as in
  // trust-region derivative-free methods (Powell's COBYLA): it walks off a misplaced center in a
  // few evaluations, where EI creeps because the GP mean falls back to the median within a
  // length scale of the data (docs/search.md). The results count for the adaptive radius, so the
  // steps double as they keep improving. Outstanding trend suggestions extend the line (parallel
  // workers step on). None with fewer than d + 1 successes (no determined linear model), without
  // a direction, or when the step leaves the bounds.
  std::optional<Vec> trend_point() const {
    const auto n = static_cast<Eigen::Index>(successes.size());
    if (n < dims + 1) return std::nullopt;
    std::vector<std::size_t> order(successes.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return sign * successes[a].output < sign * successes[b].output;
    });
    const Vec& best = successes[order.back()].basic;
    // Least squares [1, x - best] beta = rank (0 worst .. 1 best) and the same for log cost;
    // ranks, because the outputs' scale is arbitrary and one outlier should not set the
    // direction. The minimum-norm solution copes with collinear points (earlier steps).
    Mat A(n, dims + 1);
    Mat Y(n, 2);
    for (Eigen::Index k = 0; k < n; ++k) {
      const Point& p = successes[order[static_cast<std::size_t>(k)]];
      A(k, 0) = 1;
      A.row(k).tail(dims) = (p.basic - best).transpose();
      Y(k, 0) = static_cast<double>(k) / static_cast<double>(n - 1);
      Y(k, 1) = std::log(p.cost);
    }
    const Mat beta = A.completeOrthogonalDecomposition().solve(Y);  // (d+1, 2)
    Vec g = beta.col(0).tail(dims), c = beta.col(1).tail(dims);
    if (c.squaredNorm() > 1e-18) g -= (g.dot(c) / c.squaredNorm()) * c;
    if (!(g.norm() > 1e-12)) return std::nullopt;
    Vec x = best;
    for (auto it = outstanding.rbegin(); it != outstanding.rend(); ++it)
      if (it->kind == SuggestionKind::kTrend) {
        x = it->basic;
        break;
      }
    x += radius() * g.normalized();
    for (int i = 0; i < dims; ++i) x[i] = space.round_in_basic(i, x[i]);
    if (!space.inside(x.data()) || duplicates_outstanding(x)) return std::nullopt;
    return x;
  }

  // The cost GP's prediction for a trend step, as for a Bayesian candidate (the orchestrator
  // budgets with it), and P(success) once there are failures; false when the cost reaches
  // max_suggestion_cost, when failure is the likelier outcome, or when there is a limit and the
  // model cannot be built.
  bool trend_step_allowed(const Vec& x, Suggestion* s) {
    const auto& limit = config.carbs.max_suggestion_cost;
    double cost = std::numeric_limits<double>::quiet_NaN(), p_success = 1;
    try {
      build_model();
      Mat X(1, dims);
      X.row(0) = x.transpose();
      Vec lcost;
      model.cost.predict(X, &lcost, nullptr);
      cost = model.cost_scale.inverse(lcost[0]);
      if (model.has_success) {
        Vec smu, svar;
        model.success.predict(X, &smu, &svar);
        p_success = success_probability(smu[0], svar[0]);
      }
    } catch (const std::exception&) {
      model.valid = false;
      if (limit) return false;
    }
    if ((limit && !(cost < *limit)) || p_success < 0.5) return false;
    s->predicted_cost = cost;
    s->p_success = p_success;
    return true;
  }

  bool resample_due() const {
    const int f = config.carbs.resample_frequency;
    return f > 0 && static_cast<long long>(successes.size()) >
                        static_cast<long long>(resample_count + 1) * f;
  }

  Vec resample_point() {
    const auto groups = front_of(false);  // the plain front, cheapest first
    std::size_t best = 0;
    long best_count = -1;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const Vec& x = successes[groups[g].members[0]].basic;
      long count = static_cast<long>(groups[g].members.size());
      for (const auto& o : outstanding) count += isclose(o.basic, x) ? 1 : 0;
      if (best_count < 0 || count < best_count) {
        best_count = count;
        best = g;
      }
    }
    ++resample_count;
    return successes[groups[best].members[0]].basic;
  }

  Suggestion suggest() {
    Suggestion s;
    Vec x;
    std::optional<Vec> trend;
    std::vector<double> params;
    if (static_cast<int>(successes.size()) < config.carbs.num_random_samples) {
      s.kind = SuggestionKind::kRandom;
      x = sample_around({center});
    } else if (trend_due() && (trend = trend_point()) && trend_step_allowed(*trend, &s)) {
      s.kind = SuggestionKind::kTrend;
      x = *trend;
      ++trend_taken;
    } else if (resample_due()) {
      s.kind = SuggestionKind::kResample;
      x = resample_point();
      // Exact parameters of the resampled observation (no round trip through basic).
      for (const auto& p : successes)
        if (p.basic == x) {
          params = p.params;
          break;
        }
    } else {
      std::string reason;
      bool ok = false;
      try {
        ok = bayes_candidate(&x, &s, &reason);
      } catch (const std::exception& e) {
        reason = std::string("model failed: ") + e.what();
        model.valid = false;
      }
      if (ok) {
        s.kind = SuggestionKind::kBayes;
      } else {
        s = Suggestion();
        s.kind = SuggestionKind::kFallback;
        s.fallback_reason = reason;
        spdlog::warn("search: sampling randomly around the Pareto points: {}", reason);
        std::vector<Vec> origins;
        for (const auto& g : front_of(config.carbs.conservative_pareto))
          origins.push_back(successes[g.members[0]].basic);
        x = sample_around(origins);
      }
    }
    if (params.empty()) params = params_of(x);
    Pending p;
    p.id = "c" + std::to_string(++next_id);
    p.params = params;
    p.basic = basic_of(params);
    p.kind = s.kind;
    outstanding.push_back(p);
    s.id = p.id;
    s.params = named(params);
    return s;
  }

  void add(const std::vector<double>& params, double output, double cost, bool failed,
           const std::string& id) {
    Point p;
    p.params = params;
    p.basic = basic_of(params);
    p.output = output;
    p.cost = cost;
    p.id = id;
    if (failed || !std::isfinite(output))
      failures.push_back(std::move(p));
    else
      successes.push_back(std::move(p));
    model.valid = false;
  }

  std::vector<Pending>::iterator find_outstanding(const std::string& id) {
    return std::find_if(outstanding.begin(), outstanding.end(),
                        [&](const Pending& p) { return p.id == id; });
  }

  void observe(const Observation& o) {
    const bool success = !o.failed && std::isfinite(o.output);
    auto it = outstanding.end();
    if (!o.suggestion_id.empty()) {
      it = find_outstanding(o.suggestion_id);
      if (it == outstanding.end())
        throw SearchError("unknown suggestion id '" + o.suggestion_id +
                          "': not outstanding (never suggested, already observed or forgotten)");
    }
    std::vector<double> params;
    if (o.params.empty()) {
      if (it == outstanding.end())
        throw SearchError("an observation needs a suggestion id or the parameter values");
      params = it->params;
    } else {
      params = from_map(o.params, nullptr, false);
    }
    if (success && !(std::isfinite(o.cost) && o.cost > 0))
      throw SearchError("cost must be a finite number > 0 (it is modelled on a log scale), got " +
                        std::to_string(o.cost));
    const bool model_step = it != outstanding.end() && (it->kind == SuggestionKind::kBayes ||
                                                        it->kind == SuggestionKind::kTrend);
    if (model_step) adapt_radius(success && improves_front(o.output, o.cost));
    if (it != outstanding.end() && it->kind == SuggestionKind::kTrend) {
      bool best = success;  // beats every success so far (the trend is still ahead)
      for (const auto& q : successes)
        if (sign * q.output >= sign * o.output) best = false;
      // A failure ends the phase at once: the line has run into a failure region (divergence,
      // out of memory) and the next, longer step would go further in.
      trend_misses = !success ? 2 : best ? 0 : trend_misses + 1;
    }
    if (it != outstanding.end()) outstanding.erase(it);
    add(params, o.output, o.cost, !success, o.suggestion_id);
  }

  // The state's "successes" and "failures" arrays, serialised once per point as points are
  // added (points are only ever appended), so save_state() does JSON work for the new points
  // only; the text is still copied whole (memcpy speed) into every state.
  struct SerializedPoints {
    std::string text;  // the array's elements, comma-separated
    std::size_t count = 0;
  };
  mutable SerializedPoints successes_json, failures_json;

  static const std::string& serialized(const std::vector<Point>& pts, SerializedPoints& into) {
    for (; into.count < pts.size(); ++into.count) {
      const Point& p = pts[into.count];
      const nlohmann::json j = {
          {"params", p.params},
          {"output", std::isfinite(p.output) ? nlohmann::json(p.output) : nlohmann::json(nullptr)},
          {"cost", p.cost},
          {"id", p.id}};
      if (into.count > 0) into.text += ',';
      into.text += j.dump();
    }
    return into.text;
  }
};

namespace {
std::vector<double> read_params(const nlohmann::json& j, int dims) {
  auto p = j.get<std::vector<double>>();
  if (static_cast<int>(p.size()) != dims)
    throw SearchError("state: a point has " + std::to_string(p.size()) + " values, expected " +
                      std::to_string(dims));
  return p;
}
}  // namespace

// ---- public interface

Carbs::Carbs(const SearchConfig& config) {
  std::vector<std::string> errors;
  config.validate(errors);
  for (const auto& [name, spec] : config.search) {
    std::vector<std::string> e;
    spec.validate(e);
    for (const auto& m : e) errors.push_back("search." + name + ": " + m);
  }
  if (config.search.empty()) errors.push_back("search: no parameters to search");
  if (!errors.empty()) {
    std::string text = "invalid search config:";
    for (const auto& e : errors) text += "\n  " + e;
    throw SearchError(text);
  }
  impl_ = std::make_unique<Impl>(config);
}
Carbs::Carbs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Carbs::~Carbs() = default;
Carbs::Carbs(Carbs&&) noexcept = default;
Carbs& Carbs::operator=(Carbs&&) noexcept = default;

Suggestion Carbs::suggest() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->suggest();
}

void Carbs::observe(const Observation& observation) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->observe(observation);
}

void Carbs::forget(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->find_outstanding(id);
  if (it == impl_->outstanding.end())
    throw SearchError("unknown suggestion id '" + id + "': not outstanding");
  impl_->outstanding.erase(it);
}

void Carbs::warm_start(const std::vector<Observation>& observations,
                       const std::map<std::string, double>& added_defaults) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& m = *impl_;
  std::vector<std::vector<double>> all;  // validate everything before changing anything
  for (const auto& o : observations) {
    all.push_back(m.from_map(o.params, &added_defaults, true));
    const bool success = !o.failed && std::isfinite(o.output);
    if (success && !(std::isfinite(o.cost) && o.cost > 0))
      throw SearchError("warm start: an observation has cost " + std::to_string(o.cost) +
                        "; costs must be > 0");
  }
  for (std::size_t i = 0; i < observations.size(); ++i)
    m.add(all[i], observations[i].output, observations[i].cost, observations[i].failed, "");
  // The best success becomes the search center.
  const Point* best = nullptr;
  for (const auto& p : m.successes)
    if (!best || m.sign * p.output > m.sign * best->output) best = &p;
  if (best) {
    m.center = best->basic;
    // The trend phase walks off a center that may be far off; a warm start's center is the
    // best earlier result, and a linear trend over another sweep's history means little.
    m.trend_misses = 2;
  }
}

std::vector<ParetoPoint> Carbs::pareto() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<ParetoPoint> out;
  for (const auto& g : impl_->front_of(impl_->config.carbs.conservative_pareto)) {
    ParetoPoint p;
    p.params = impl_->named(impl_->successes[g.members[0]].params);
    p.output = g.mean_output;
    p.cost = g.mean_cost;
    p.count = static_cast<int>(g.members.size());
    out.push_back(std::move(p));
  }
  return out;
}

std::string Carbs::save_state() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const Impl& m = *impl_;
  nlohmann::json j;
  j["format"] = "scaletune-carbs-state";
  j["version"] = kStateVersion;
  j["config"] = config::to_json(m.config);
  j["param_order"] = m.space.names();  // JSON objects do not keep the dimension order
  nlohmann::json pend = nlohmann::json::array();
  for (const auto& p : m.outstanding)
    pend.push_back({{"id", p.id}, {"params", p.params}, {"kind", kind_name(p.kind)}});
  j["outstanding"] = pend;
  j["resample_count"] = m.resample_count;
  j["next_id"] = m.next_id;
  j["overgenerate_factor"] = m.factor;
  j["rng"] = m.rng.state();
  j["center"] = std::vector<double>(m.center.data(), m.center.data() + m.center.size());
  j["hyper"] = {{"output", theta_json(m.hyp_output)},
                {"cost", theta_json(m.hyp_cost)},
                {"success", theta_json(m.hyp_success)},
                {"pareto", theta_json(m.hyp_pareto)}};
  j["fitted_at"] = m.fitted_at;
  j["radius"] = {
      {"level", m.radius_level}, {"improved_run", m.improved_run}, {"stalled_run", m.stalled_run}};
  j["trend"] = {{"taken", m.trend_taken}, {"misses", m.trend_misses}};
  // The two long arrays are spliced in as text (their members are in the same order).
  std::string text = j.dump();
  text.pop_back();  // the object's closing brace
  text += ",\"successes\":[";
  text += Impl::serialized(m.successes, m.successes_json);
  text += "],\"failures\":[";
  text += Impl::serialized(m.failures, m.failures_json);
  text += "]}";
  return text;
}

Carbs Carbs::load_state(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw SearchError(std::string("search state is not valid JSON: ") + e.what());
  }
  try {
    if (j.value("format", "") != "scaletune-carbs-state")
      throw SearchError("not a scaletune search state (missing \"format\")");
    if (j.at("version").get<int>() != kStateVersion)
      throw SearchError("search state version " + j.at("version").dump() + " is not supported");
    // The config goes back through the binder (JSON is YAML), so it is checked like a file.
    SearchConfig cfg =
        config::bind<SearchConfig>(config::Document::parse(j.at("config").dump(), "search state"));
    const auto order = j.at("param_order").get<std::vector<std::string>>();
    config::Named<ParamSpec> ordered;
    for (const auto& name : order)
      for (const auto& [n, spec] : cfg.search)
        if (n == name) ordered.emplace_back(n, spec);
    if (ordered.size() != cfg.search.size())
      throw SearchError("search state: param_order does not match the searched parameters");
    cfg.search = ordered;
    Carbs c(cfg);
    Impl& m = *c.impl_;
    auto read_points = [&](const nlohmann::json& a, bool failed) {
      for (const auto& p : a) {
        const double out = p.at("output").is_null() ? std::numeric_limits<double>::quiet_NaN()
                                                    : p.at("output").get<double>();
        m.add(read_params(p.at("params"), m.dims), out, p.at("cost").get<double>(), failed,
              p.at("id").get<std::string>());
      }
    };
    read_points(j.at("successes"), false);
    read_points(j.at("failures"), true);
    for (const auto& p : j.at("outstanding")) {
      Pending pe;
      pe.id = p.at("id").get<std::string>();
      pe.params = read_params(p.at("params"), m.dims);
      pe.basic = m.basic_of(pe.params);
      const std::string kind = p.at("kind").get<std::string>();
      for (auto k : {SuggestionKind::kRandom, SuggestionKind::kBayes, SuggestionKind::kResample,
                     SuggestionKind::kFallback, SuggestionKind::kTrend})
        if (kind == kind_name(k)) pe.kind = k;
      m.outstanding.push_back(pe);
    }
    m.resample_count = j.at("resample_count").get<int>();
    m.next_id = j.at("next_id").get<std::uint64_t>();
    m.factor = j.at("overgenerate_factor").get<int>();
    m.rng.set_state(j.at("rng").get<std::string>());
    const auto center = read_params(j.at("center"), m.dims);
    m.center = Eigen::Map<const Vec>(center.data(), m.dims);
    auto read_hyper = [&](GpHyper& h, const char* key) {
      auto t = j.at("hyper").at(key).get<std::vector<double>>();
      if (t.size() != h.theta.size())
        throw SearchError(std::string("search state: hyper.") + key + " has the wrong length");
      h.theta = t;
    };
    read_hyper(m.hyp_output, "output");
    read_hyper(m.hyp_cost, "cost");
    read_hyper(m.hyp_success, "success");
    read_hyper(m.hyp_pareto, "pareto");
    m.fitted_at = j.at("fitted_at").get<long long>();
    if (j.contains("radius")) {  // absent in states written before adaptive_radius existed
      const auto& r = j.at("radius");
      m.radius_level = r.at("level").get<int>();
      m.improved_run = r.at("improved_run").get<int>();
      m.stalled_run = r.at("stalled_run").get<int>();
    }
    if (j.contains("trend")) {  // absent in states written before trend_steps existed
      m.trend_taken = j.at("trend").at("taken").get<int>();
      m.trend_misses = j.at("trend").at("misses").get<int>();
    }
    return c;
  } catch (const SearchError&) {
    throw;
  } catch (const config::ConfigError& e) {
    std::string text = "search state has an invalid config:";
    for (const auto& p : e.problems()) text += "\n  " + p.str();
    throw SearchError(text);
  } catch (const std::exception& e) {
    throw SearchError(std::string("search state is malformed: ") + e.what());
  }
}

const SearchConfig& Carbs::config() const { return impl_->config; }
std::vector<std::string> Carbs::param_names() const { return impl_->space.names(); }
std::size_t Carbs::num_successes() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->successes.size();
}
std::size_t Carbs::num_failures() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->failures.size();
}
double Carbs::search_radius() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->radius();
}
std::size_t Carbs::num_outstanding() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->outstanding.size();
}
std::vector<std::string> Carbs::outstanding_ids() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<std::string> ids;
  for (const auto& p : impl_->outstanding) ids.push_back(p.id);
  return ids;
}

}  // namespace scaletune::search
