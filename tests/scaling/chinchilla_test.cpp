// Chinchilla approaches against known answers: the Epoch AI replication values on the public
// points (scaling-methods.md §7; skipped when the file is absent), noise-free synthetic surfaces,
// and IsoFLOP vertices of planted parabolas.
#include "scaling/chinchilla.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "scaling/table.h"

namespace scaletune::scaling {
namespace {

const std::string kEpochCsv =
    std::string(SCALETUNE_SOURCE_DIR) + "/../shared/data/chinchilla_epoch_svg_extracted.csv";

struct Points {
  std::vector<double> n, d, c, loss;
};

// Epoch's procedure: D = C / (6N), drop the 5 highest losses (240 points left).
Points epoch_points() {
  const Table t = Table::read_csv(kEpochCsv);
  const auto n = t.numbers("Model Size"), c = t.numbers("Training FLOP"), l = t.numbers("loss");
  std::vector<std::size_t> order(l.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return l[a] < l[b]; });
  order.resize(order.size() - 5);
  std::sort(order.begin(), order.end());
  Points p;
  for (auto i : order) {
    p.n.push_back(n[i]);
    p.c.push_back(c[i]);
    p.d.push_back(c[i] / (6 * n[i]));
    p.loss.push_back(l[i]);
  }
  return p;
}

// Rounds to 3 significant digits (the criterion).
double sig3(double x) {
  const double scale = std::pow(10.0, 2 - std::floor(std::log10(std::fabs(x))));
  return std::round(x * scale) / scale;
}

TEST(Approach3, EpochHuberSumReproducesPublishedFit) {
  if (!std::filesystem::exists(kEpochCsv)) GTEST_SKIP() << "no " << kEpochCsv;
  const Points p = epoch_points();
  ASSERT_EQ(p.n.size(), 240u);
  Approach3Options options;
  const Approach3Fit fit = fit_approach3(p.n, p.d, p.loss, options);
  ASSERT_TRUE(fit.ok) << fit.error;
  EXPECT_EQ(fit.starts, 4500u);
  EXPECT_DOUBLE_EQ(sig3(fit.surface.E), sig3(1.8172));
  EXPECT_DOUBLE_EQ(sig3(fit.surface.alpha), sig3(0.3473));
  EXPECT_DOUBLE_EQ(sig3(fit.surface.beta), sig3(0.3672));
  EXPECT_NEAR(fit.objective, 0.00101827, 2e-8);
  EXPECT_NEAR(fit.surface.A, 478, 478 * 0.05);  // flat along (A, B): only roughly determined
  EXPECT_NEAR(fit.surface.B, 2143, 2143 * 0.10);
  std::printf("huber-sum: E %.5f A %.2f B %.2f alpha %.5f beta %.5f F %.9g\n", fit.surface.E,
              fit.surface.A, fit.surface.B, fit.surface.alpha, fit.surface.beta, fit.objective);
}

TEST(Approach3, EpochHuberLikelihoodReproducesHeadline) {
  if (!std::filesystem::exists(kEpochCsv)) GTEST_SKIP() << "no " << kEpochCsv;
  const Points p = epoch_points();
  Approach3Options options;
  options.likelihood = true;
  const Approach3Fit fit = fit_approach3(p.n, p.d, p.loss, options);
  ASSERT_TRUE(fit.ok) << fit.error;
  std::printf("likelihood: E %.5f A %.2f B %.2f alpha %.5f beta %.5f sigma %.4g\n", fit.surface.E,
              fit.surface.A, fit.surface.B, fit.surface.alpha, fit.surface.beta,
              std::exp(fit.log_scale));
  EXPECT_DOUBLE_EQ(sig3(fit.surface.E), sig3(1.8169));
  EXPECT_DOUBLE_EQ(sig3(fit.surface.alpha), sig3(0.3478));
  EXPECT_DOUBLE_EQ(sig3(fit.surface.beta), sig3(0.3659));
  EXPECT_NEAR(fit.surface.a(), 0.513, 0.0015);
}

TEST(Approach3, RecoversNoiseFreeHoffmannSurface) {
  const LossSurface truth{1.69, 406.4, 410.7, 0.34, 0.28};
  std::vector<double> n, d, loss;
  for (double ln = 17; ln <= 23; ln += 0.75)
    for (double ld = 20; ld <= 26; ld += 0.75) {
      n.push_back(std::exp(ln));
      d.push_back(std::exp(ld));
      loss.push_back(truth.loss(n.back(), d.back()));
    }
  const Approach3Fit fit = fit_approach3(n, d, loss, Approach3Options{});
  ASSERT_TRUE(fit.ok) << fit.error;
  EXPECT_NEAR(fit.surface.E / truth.E, 1, 1e-6);
  EXPECT_NEAR(fit.surface.A / truth.A, 1, 1e-5);
  EXPECT_NEAR(fit.surface.B / truth.B, 1, 1e-5);
  EXPECT_NEAR(fit.surface.alpha / truth.alpha, 1, 1e-6);
  EXPECT_NEAR(fit.surface.beta / truth.beta, 1, 1e-6);
}

TEST(Approach3, AllocationSatisfiesComputeIdentity) {
  const LossSurface s{1.69, 406.4, 410.7, 0.34, 0.28};
  for (double c : {1e18, 1e21, 1e24}) {
    EXPECT_NEAR(6 * s.n_opt(c) * s.d_opt(c) / c, 1, 1e-12);
    // The allocation minimises L along the iso-compute line.
    const double n = s.n_opt(c);
    for (double f : {0.8, 1.25}) EXPECT_GT(s.loss(n * f, c / (6 * n * f)), s.loss(n, c / (6 * n)));
  }
  EXPECT_NEAR(s.a() + s.b(), 1, 1e-15);
}

TEST(Approach3, TooFewPointsIsAnError) {
  const Approach3Fit fit = fit_approach3({1e8, 1e9}, {1e9, 1e10}, {3, 2.5}, Approach3Options{});
  EXPECT_FALSE(fit.ok);
  EXPECT_NE(fit.error.find("needs more points"), std::string::npos) << fit.error;
}

TEST(Approach2, VerticesOfPlantedParabolas) {
  // Budgets C_k with vertex ln N*_k = 0.5 ln C_k - 3 (so a = 0.5) and loss minimum 2 + 10 C^-0.1.
  std::vector<double> compute, n, loss;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> jitter(-0.05, 0.05);
  for (double lc : {40.0, 42.0, 44.0, 46.0}) {
    const double x_star = 0.5 * lc - 3;
    for (double dx = -1.5; dx <= 1.51; dx += 0.5) {
      compute.push_back(std::exp(lc) * (1 + jitter(rng)));  // measured, within ±5 %
      n.push_back(std::exp(x_star + dx));
      loss.push_back(2 + 10 * std::exp(-0.1 * lc) + 0.08 * dx * dx);
    }
  }
  IsoFlopOptions options;
  options.budgets = {std::exp(40.0), std::exp(42.0), std::exp(44.0), std::exp(46.0)};
  const IsoFlopFit fit = fit_isoflops(compute, n, loss, options);
  ASSERT_EQ(fit.usable, 4);
  for (std::size_t k = 0; k < 4; ++k) {
    const double lc = 40.0 + 2 * k;
    EXPECT_NEAR(std::log(fit.curves[k].n_opt), 0.5 * lc - 3, 1e-9);
    EXPECT_NEAR(fit.curves[k].loss_opt, 2 + 10 * std::exp(-0.1 * lc), 1e-12);
    EXPECT_TRUE(fit.curves[k].vertex_inside);
    EXPECT_EQ(fit.curves[k].points.size(), 7u);
  }
  ASSERT_TRUE(fit.n_law.ok);
  EXPECT_NEAR(fit.n_law.p, 0.5, 1e-9);
  EXPECT_NEAR(fit.d_law.p, 0.5, 1e-9);
  // Without budgets the same runs cluster into the same four budgets.
  const IsoFlopFit auto_fit = fit_isoflops(compute, n, loss, IsoFlopOptions{});
  EXPECT_EQ(auto_fit.usable, 4);
  EXPECT_NEAR(auto_fit.n_law.p, 0.5, 0.01);
}

TEST(Approach2, EpochPointsSnappedToChinchillaBudgets) {
  if (!std::filesystem::exists(kEpochCsv)) GTEST_SKIP() << "no " << kEpochCsv;
  const Points p = epoch_points();
  IsoFlopOptions options;
  options.budgets = {6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21};
  const IsoFlopFit fit = fit_isoflops(p.c, p.n, p.loss, options);
  ASSERT_TRUE(fit.n_law.ok) << fit.n_law.error;
  std::printf("approach 2: a %.4f from %d budgets\n", fit.n_law.p, fit.usable);
  EXPECT_NEAR(fit.n_law.p, 0.50, 0.02);
  EXPECT_NEAR(fit.n_law.p + fit.d_law.p, 1.0, 1e-9);
}

TEST(Approach1, EnvelopeOfCurvesPicksTheBestRunPerCompute) {
  // Two runs: the small one is better early, the large one later; they cross at C = 1e2.
  Curve small{1e6, {1, 10, 100, 1000}, {4, 3, 2, 1.9}};
  Curve large{1e7, {10, 100, 1000, 10000}, {5, 2, 1, 0.5}};
  const auto env = envelope({small, large}, 5);  // grid 1, 10, 100, 1000, 10000
  ASSERT_EQ(env.size(), 5u);
  EXPECT_EQ(env[0].curve, 0u);
  EXPECT_EQ(env[1].curve, 0u);
  EXPECT_NEAR(env[3].loss, 1.0, 1e-12);
  EXPECT_EQ(env[3].curve, 1u);
  EXPECT_NEAR(env[4].d, 1e4 / 6e7, 1e-15);
}

}  // namespace
}  // namespace scaletune::scaling
