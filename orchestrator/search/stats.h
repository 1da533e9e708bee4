// Numerics of the surrogate: normal distribution functions, a stable expected improvement, the
// quantile-normal output transform, the log-cost min-max scaler, and the searcher's RNG.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace scaletune::search {

double normal_pdf(double z);
double normal_cdf(double z);
double normal_ppf(double p);  // inverse CDF, full double precision
double erfcx(double y);       // exp(y^2) erfc(y), finite for large y

// Expected improvement of N(mu, var) over `threshold + bias`, stable in the far tail:
//   z = (mu - t) / s,  EI = s (phi(z) + z Phi(z)) = s phi(z) (1 + z sqrt(pi/2) erfcx(-z/sqrt 2))
double expected_improvement(double mu, double var, double threshold, double bias);

// Prior weight of a candidate (carbs.md §6.3): the 1-D normal density N(0, r^2) at the Euclidean
// distance to the nearest origin (= the max over origins). Takes that squared distance.
double prior_weight(double min_squared_distance, double radius);

// numpy.quantile / percentile with linear interpolation (q in [0, 1]).
double quantile_linear(std::vector<double> values, double q);

// sklearn QuantileTransformer(output_distribution="normal", n_quantiles=floor(sqrt(n))) on one
// column, carbs.md §7.1: piecewise-linear empirical CDF on sqrt(n) knots, then the normal
// quantile, clipped to +-5.199338 (the best and worst observations always land on the clip).
class QuantileNormal {
 public:
  void fit(const std::vector<double>& y);
  double forward(double y) const;
  double inverse(double z) const;

 private:
  std::vector<double> quantiles_, references_;
};

// MinMax to [-1, 1] of ln(cost); a constant cost uses range 1 as sklearn does.
class LogCostScaler {
 public:
  void fit(const std::vector<double>& costs);
  double forward(double cost) const;
  double inverse(double scaled) const;  // -> cost

 private:
  double min_ = 0, range_ = 1;
};

// The searcher's random numbers: mt19937_64 with distributions written out here, so the stream
// is the same on every standard library and the whole state serializes as text.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}
  double uniform();  // [0, 1), 53 bits
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  double normal();                   // Box-Muller, no cached spare (no hidden state)
  std::size_t index(std::size_t n);  // uniform in [0, n)
  std::string state() const;
  void set_state(const std::string& text);  // throws std::invalid_argument

 private:
  std::mt19937_64 engine_;
};

}  // namespace scaletune::search
