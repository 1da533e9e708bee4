// The benchmark problems of carbs.md §14 (B1-B5): search space, noiseless "true" value, the
// observed (noisy) value, cost, failures, the true Pareto front, and the box random search uses.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "orchestrator/search/carbs.h"

namespace scaletune::bench {

struct Eval {
  double truth = 0;     // noiseless value (for scoring)
  double observed = 0;  // what the optimizer sees (NaN for a divergence)
  double cost = 1;
  bool failed = false;  // flagged failure (OOM)
};

struct Problem {
  std::string name;
  search::SearchConfig config;
  // Random-search box per parameter (param units), sampled uniformly in the parameter's space.
  std::vector<std::pair<double, double>> box;
  std::function<Eval(const std::map<std::string, double>&, std::mt19937_64&)> eval;
  std::function<double(double)> front;  // true best value at cost <= c (empty: no trade-off)
  double grid_lo = 0, grid_hi = 0;      // front-regret cost grid
};

inline search::ParamSpec param(const std::string& space, double center,
                               std::optional<double> min = {}, std::optional<double> max = {},
                               double scale = 1, bool integer = false, double round_to = 1) {
  search::ParamSpec s;
  s.space = space;
  s.center = center;
  s.min = min;
  s.max = max;
  s.scale = scale;
  s.integer = integer;
  s.round_to = round_to;
  return s;
}

inline double lg(double x) { return std::log10(x); }
inline double logit(double p) { return std::log10(p / (1 - p)); }

inline double gauss(std::mt19937_64& rng, double sd) {
  return std::normal_distribution<double>(0, sd)(rng);
}

inline Problem lr_epochs() {
  Problem p;
  p.name = "lr_epochs";
  p.config.search = {{"lr", param("log", 1e-4, {}, {}, 0.5)},
                     {"momentum", param("logit", 0.9)},
                     {"epochs", param("log", 10, 2, 512, 1, true)}};
  p.config.direction = "minimize";
  p.box = {{1e-5, 1e-1}, {0.5, 0.999}, {2, 512}};
  p.eval = [](const std::map<std::string, double>& x, std::mt19937_64& rng) {
    const double e = x.at("epochs"), lr = x.at("lr"), m = x.at("momentum");
    const double lr_opt = lg(3e-3) - 0.3 * lg(e / 10);
    Eval r;
    r.truth = 0.2 + 2 / std::sqrt(e) + 0.5 * std::pow(lg(lr) - lr_opt, 2) +
              0.3 * std::pow(logit(m) - logit(0.95), 2);
    r.observed = r.truth + gauss(rng, 0.02);
    r.cost = e;
    return r;
  };
  p.front = [](double c) { return 0.2 + 2 / std::sqrt(std::min(c, 512.0)); };
  p.grid_lo = 4;
  p.grid_hi = 512;
  return p;
}

inline double chinchilla_loss(double n, double d) {
  return 1.69 + 406.4 / std::pow(n, 0.34) + 410.7 / std::pow(d, 0.28);
}

inline Problem chinchilla() {
  Problem p;
  p.name = "chinchilla";
  p.config.search = {{"n_params", param("log", 3e7, 1e6, 1e11)},
                     {"tokens", param("log", 1e9, 1e8, 1e13)},
                     {"lr", param("log", 1e-3, {}, {}, 0.5)}};
  p.config.direction = "minimize";
  p.box = {{1e6, 1e11}, {1e8, 1e13}, {1e-5, 1e-1}};
  p.eval = [](const std::map<std::string, double>& x, std::mt19937_64& rng) {
    const double n = x.at("n_params"), d = x.at("tokens"), lr = x.at("lr");
    const double lr_opt = lg(2e-3) - 0.3 * lg(n / 1e8);
    Eval r;
    r.truth = chinchilla_loss(n, d) + 0.1 * std::pow(lg(lr) - lr_opt, 2);
    r.observed = r.truth + gauss(rng, 0.01);
    r.cost = 6 * n * d / 1e18;
    return r;
  };
  // Best loss at compute <= c: the model size minimizing loss with D = C / 6N, inside the box.
  p.front = [](double c) {
    const double flops = c * 1e18;
    double best = std::numeric_limits<double>::infinity();
    for (int k = 0; k <= 2000; ++k) {
      const double n = std::pow(10, 6 + 5 * k / 2000.0);
      const double d = std::min(1e13, flops / (6 * n));
      if (d < 1e8) continue;
      best = std::min(best, chinchilla_loss(n, d));
    }
    return best;
  };
  p.grid_lo = 0.1;
  p.grid_hi = 1e4;
  return p;
}

inline Problem oom_failures() {
  Problem p;
  p.name = "oom_failures";
  p.config.search = {{"lr", param("log", 1e-3, {}, {}, 0.5)},
                     {"batch_size", param("log", 64, 8, 4096, 1, true, 8)},
                     {"width", param("log", 128, 16, 2048, 1, true, 16)},
                     {"dropout", param("logit", 0.2)}};
  p.config.direction = "maximize";
  p.box = {{1e-5, 1e-1}, {8, 4096}, {16, 2048}, {0.01, 0.9}};
  p.eval = [](const std::map<std::string, double>& x, std::mt19937_64& rng) {
    const double lr = x.at("lr"), b = x.at("batch_size"), w = x.at("width"), dp = x.at("dropout");
    Eval r;
    r.cost = std::pow(w / 128, 2) * (1 + 64 / b);
    const double lr_opt = lg(1e-3) + 0.5 * lg(b / 64);
    r.truth = 0.9 - 0.3 / std::sqrt(w / 16) - 0.05 * std::pow(lg(lr) - lr_opt, 2) -
              0.005 * std::pow(std::log2(b / 128), 2) - 0.02 * std::pow(logit(dp) - logit(0.1), 2);
    if (b * w > 131072) {  // out of memory: flagged, cheap
      r.failed = true;
      r.observed = 0;
      r.cost *= 0.05;
    } else if (lr > 0.02 * std::sqrt(b / 64)) {  // divergence: NaN, full cost
      r.observed = std::nan("");
    } else {
      r.observed = r.truth + gauss(rng, 0.005);
    }
    return r;
  };
  return p;
}

inline Problem hartmann6() {
  Problem p;
  p.name = "hartmann6";
  for (int i = 0; i < 6; ++i)
    p.config.search.emplace_back("x" + std::to_string(i), param("linear", 0.5, 0, 1));
  p.config.direction = "maximize";
  p.box.assign(6, {0, 1});
  p.eval = [](const std::map<std::string, double>& x, std::mt19937_64& rng) {
    static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
    static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                   {0.05, 10, 17, 0.1, 8, 14},
                                   {3, 3.5, 1.7, 10, 17, 8},
                                   {17, 8, 0.05, 10, 0.1, 14}};
    static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                   {2329, 4135, 8307, 3736, 1004, 9991},
                                   {2348, 1451, 3522, 2883, 3047, 6650},
                                   {4047, 8828, 8732, 5743, 1091, 381}};
    double v = 0;
    for (int i = 0; i < 4; ++i) {
      double s = 0;
      for (int j = 0; j < 6; ++j)
        s += A[i][j] * std::pow(x.at("x" + std::to_string(j)) - 1e-4 * P[i][j], 2);
      v += alpha[i] * std::exp(-s);
    }
    Eval r;
    r.truth = v;
    r.observed = v + gauss(rng, 0.05);
    r.cost = 1;
    return r;
  };
  return p;
}

inline Problem rosenbrock10() {
  Problem p;
  p.name = "rosenbrock10";
  for (int i = 0; i < 10; ++i)
    p.config.search.emplace_back("x" + std::to_string(i), param("linear", 0, -3, 3));
  p.config.direction = "minimize";
  p.box.assign(10, {-3, 3});
  p.eval = [](const std::map<std::string, double>& x, std::mt19937_64& rng) {
    double s = 0;
    for (int i = 0; i < 9; ++i) {
      const double a = x.at("x" + std::to_string(i)), b = x.at("x" + std::to_string(i + 1));
      s += 100 * std::pow(b - a * a, 2) + std::pow(1 - a, 2);
    }
    Eval r;
    r.truth = lg(1 + s);
    r.observed = r.truth + gauss(rng, 0.01);
    r.cost = 10 * (1 + 0.1 * std::uniform_real_distribution<double>(0, 1)(rng));
    return r;
  };
  return p;
}

inline std::vector<Problem> all_problems() {
  return {lr_epochs(), chinchilla(), oom_failures(), hartmann6(), rosenbrock10()};
}

}  // namespace scaletune::bench
