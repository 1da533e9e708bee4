// Chinchilla approaches 1-3. Approach 3 minimises a Huber objective on log residuals with Ceres'
// L-BFGS from a grid of starts (scaling-methods.md §3); the grid runs on `threads` std::threads.
#include "scaling/chinchilla.h"

#include <ceres/ceres.h>
#include <glog/logging.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>

#include "scaling/parallel.h"

namespace scaletune::scaling {

double LossSurface::loss(double n, double d) const {
  return E + A * std::pow(n, -alpha) + B * std::pow(d, -beta);
}

double LossSurface::G() const { return std::pow((alpha * A) / (beta * B), 1.0 / (alpha + beta)); }
double LossSurface::n_opt(double compute) const { return G() * std::pow(compute / 6.0, a()); }
double LossSurface::d_opt(double compute) const { return std::pow(compute / 6.0, b()) / G(); }
double LossSurface::loss_opt(double compute) const { return loss(n_opt(compute), d_opt(compute)); }

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Standard normal upper tail.
double normal_sf(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }

// Normaliser of the Huber density exp(-H_delta(u)) (scaling-methods.md §3.4).
double huber_log_normaliser(double delta) {
  return std::log(std::sqrt(2.0 * M_PI) * (1.0 - 2.0 * normal_sf(delta)) +
                  2.0 * std::exp(-delta * delta / 2.0) / delta);
}

double huber(double r, double delta) {
  const double a = std::fabs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

// The Approach 3 objective over theta = (ln A, ln B, ln E, alpha, beta[, ln sigma]):
//   p_i = LSE(a - alpha ln N_i, b - beta ln D_i, e)            predicted ln L_i
//   sum:        F = sum_i w_i H_delta(p_i - ln L_i)
//   likelihood: F = sum_i w_i [H_delta((p_i - ln L_i) / sigma) + ln Z(delta) + ln sigma]
class HuberObjective final : public ceres::FirstOrderFunction {
 public:
  HuberObjective(const std::vector<double>& log_n, const std::vector<double>& log_d,
                 const std::vector<double>& log_l, const std::vector<double>& weight, double delta,
                 bool likelihood)
      : log_n_(log_n),
        log_d_(log_d),
        log_l_(log_l),
        weight_(weight),
        delta_(delta),
        likelihood_(likelihood),
        log_z_(huber_log_normaliser(delta)) {}

  int NumParameters() const override { return likelihood_ ? 6 : 5; }

  bool Evaluate(const double* theta, double* cost, double* gradient) const override {
    const double a = theta[0], b = theta[1], e = theta[2], alpha = theta[3], beta = theta[4];
    const double log_sigma = likelihood_ ? theta[5] : 0.0;
    const double inv_sigma = std::exp(-log_sigma);
    double f = 0, ga = 0, gb = 0, ge = 0, galpha = 0, gbeta = 0, gsigma = 0, total_w = 0;
    for (std::size_t i = 0; i < log_l_.size(); ++i) {
      const double w = weight_.empty() ? 1.0 : weight_[i];
      if (w == 0) continue;
      const double t1 = a - alpha * log_n_[i], t2 = b - beta * log_d_[i], t3 = e;
      const double m = std::max(t1, std::max(t2, t3));
      const double x1 = std::exp(t1 - m), x2 = std::exp(t2 - m), x3 = std::exp(t3 - m);
      const double s = x1 + x2 + x3;
      const double r = (m + std::log(s) - log_l_[i]) * inv_sigma;  // standardised residual
      f += w * huber(r, delta_);
      const double h = w * std::clamp(r, -delta_, delta_) * inv_sigma;  // dF/dp_i
      if (gradient) {
        const double inv_s = 1.0 / s;
        const double w1 = x1 * inv_s, w2 = x2 * inv_s, w3 = x3 * inv_s;  // softmax weights
        ga += h * w1;
        gb += h * w2;
        ge += h * w3;
        galpha -= h * w1 * log_n_[i];
        gbeta -= h * w2 * log_d_[i];
        gsigma -= w * std::clamp(r, -delta_, delta_) * r;  // d/d ln sigma of H(r / sigma)
      }
      total_w += w;
    }
    if (likelihood_) f += total_w * (log_z_ + log_sigma);
    if (!std::isfinite(f)) return false;
    *cost = f;
    if (gradient) {
      gradient[0] = ga;
      gradient[1] = gb;
      gradient[2] = ge;
      gradient[3] = galpha;
      gradient[4] = gbeta;
      if (likelihood_) gradient[5] = gsigma + total_w;
    }
    return true;
  }

 private:
  const std::vector<double>& log_n_;
  const std::vector<double>& log_d_;
  const std::vector<double>& log_l_;
  const std::vector<double>& weight_;
  double delta_;
  bool likelihood_;
  double log_z_;
};

struct LogData {
  std::vector<double> log_n, log_d, log_l;
  std::string error;
};

LogData to_logs(const std::vector<double>& n, const std::vector<double>& d,
                const std::vector<double>& loss) {
  LogData data;
  if (n.size() != d.size() || n.size() != loss.size()) {
    data.error = "N, D and loss have different lengths";
    return data;
  }
  if (n.size() < 5) {
    data.error = "Approach 3 has 5 parameters and needs more points than that, got " +
                 std::to_string(n.size());
    return data;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!(n[i] > 0) || !(d[i] > 0) || !(loss[i] > 0)) {
      data.error = "Approach 3 needs positive N, D and loss (point " + std::to_string(i) + ")";
      return data;
    }
    data.log_n.push_back(std::log(n[i]));
    data.log_d.push_back(std::log(d[i]));
    data.log_l.push_back(std::log(loss[i]));
  }
  return data;
}

struct Solved {
  std::array<double, 6> theta{};
  double cost = std::numeric_limits<double>::infinity();
  bool usable = false;
  bool converged = false;
};

// Ceres' line search logs a glog warning each time its cubic interpolation meets a flat
// polynomial; from thousands of starts that is noise on stderr, so raise glog's threshold once.
void quiet_ceres_logging() {
  static std::once_flag once;
  std::call_once(once, [] { FLAGS_minloglevel = std::max(FLAGS_minloglevel, 2); });
}

Solved solve_one(const HuberObjective* objective, const Approach3Options& options,
                 std::array<double, 6> theta) {
  quiet_ceres_logging();
  ceres::GradientProblemSolver::Options solver;
  solver.line_search_direction_type = ceres::LBFGS;
  solver.max_num_iterations = options.max_iterations;
  solver.function_tolerance = options.function_tolerance;
  solver.gradient_tolerance = options.gradient_tolerance;
  solver.parameter_tolerance = options.parameter_tolerance;
  solver.logging_type = ceres::SILENT;
  solver.minimizer_progress_to_stdout = false;
  // The problem owns its function; give it a non-owning wrapper around the shared objective.
  struct Borrowed final : ceres::FirstOrderFunction {
    explicit Borrowed(const HuberObjective* f) : f_(f) {}
    bool Evaluate(const double* x, double* c, double* g) const override {
      return f_->Evaluate(x, c, g);
    }
    int NumParameters() const override { return f_->NumParameters(); }
    const HuberObjective* f_;
  };
  ceres::GradientProblem problem(new Borrowed(objective));
  ceres::GradientProblemSolver::Summary summary;
  ceres::Solve(solver, problem, theta.data(), &summary);
  Solved out;
  out.theta = theta;
  out.usable = summary.IsSolutionUsable() && std::isfinite(summary.final_cost);
  out.converged = summary.termination_type == ceres::CONVERGENCE;
  out.cost = out.usable ? summary.final_cost : std::numeric_limits<double>::infinity();
  return out;
}

// The standardised-residual scale that minimises the likelihood for fixed parameters when most
// residuals are beyond delta (then F ~ delta sum|r|/sigma + n ln sigma): a good starting sigma.
double start_log_sigma(const LogData& data, const std::array<double, 6>& theta, double delta) {
  double sum = 0;
  for (std::size_t i = 0; i < data.log_l.size(); ++i) {
    const double t1 = theta[0] - theta[3] * data.log_n[i], t2 = theta[1] - theta[4] * data.log_d[i];
    const double m = std::max(t1, std::max(t2, theta[2]));
    const double p = m + std::log(std::exp(t1 - m) + std::exp(t2 - m) + std::exp(theta[2] - m));
    sum += std::fabs(p - data.log_l[i]);
  }
  const double mean = sum / static_cast<double>(data.log_l.size());
  return std::log(std::max(1e-8, delta * mean));
}

Approach3Fit finish(const LogData& data, const Solved& best, const Approach3Options& options) {
  Approach3Fit fit;
  fit.ok = best.usable;
  if (!fit.ok) {
    fit.error = "no start converged to a finite objective";
    return fit;
  }
  fit.params = best.theta;
  fit.objective = best.cost;
  fit.surface.A = std::exp(best.theta[0]);
  fit.surface.B = std::exp(best.theta[1]);
  fit.surface.E = std::exp(best.theta[2]);
  fit.surface.alpha = best.theta[3];
  fit.surface.beta = best.theta[4];
  fit.log_scale = options.likelihood ? best.theta[5] : 0.0;
  fit.residuals.resize(data.log_l.size());
  for (std::size_t i = 0; i < data.log_l.size(); ++i) {
    fit.residuals[i] = data.log_l[i] -
                       std::log(fit.surface.loss(std::exp(data.log_n[i]), std::exp(data.log_d[i])));
  }
  if (!(fit.surface.alpha > 0) || !(fit.surface.beta > 0)) {
    fit.ok = false;
    fit.error = "the optimum has a non-positive exponent (alpha " +
                std::to_string(fit.surface.alpha) + ", beta " + std::to_string(fit.surface.beta) +
                "): the data do not determine L(N, D)";
  }
  return fit;
}

}  // namespace

Approach3Fit fit_approach3(const std::vector<double>& n, const std::vector<double>& d,
                           const std::vector<double>& loss, const Approach3Options& options,
                           const std::vector<double>& weight) {
  const LogData data = to_logs(n, d, loss);
  if (!data.error.empty()) {
    Approach3Fit fit;
    fit.error = data.error;
    return fit;
  }
  const HuberObjective objective(data.log_n, data.log_d, data.log_l, weight, options.delta,
                                 options.likelihood);
  const Approach3Grid& g = options.grid;
  std::vector<std::array<double, 6>> starts;
  starts.reserve(g.size());
  for (double alpha : g.alpha)
    for (double beta : g.beta)
      for (double e : g.e)
        for (double a : g.a)
          for (double b : g.b) starts.push_back({a, b, e, alpha, beta, 0.0});
  std::vector<Solved> solved(starts.size());
  parallel_for(starts.size(), options.threads, [&](std::size_t i) {
    auto theta = starts[i];
    if (options.likelihood) theta[5] = start_log_sigma(data, theta, options.delta);
    solved[i] = solve_one(&objective, options, theta);
  });
  // Lowest objective wins; ties go to the earliest start so the result is thread-independent.
  std::size_t best = 0;
  std::size_t converged = 0;
  for (std::size_t i = 0; i < solved.size(); ++i) {
    converged += solved[i].converged ? 1 : 0;
    if (solved[i].cost < solved[best].cost) best = i;
  }
  Approach3Fit fit = solved.empty() ? Approach3Fit{} : finish(data, solved[best], options);
  if (solved.empty()) fit.error = "the start grid is empty";
  fit.starts = starts.size();
  fit.converged = converged;
  return fit;
}

Approach3Fit refine_approach3(const std::vector<double>& n, const std::vector<double>& d,
                              const std::vector<double>& loss, const Approach3Options& options,
                              const std::array<double, 6>& start,
                              const std::vector<double>& weight) {
  const LogData data = to_logs(n, d, loss);
  if (!data.error.empty()) {
    Approach3Fit fit;
    fit.error = data.error;
    return fit;
  }
  const HuberObjective objective(data.log_n, data.log_d, data.log_l, weight, options.delta,
                                 options.likelihood);
  const Solved solved = solve_one(&objective, options, start);
  Approach3Fit fit = finish(data, solved, options);
  fit.starts = 1;
  fit.converged = solved.converged ? 1 : 0;
  return fit;
}

// ---- Approach 2 -------------------------------------------------------------------------------

IsoFlopFit fit_isoflops(const std::vector<double>& compute, const std::vector<double>& n,
                        const std::vector<double>& loss, const IsoFlopOptions& options) {
  IsoFlopFit out;
  std::vector<int> bucket;
  std::vector<double> budgets = options.budgets;
  if (!budgets.empty()) {
    std::sort(budgets.begin(), budgets.end());
    bucket = snap_to_budgets(compute, budgets, options.snap_tolerance);
  } else {
    bucket = compute_buckets(compute, options.bucket_gap);
    const int k = count_buckets(bucket);
    std::vector<double> sum(k, 0.0), count(k, 0.0);
    for (std::size_t i = 0; i < compute.size(); ++i) {
      if (bucket[i] < 0) continue;
      sum[bucket[i]] += std::log(compute[i]);
      count[bucket[i]] += 1;
    }
    for (int b = 0; b < k; ++b) budgets.push_back(std::exp(sum[b] / count[b]));
  }
  std::vector<double> law_c, law_n, law_d;
  for (std::size_t b = 0; b < budgets.size(); ++b) {
    IsoFlopCurve curve;
    curve.compute = budgets[b];
    for (std::size_t i = 0; i < compute.size(); ++i)
      if (bucket[i] == static_cast<int>(b) && n[i] > 0 && std::isfinite(loss[i]))
        curve.points.push_back(i);
    if (options.nearest > 0 && static_cast<int>(curve.points.size()) > options.nearest) {
      const auto best = *std::min_element(curve.points.begin(), curve.points.end(),
                                          [&](auto i, auto j) { return loss[i] < loss[j]; });
      std::sort(curve.points.begin(), curve.points.end(), [&](auto i, auto j) {
        return std::fabs(std::log(n[i] / n[best])) < std::fabs(std::log(n[j] / n[best]));
      });
      curve.points.resize(options.nearest);
      std::sort(curve.points.begin(), curve.points.end());
    }
    const int m = static_cast<int>(curve.points.size());
    if (m < std::max(3, options.min_points)) {
      curve.error = std::to_string(m) + " points (needs " +
                    std::to_string(std::max(3, options.min_points)) + ")";
      out.curves.push_back(curve);
      continue;
    }
    Eigen::MatrixXd X(m, 3);
    Eigen::VectorXd Y(m);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int k = 0; k < m; ++k) {
      const double x = std::log(n[curve.points[k]]);
      X(k, 0) = x * x;
      X(k, 1) = x;
      X(k, 2) = 1;
      Y(k) = loss[curve.points[k]];
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    if (hi - lo < 1e-9) {
      curve.error = "all runs of this budget have the same N";
      out.curves.push_back(curve);
      continue;
    }
    const Eigen::Vector3d c = X.colPivHouseholderQr().solve(Y);
    curve.c2 = c(0);
    curve.c1 = c(1);
    curve.c0 = c(2);
    if (!(curve.c2 > 0)) {
      curve.error = "curvature <= 0: the loss has no minimum in N at this budget";
      out.curves.push_back(curve);
      continue;
    }
    const double x_star = -curve.c1 / (2 * curve.c2);
    curve.n_opt = std::exp(x_star);
    curve.d_opt = curve.compute / (6 * curve.n_opt);
    curve.loss_opt = curve.c0 - curve.c1 * curve.c1 / (4 * curve.c2);
    curve.vertex_inside = x_star >= lo && x_star <= hi;
    curve.ok = true;
    law_c.push_back(curve.compute);
    law_n.push_back(curve.n_opt);
    law_d.push_back(curve.d_opt);
    out.curves.push_back(curve);
  }
  out.usable = static_cast<int>(law_c.size());
  out.n_law = fit_power_law(law_c, law_n);
  out.d_law = fit_power_law(law_c, law_d);
  return out;
}

// ---- Approach 1 -------------------------------------------------------------------------------

std::vector<EnvelopePoint> envelope(const std::vector<Curve>& curves, int grid_points) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& c : curves) {
    for (double x : c.compute) {
      if (x > 0) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
  }
  std::vector<EnvelopePoint> out;
  if (!(hi > lo) || grid_points < 2) return out;
  const double llo = std::log(lo), lhi = std::log(hi);
  for (int g = 0; g < grid_points; ++g) {
    const double lc = llo + (lhi - llo) * g / (grid_points - 1);
    EnvelopePoint best;
    best.loss = std::numeric_limits<double>::infinity();
    for (std::size_t r = 0; r < curves.size(); ++r) {
      const auto& c = curves[r];
      if (c.compute.size() < 2 || !(c.compute.front() > 0)) continue;
      if (lc < std::log(c.compute.front()) - 1e-12 || lc > std::log(c.compute.back()) + 1e-12)
        continue;
      const auto it = std::lower_bound(c.compute.begin(), c.compute.end(), std::exp(lc));
      std::size_t j = static_cast<std::size_t>(it - c.compute.begin());
      j = std::clamp<std::size_t>(j, 1, c.compute.size() - 1);
      const double x0 = std::log(c.compute[j - 1]), x1 = std::log(c.compute[j]);
      const double y0 = std::log(c.loss[j - 1]), y1 = std::log(c.loss[j]);
      const double t = x1 > x0 ? std::clamp((lc - x0) / (x1 - x0), 0.0, 1.0) : 0.0;
      const double l = std::exp(y0 + t * (y1 - y0));
      if (l < best.loss) {
        best.loss = l;
        best.curve = r;
        best.n = c.n;
      }
    }
    if (!std::isfinite(best.loss)) continue;
    best.compute = std::exp(lc);
    best.d = best.n > 0 ? best.compute / (6 * best.n) : kNaN;
    out.push_back(best);
  }
  return out;
}

}  // namespace scaletune::scaling
