// Normal distribution functions, expected improvement, output/cost transforms and the RNG.
#include "orchestrator/search/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace scaletune::search {
namespace {
constexpr double kPi = 3.14159265358979323846;
constexpr double kSqrt2 = 1.41421356237309504880;
// sklearn's BOUNDS_THRESHOLD and the resulting clip of the normal output.
constexpr double kBoundsThreshold = 1e-7;
}  // namespace

double normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * kPi); }

double normal_cdf(double z) { return 0.5 * std::erfc(-z / kSqrt2); }

double normal_ppf(double p) {
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  // Acklam's rational approximation (rel. error 1.15e-9), then one Halley step on erfc.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double plow = 0.02425;
  double x;
  if (p < plow) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - plow) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // Refine in the tail that keeps precision (upper tail via the complement).
  for (int it = 0; it < 2; ++it) {
    const double e = (p < 0.5) ? normal_cdf(x) - p : (1 - p) - 0.5 * std::erfc(x / kSqrt2);
    const double u = (p < 0.5 ? e : -e) * std::sqrt(2 * kPi) * std::exp(0.5 * x * x);
    x = x - u / (1 + 0.5 * x * u);
  }
  return x;
}

double erfcx(double y) {
  if (y < 25) return std::exp(y * y) * std::erfc(y);
  // Asymptotic series: erfc(y) e^{y^2} = 1/(y sqrt(pi)) (1 - 1/(2y^2) + 3/(4y^4) - 15/(8y^6)).
  const double t = 1 / (2 * y * y);
  return (1 - t + 3 * t * t - 15 * t * t * t) / (y * std::sqrt(kPi));
}

double expected_improvement(double mu, double var, double threshold, double bias) {
  const double s = std::sqrt(std::max(var, 0.0));
  const double gap = mu - threshold - bias;
  if (s <= 0) return std::max(gap, 0.0);
  const double z = gap / s;
  if (z >= 0) return s * (normal_pdf(z) + z * normal_cdf(z));
  // z < 0: phi(z) + z Phi(z) cancels badly; factor out phi(z) (cf. scipy's wofz-based form).
  return s * normal_pdf(z) * (1 + z * std::sqrt(kPi / 2) * erfcx(-z / kSqrt2));
}

double prior_weight(double d2, double r) {
  return std::exp(-d2 / (2 * r * r)) / (r * std::sqrt(2 * kPi));
}

double quantile_linear(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

namespace {
// numpy.interp: xp non-decreasing; ties resolve to the last index with xp[j] <= x.
double interp(double x, const std::vector<double>& xp, const std::vector<double>& fp) {
  const std::size_t n = xp.size();
  if (x > xp[n - 1]) return fp[n - 1];
  if (x < xp[0]) return fp[0];
  const std::size_t j =
      static_cast<std::size_t>(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
  if (j == n - 1 || xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  return slope * (x - xp[j]) + fp[j];
}
}  // namespace

void QuantileNormal::fit(const std::vector<double>& y) {
  const std::size_t k = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::floor(std::sqrt(static_cast<double>(y.size())))));
  references_.assign(k, 0.0);
  quantiles_.assign(k, 0.0);
  std::vector<double> sorted = y;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < k; ++i) {
    references_[i] = k == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(k - 1);
    // percentile(y, 100 r): the same linear rule as quantile_linear on the sorted copy.
    const double pos = references_[i] * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
    quantiles_[i] = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
    if (i > 0) quantiles_[i] = std::max(quantiles_[i], quantiles_[i - 1]);  // monotone
  }
}

double QuantileNormal::forward(double y) const {
  const std::size_t k = quantiles_.size();
  std::vector<double> neg_q(k), neg_r(k);
  for (std::size_t i = 0; i < k; ++i) {
    neg_q[i] = -quantiles_[k - 1 - i];
    neg_r[i] = -references_[k - 1 - i];
  }
  // Average of the upward and downward interpolation, so ties map to the middle of their range.
  double u = 0.5 * (interp(y, quantiles_, references_) - interp(-y, neg_q, neg_r));
  if (y + kBoundsThreshold > quantiles_.back()) u = 1;
  if (y - kBoundsThreshold < quantiles_.front()) u = 0;
  static const double clip_lo =
      normal_ppf(kBoundsThreshold - std::numeric_limits<double>::epsilon());
  static const double clip_hi =
      normal_ppf(1 - (kBoundsThreshold - std::numeric_limits<double>::epsilon()));
  return std::clamp(normal_ppf(u), clip_lo, clip_hi);
}

double QuantileNormal::inverse(double z) const {
  return interp(normal_cdf(z), references_, quantiles_);
}

void LogCostScaler::fit(const std::vector<double>& costs) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double c : costs) {
    lo = std::min(lo, std::log(c));
    hi = std::max(hi, std::log(c));
  }
  min_ = costs.empty() ? 0.0 : lo;
  range_ = (costs.empty() || hi - lo == 0) ? 1.0 : hi - lo;
}

double LogCostScaler::forward(double cost) const {
  return 2 * (std::log(cost) - min_) / range_ - 1;
}

double LogCostScaler::inverse(double scaled) const {
  return std::exp(min_ + (scaled + 1) * range_ / 2);
}

double Rng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]
  const double u2 = uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * kPi * u2);
}

std::size_t Rng::index(std::size_t n) {
  return std::min(n - 1, static_cast<std::size_t>(uniform() * static_cast<double>(n)));
}

std::string Rng::state() const {
  std::ostringstream os;
  os << engine_;
  return os.str();
}

void Rng::set_state(const std::string& text) {
  std::istringstream is(text);
  std::mt19937_64 e;
  is >> e;
  if (is.fail()) throw std::invalid_argument("malformed RNG state");
  engine_ = e;
}

}  // namespace scaletune::search
