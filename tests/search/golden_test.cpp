// The golden values of carbs.md §13, computed with the reference implementation: transforms,
// bounds, rounding, output and cost transforms, expected improvement, the candidate prior weight,
// fixed-hyper-parameter GP posteriors and the Pareto front rules.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "orchestrator/search/carbs.h"
#include "orchestrator/search/gp.h"
#include "orchestrator/search/space.h"
#include "orchestrator/search/stats.h"

namespace scaletune::search {
namespace {

// The reference is float32 in places: compare to ~1e-5 relative.
void expect_close(double actual, double expected, double rel = 1e-5) {
  EXPECT_NEAR(actual, expected, rel * std::fabs(expected) + 1e-7) << "expected " << expected;
}

ParamSpec spec(const std::string& space, double center) {
  ParamSpec s;
  s.space = space;
  s.center = center;
  return s;
}

Space one(const ParamSpec& s) { return Space({{"x", s}}); }

TEST(Golden, LinearScale) {
  ParamSpec s = spec("linear", 0);
  s.scale = 2;
  const Space sp = one(s);
  EXPECT_DOUBLE_EQ(sp.basic_from_param(0, 3), 1.5);
  EXPECT_DOUBLE_EQ(sp.param_from_basic(0, 1.5), 3);
}

TEST(Golden, LogScale) {
  ParamSpec s = spec("log", 1e-4);
  s.scale = 0.5;
  const Space sp = one(s);
  expect_close(sp.basic_from_param(0, 1e-4), -8);
  expect_close(sp.param_from_basic(0, -6), 1e-3);
}

TEST(Golden, IntegerLogRoundsAndWidensBounds) {
  ParamSpec s = spec("log", 10);
  s.integer = true;
  s.min = 2;
  s.max = 512;
  const Space sp = one(s);
  expect_close(sp.basic_from_param(0, 10), 1.0);
  EXPECT_EQ(sp.param_from_basic(0, 1.15), 14.0);  // 10^1.15 = 14.125 -> 14, an exact integer
  expect_close(sp.min_basic(0), std::log10(1.9));
  expect_close(sp.max_basic(0), std::log10(512.1));
}

TEST(Golden, IntegerLogRoundingFactor) {
  ParamSpec s = spec("log", 64);
  s.integer = true;
  s.min = 8;
  s.round_to = 8;
  const Space sp = one(s);
  EXPECT_EQ(sp.param_from_basic(0, std::log10(61.0)), 64.0);
  expect_close(sp.round_in_basic(0, std::log10(61.0)), 1.80618);
}

TEST(Golden, IntegerLinearRoundsHalfToEven) {
  ParamSpec s = spec("linear", 0);
  s.integer = true;
  s.scale = 4;
  const Space sp = one(s);
  EXPECT_EQ(sp.param_from_basic(0, 0.625), 2.0);  // 2.5 -> 2
  EXPECT_EQ(sp.param_from_basic(0, 0.875), 4.0);  // 3.5 -> 4
}

TEST(Golden, LogitAndBase) {
  ParamSpec s = spec("logit", 0.5);
  s.scale = 0.5;
  const Space sp = one(s);
  expect_close(sp.basic_from_param(0, 0.9), 1.908485);
  expect_close(sp.param_from_basic(0, 1.0), 0.759747);
  ParamSpec b = spec("log", 8);
  b.base = 2;
  expect_close(one(b).basic_from_param(0, 8), 3);
}

TEST(Golden, ZeroInLogAndLogitIsMinusInfinity) {
  EXPECT_EQ(one(spec("log", 1)).basic_from_param(0, 0), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(one(spec("logit", 0.5)).basic_from_param(0, 0),
            -std::numeric_limits<double>::infinity());
}

TEST(Golden, FixtureCenterBoundsAndOvergenerateFactor) {
  const Space sp({{"lr", spec("log", 1e-2)}, {"x", spec("linear", 0)}, {"p", spec("logit", 0.5)}});
  const auto c = sp.center_basic();
  expect_close(c[0], -2);
  EXPECT_EQ(c[1], 0);
  EXPECT_EQ(c[2], 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sp.min_basic(i), -std::numeric_limits<double>::infinity());
    EXPECT_EQ(sp.max_basic(i), std::numeric_limits<double>::infinity());
  }
  EXPECT_EQ(sp.overgenerate_factor(), 2);  // log and logit count as bounded

  ParamSpec bs = spec("log", 64), w = spec("log", 128);
  bs.integer = w.integer = true;
  bs.min = 8, bs.max = 4096, bs.round_to = 8;
  w.min = 16, w.max = 2048, w.round_to = 16;
  const Space b3({{"lr", spec("log", 1e-3)}, {"bs", bs}, {"w", w}, {"p", spec("logit", 0.2)}});
  EXPECT_EQ(b3.overgenerate_factor(), 4);
  config::Named<ParamSpec> b4;
  for (int i = 0; i < 6; ++i) {
    ParamSpec x = spec("linear", 0.5);
    x.min = 0, x.max = 1;
    b4.emplace_back("x" + std::to_string(i), x);
  }
  EXPECT_EQ(Space(b4).overgenerate_factor(), 8);
}

TEST(Golden, StrictBounds) {
  ParamSpec s = spec("linear", 0.5);
  s.min = 0, s.max = 1;
  const Space sp = one(s);
  double x = 0;
  EXPECT_FALSE(sp.inside(&x));
  x = 1;
  EXPECT_FALSE(sp.inside(&x));
  x = 0.999;
  EXPECT_TRUE(sp.inside(&x));
}

const std::vector<double> kOutputs = {0.5, 0.9, 0.3, 0.6, 0.95, 0.7, 1.2, 1.1, 1.3, 1.25};

TEST(Golden, QuantileNormalTransform) {
  QuantileNormal q;
  q.fit(kOutputs);
  const std::vector<double> want = {-0.994458, -0.050154, -5.199338, -0.706303, 0.083652,
                                    -0.467699, 1.110772,  0.622926,  5.199338,  1.501086};
  for (std::size_t i = 0; i < kOutputs.size(); ++i) expect_close(q.forward(kOutputs[i]), want[i]);
  const std::vector<double> queries = {0.0, 0.55, 1.0, 2.0};
  const std::vector<double> qwant = {-5.199338, -0.841621, 0.253347, 5.199338};
  for (std::size_t i = 0; i < queries.size(); ++i) expect_close(q.forward(queries[i]), qwant[i]);
}

TEST(Golden, QuantileWithFewPointsSaturates) {
  QuantileNormal q;
  q.fit({1.0, 2.0, 3.0});  // one knot: all but the minimum map to +5.1993
  expect_close(q.forward(1.0), -5.199338);
  expect_close(q.forward(2.0), 5.199338);
  expect_close(q.forward(3.0), 5.199338);
}

TEST(Golden, LogCostMinMax) {
  std::vector<double> costs;
  for (int c = 1; c <= 10; ++c) costs.push_back(c);
  LogCostScaler s;
  s.fit(costs);
  const std::vector<double> want = {-1,       -0.39794, -0.045757, 0.20412,  0.39794,
                                    0.556303, 0.690196, 0.80618,   0.908485, 1};
  for (std::size_t i = 0; i < costs.size(); ++i) expect_close(s.forward(costs[i]), want[i]);
  expect_close(s.inverse(s.forward(7.0)), 7.0, 1e-12);
  LogCostScaler k;
  k.fit({3, 3, 3});
  expect_close(k.forward(3), -1);
  expect_close(k.forward(6), 0.386294);
}

TEST(Golden, ExpectedImprovement) {
  const std::vector<double> mu = {0, 1, 2, -3, 5}, var = {1, 0.25, 4, 0.01, 1},
                            p = {0.5, 0.5, 0.5, 0.5, 5.2};
  const std::vector<double> bias1 = {0.0293068, 0.0416577, 1.07269, 0, 0.0561025};
  const std::vector<double> bias0 = {0.197797, 0.541658, 1.76233, 0, 0.306895};
  for (std::size_t i = 0; i < mu.size(); ++i) {
    expect_close(expected_improvement(mu[i], var[i], p[i], 1.0), bias1[i]);
    expect_close(expected_improvement(mu[i], var[i], p[i], 0.0), bias0[i]);
  }
}

TEST(Golden, ExpectedImprovementIsStableInTheTail) {
  // Far below the threshold: positive, finite and decreasing instead of cancelling to 0 or < 0.
  double prev = expected_improvement(0, 1, 5, 0);
  for (double t : {10.0, 20.0, 30.0, 37.0}) {
    const double ei = expected_improvement(0, 1, t, 0);
    EXPECT_GT(ei, 0) << t;
    EXPECT_LT(ei, prev) << t;
    // Mills-ratio asymptote: EI ~ phi(t) / t^2.
    expect_close(ei, normal_pdf(t) / (t * t) * (1 - 3 / (t * t) + 15 / std::pow(t, 4)), 2e-3);
    prev = ei;
  }
}

TEST(Golden, CandidatePriorWeight) {
  const std::vector<std::vector<double>> origins = {{0, 0, 0}, {1, 0, 0}};
  const std::vector<std::vector<double>> xs = {
      {0, 0, 0}, {0.3, 0, 0}, {0.3, 0.3, 0.3}, {0.6, 0, 0}};
  const std::vector<double> want = {1.32981, 0.806569, 0.29672, 0.5467};
  for (std::size_t k = 0; k < xs.size(); ++k) {
    double d2 = std::numeric_limits<double>::infinity();
    for (const auto& o : origins) {
      double s = 0;
      for (int i = 0; i < 3; ++i) s += (xs[k][i] - o[i]) * (xs[k][i] - o[i]);
      d2 = std::min(d2, s);
    }
    expect_close(prior_weight(d2, 0.3), want[k], 2e-5);
  }
}

TEST(Golden, GpPosteriorWithFixedHyperParameters) {
  Eigen::MatrixXd X(5, 2);
  X << 0, 0, .2, .1, -.3, .4, .5, -.2, .1, .3;
  Eigen::VectorXd y(5);
  y << 0.3, -0.2, 1.0, -5.199, 5.199;
  Eigen::MatrixXd Q(4, 2);
  Q << 0, 0, .05, .05, 1, 1, -2, .5;
  Gp gp(GpHyper::reference(KernelKind::kLinearMatern, 2, 0.3));
  gp.set_data(X, y);
  Eigen::VectorXd mean, var;
  gp.predict(Q, &mean, &var);
  const std::vector<double> wm = {0.297875, 0.606863, 0.731949, 3.5791};
  const std::vector<double> wv = {0.00993532, 0.0742718, 2.73507, 3.95133};
  for (int i = 0; i < 4; ++i) {
    expect_close(mean[i], wm[static_cast<std::size_t>(i)], 2e-5);
    expect_close(var[i], wv[static_cast<std::size_t>(i)], 2e-5);
  }
}

TEST(Golden, ParetoRbfGp) {
  Eigen::MatrixXd x(4, 1);
  x << -1, -0.2, 0.4, 1;
  Eigen::VectorXd y(4);
  y << -5.199, -0.5, 0.7, 5.199;
  Eigen::MatrixXd q(4, 1);
  q << -1, 0, 0.7, 1;
  Gp gp(GpHyper::reference(KernelKind::kRbf, 1, 0.3));
  gp.set_data(x, y);
  Eigen::VectorXd mean;
  gp.predict(q, &mean, nullptr);
  const std::vector<double> want = {-4.98947, -0.266555, 2.87948, 4.88887};
  for (int i = 0; i < 4; ++i) expect_close(mean[i], want[static_cast<std::size_t>(i)], 2e-5);
}

std::vector<double> front_costs(const std::vector<FrontGroup>& front) {
  std::vector<double> c;
  for (const auto& g : front) c.push_back(g.mean_cost);
  return c;
}

TEST(Golden, ParetoDocstringExample) {
  // A:[0,1]@1, B:0.6@2, C:[0.55,0.75]@3, D:0.8@4
  const std::vector<double> out = {0, 1, 0.6, 0.55, 0.75, 0.8}, cost = {1, 1, 2, 3, 3, 4};
  const std::vector<std::size_t> group = {0, 0, 1, 2, 2, 3};
  for (double fraction : {0.0, 0.2}) {
    FrontOptions o{1, fraction, false};
    EXPECT_EQ(front_costs(pareto_front(out, cost, group, o)), (std::vector<double>{1, 2, 3, 4}));
    o.conservative = true;
    EXPECT_EQ(front_costs(pareto_front(out, cost, group, o)), (std::vector<double>{1, 3, 4}));
  }
}

TEST(Golden, ParetoCheapBucket) {
  std::vector<double> cost;
  for (int c = 1; c <= 10; ++c) cost.push_back(c);
  const std::vector<double>& out = kOutputs;
  expect_close(quantile_linear(cost, 0.2), 2.8);
  expect_close(quantile_linear(cost, 0.5), 5.5);
  using V = std::vector<double>;
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {1, 0.0, false})), (V{1, 2, 5, 7, 9}));
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {1, 0.2, false})), (V{2, 5, 7, 9}));
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {1, 0.5, false})), (V{5, 7, 9}));
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {-1, 0.0, false})), (V{1, 3}));
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {-1, 0.2, false})), (V{1, 3}));
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {-1, 0.5, false})), (V{3}));
  // Single-sample groups only: the conservative rule gives the same fronts.
  EXPECT_EQ(front_costs(pareto_front(out, cost, {}, {1, 0.2, true})), (V{2, 5, 7, 9}));
  EXPECT_TRUE(pareto_front({}, {}, {}, {}).empty());
}

TEST(Golden, ParetoConstantCostIsOnePoint) {
  const std::vector<double> out = {1, 3, 2, 2.5, 2.7}, cost = {1, 1, 1, 1, 1};
  // Without repeats: the best group. With a repeated group (conservative): the best repeat.
  auto f = pareto_front(out, cost, {}, {1, 0.2, true});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].mean_output, 3);
  f = pareto_front(out, cost, {0, 1, 2, 3, 3}, {1, 0.2, true});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_DOUBLE_EQ(f[0].mean_output, 2.6);
}

}  // namespace
}  // namespace scaletune::search
