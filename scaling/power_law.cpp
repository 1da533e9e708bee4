// Log-space least squares for power laws, Pareto fronts and near-optimal bands.
#include "scaling/power_law.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace scaletune::scaling {

double PowerLawFit::predict(double x) const { return std::exp(log_k + p * std::log(x)); }

double TwoVariableFit::predict(double n, double d) const {
  return std::exp(log_k + p * std::log(n) + q * std::log(d));
}

namespace {

bool all_positive(const std::vector<double>& v, std::string& error, const char* what) {
  for (double x : v) {
    if (!(x > 0) || !std::isfinite(x)) {
      error = std::string(what) + " must be positive and finite for a power-law fit, got " +
              std::to_string(x);
      return false;
    }
  }
  return true;
}

double r_squared(const Eigen::VectorXd& y, const Eigen::VectorXd& residual) {
  const double mean = y.mean();
  const double total = (y.array() - mean).square().sum();
  return total > 0 ? 1.0 - residual.squaredNorm() / total : 1.0;
}

}  // namespace

PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y) {
  PowerLawFit fit;
  if (x.size() != y.size()) {
    fit.error = "x and y have different lengths";
    return fit;
  }
  if (x.size() < 2) {
    fit.error = "needs at least 2 points, got " + std::to_string(x.size());
    return fit;
  }
  if (!all_positive(x, fit.error, "x") || !all_positive(y, fit.error, "y")) return fit;
  const std::size_t n = x.size();
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = std::log(x[i]) - mx, dy = std::log(y[i]) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  // Relative test: x values equal to ~1e-12 in log space are one scale, not a slope.
  if (sxx <= 1e-20 * std::max(1.0, mx * mx) * n) {
    fit.error = "all points have the same x; needs at least 2 distinct scales";
    return fit;
  }
  fit.p = sxy / sxx;
  fit.log_k = my - fit.p * mx;
  double sse = 0;
  fit.residuals.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    fit.residuals[i] = std::log(y[i]) - (fit.log_k + fit.p * std::log(x[i]));
    sse += fit.residuals[i] * fit.residuals[i];
  }
  fit.r2 = syy > 0 ? 1.0 - sse / syy : 1.0;
  fit.ok = true;
  return fit;
}

TwoVariableFit fit_two_variable(const std::vector<double>& n, const std::vector<double>& d,
                                const std::vector<double>& y) {
  TwoVariableFit fit;
  if (n.size() != d.size() || n.size() != y.size()) {
    fit.error = "N, D and y have different lengths";
    return fit;
  }
  if (n.size() < 4) {
    fit.error = "needs at least 4 points, got " + std::to_string(n.size());
    return fit;
  }
  if (!all_positive(n, fit.error, "N") || !all_positive(d, fit.error, "D") ||
      !all_positive(y, fit.error, "y"))
    return fit;
  const Eigen::Index m = static_cast<Eigen::Index>(n.size());
  Eigen::MatrixXd X(m, 3);
  Eigen::VectorXd Y(m);
  for (Eigen::Index i = 0; i < m; ++i) {
    X(i, 0) = 1.0;
    X(i, 1) = std::log(n[i]);
    X(i, 2) = std::log(d[i]);
    Y(i) = std::log(y[i]);
  }
  // Centre the regressors so the collinearity test does not see the intercept.
  Eigen::MatrixXd centred = X.rightCols(2).rowwise() - X.rightCols(2).colwise().mean();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(centred);
  const auto sv = svd.singularValues();
  if (sv(0) <= 0 || sv(1) / sv(0) < 1e-6) {
    fit.error =
        "ln N and ln D are collinear (e.g. D fixed per N, or D proportional to N); "
        "a two-variable law needs both to vary independently";
    return fit;
  }
  const Eigen::Vector3d beta = X.colPivHouseholderQr().solve(Y);
  fit.log_k = beta(0);
  fit.p = beta(1);
  fit.q = beta(2);
  const Eigen::VectorXd residual = Y - X * beta;
  fit.residuals.assign(residual.data(), residual.data() + m);
  fit.r2 = r_squared(Y, residual);
  fit.ok = true;
  return fit;
}

std::vector<std::size_t> pareto_front(const std::vector<double>& cost,
                                      const std::vector<double>& loss) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < cost.size(); ++i)
    if (std::isfinite(loss[i]) && std::isfinite(cost[i])) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return cost[a] != cost[b] ? cost[a] < cost[b] : loss[a] < loss[b];
  });
  std::vector<std::size_t> front;
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t i : order) {
    if (loss[i] < best) {
      front.push_back(i);
      best = loss[i];
    }
  }
  return front;
}

std::vector<int> compute_buckets(const std::vector<double>& compute, double gap) {
  std::vector<std::size_t> order(compute.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return compute[a] < compute[b]; });
  std::vector<int> bucket(compute.size(), -1);
  int id = -1;
  double previous = 0;
  const double log_gap = std::log1p(gap);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const double c = compute[order[k]];
    if (!(c > 0)) continue;
    const double lc = std::log(c);
    if (id < 0 || lc - previous > log_gap) ++id;
    bucket[order[k]] = id;
    previous = lc;
  }
  return bucket;
}

std::vector<int> snap_to_budgets(const std::vector<double>& compute,
                                 const std::vector<double>& budgets, double tolerance) {
  std::vector<int> bucket(compute.size(), -1);
  for (std::size_t i = 0; i < compute.size(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t b = 0; b < budgets.size(); ++b) {
      const double rel = std::fabs(compute[i] / budgets[b] - 1.0);
      if (rel <= tolerance && rel < best) {
        best = rel;
        bucket[i] = static_cast<int>(b);
      }
    }
  }
  return bucket;
}

int count_buckets(const std::vector<int>& bucket) {
  std::vector<int> ids;
  for (int b : bucket)
    if (b >= 0) ids.push_back(b);
  std::sort(ids.begin(), ids.end());
  return static_cast<int>(std::unique(ids.begin(), ids.end()) - ids.begin());
}

std::vector<std::size_t> near_optimal_band(const std::vector<double>& loss,
                                           const std::vector<int>& bucket, double fraction) {
  std::map<int, double> best;
  for (std::size_t i = 0; i < loss.size(); ++i) {
    if (bucket[i] < 0 || !std::isfinite(loss[i])) continue;
    auto it = best.find(bucket[i]);
    if (it == best.end() || loss[i] < it->second) best[bucket[i]] = loss[i];
  }
  std::vector<std::size_t> band;
  for (std::size_t i = 0; i < loss.size(); ++i) {
    if (bucket[i] < 0 || !std::isfinite(loss[i])) continue;
    const double b = best[bucket[i]];
    // (1 + f) * best for positive losses; for negated returns (best < 0) the band is |best| * f.
    if (loss[i] <= b + std::fabs(b) * fraction) band.push_back(i);
  }
  return band;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(values.size() - 1, lo + 1);
  const double t = pos - static_cast<double>(lo);
  return values[lo] * (1 - t) + values[hi] * t;
}

}  // namespace scaletune::scaling
