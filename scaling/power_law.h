// Power laws y = k * x^p and y = k * N^p * D^q fitted by ordinary least squares in log space,
// and the point selections they are fitted on: the performance-cost Pareto front, compute
// buckets, and DeepSeek's near-optimal band (docs/scaling.md, scaling-methods.md §1, §5).
//
// Everything here works on plain arrays and returns values; nothing throws on bad data — a fit
// that cannot be made says why in `error`.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace scaletune::scaling {

// y = exp(log_k) * x^p, fitted as OLS of ln y on ln x.
struct PowerLawFit {
  bool ok = false;
  std::string error;  // why the fit could not be made (when !ok)
  double log_k = 0;   // ln k (k itself over- or underflows for extreme exponents)
  double p = 0;
  double r2 = 0;                   // coefficient of determination in log space
  std::vector<double> residuals;   // ln y_i - (ln k + p ln x_i), in input order
  double predict(double x) const;  // k * x^p
};

// Needs >= 2 points with distinct positive x and positive y; non-positive values are an error.
PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y);

// y = exp(log_k) * N^p * D^q (Step Law form), OLS of ln y on (1, ln N, ln D).
struct TwoVariableFit {
  bool ok = false;
  std::string error;
  double log_k = 0;
  double p = 0;  // exponent of N
  double q = 0;  // exponent of D
  double r2 = 0;
  std::vector<double> residuals;
  double predict(double n, double d) const;
};

// Needs >= 4 points and ln N, ln D not collinear (both must vary independently).
TwoVariableFit fit_two_variable(const std::vector<double>& n, const std::vector<double>& d,
                                const std::vector<double>& y);

// Indices of the performance-cost Pareto front (lower cost and lower loss are better): sorted by
// cost, a point is kept when its loss is strictly lower than that of every cheaper point. Ties in
// cost keep the lowest loss. Returned in increasing cost. NaN losses are skipped.
std::vector<std::size_t> pareto_front(const std::vector<double>& cost,
                                      const std::vector<double>& loss);

// Groups compute values into scales: sorted in log space, a new bucket starts wherever the gap to
// the previous value exceeds ln(1 + gap). Returns a bucket id per point (0 = smallest compute).
std::vector<int> compute_buckets(const std::vector<double>& compute, double gap = 0.25);

// Bucket ids by snapping each compute to the nearest of `budgets` when within the relative
// tolerance (|C / budget - 1| <= tolerance), else -1. Ids index `budgets`.
std::vector<int> snap_to_budgets(const std::vector<double>& compute,
                                 const std::vector<double>& budgets, double tolerance);

// Number of distinct bucket ids >= 0.
int count_buckets(const std::vector<int>& bucket);

// DeepSeek's near-optimal band: in each bucket, the points whose loss <= (1 + fraction) * the
// bucket's best loss. Returned in input order.
std::vector<std::size_t> near_optimal_band(const std::vector<double>& loss,
                                           const std::vector<int>& bucket, double fraction);

// The q-quantile (0..1) of `values` by linear interpolation (NumPy's default); NaN when empty.
double quantile(std::vector<double> values, double q);

}  // namespace scaletune::scaling
