// The fitting pipeline against planted laws: exponents recovered at 1 % noise, bootstrap
// intervals that cover the truth at about their nominal rate, flags for undetermined laws, the
// leave-one-scale-out check, JSON round trips, and extrapolation to a larger compute.
#include "scaling/fit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "scaling/extrapolate.h"
#include "scaling/power_law.h"

namespace scaletune::scaling {
namespace {

// DeepSeek's laws (B in tokens), the synthetic trainer's defaults.
constexpr double kLrCoef = 0.3118, kLrExp = -0.125, kBatchCoef = 0.2920, kBatchExp = 0.3271;
const LossSurface kSurface{1.69, 406.4, 410.7, 0.34, 0.28};

// A sweep like one CARBS would leave: per budget, model sizes around the optimum and lr/batch
// around their optimal values (each optimum perturbed by `noise`, log-normal), with the loss of
// the synthetic trainer (surface + squared log-distance penalties).
Dataset planted_sweep(double noise, std::uint64_t seed, int budgets = 10) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> eps(0, noise);
  Dataset data;
  data.source = "planted";
  for (int k = 0; k < budgets; ++k) {
    const double c = 1e17 * std::pow(10.0, 0.5 * k);
    const double n_star = kSurface.n_opt(c);
    for (double fn : {0.25, 0.5, 1.0, 2.0, 4.0}) {
      for (double flr : {0.5, 0.7071, 0.8409, 1.0, 1.1892, 1.4142, 2.0}) {
        Run r;
        r.id = std::to_string(data.runs.size());
        r.compute = c;
        r.n = n_star * fn;
        r.d = c / (6 * r.n);
        const double lr_star = kLrCoef * std::pow(c, kLrExp);
        const double b_star = kBatchCoef * std::pow(c, kBatchExp);
        const double lr = lr_star * flr * std::exp(eps(rng));
        const double batch = b_star * std::exp(eps(rng));
        r.params = {{"lr", lr}, {"batch_tokens", batch}};
        r.loss = kSurface.loss(r.n, r.d) + 0.1 * std::pow(std::log10(lr / lr_star), 2) +
                 0.02 * std::pow(std::log10(batch / b_star), 2);
        data.runs.push_back(r);
      }
    }
  }
  return data;
}

FitOptions quick(int bootstrap = 200) {
  FitOptions o;
  o.bootstrap = bootstrap;
  o.laws = {"power", "frontier", "two_variable", "approach2"};
  return o;
}

TEST(PowerLaw, PlantedExponentAtOnePercentNoise) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> eps(0, 0.01);
  std::vector<double> x, y;
  for (int i = 0; i < 30; ++i) {
    x.push_back(std::pow(10.0, 17 + 4.0 * i / 29));
    y.push_back(kLrCoef * std::pow(x.back(), kLrExp) * std::exp(eps(rng)));
  }
  const PowerLawFit f = fit_power_law(x, y);
  ASSERT_TRUE(f.ok);
  EXPECT_NEAR(f.p, kLrExp, 0.01);
  EXPECT_NEAR(std::exp(f.log_k) / kLrCoef, 1, 0.2);
  EXPECT_GT(f.r2, 0.99);
  EXPECT_FALSE(fit_power_law({1, 1, 1}, {1, 2, 3}).ok);
  EXPECT_FALSE(fit_power_law({1, -2}, {1, 2}).ok);
}

TEST(PowerLaw, TwoVariableStepLawForm) {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> eps(0, 0.01);
  std::vector<double> n, d, y;
  for (double ln = 18; ln <= 22; ln += 1)
    for (double ld = 21; ld <= 25; ld += 1) {
      n.push_back(std::exp(ln));
      d.push_back(std::exp(ld));
      y.push_back(1.79 * std::pow(n.back(), -0.713) * std::pow(d.back(), 0.307) *
                  std::exp(eps(rng)));
    }
  const TwoVariableFit f = fit_two_variable(n, d, y);
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_NEAR(f.p, -0.713, 0.01);
  EXPECT_NEAR(f.q, 0.307, 0.01);
  // D proportional to N: collinear, refused with a reason.
  const TwoVariableFit bad =
      fit_two_variable({1e8, 1e9, 1e10, 1e11}, {2e9, 2e10, 2e11, 2e12}, {1, 2, 3, 4});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("collinear"), std::string::npos);
}

TEST(PowerLaw, ParetoFrontAndBand) {
  const std::vector<double> c = {1, 2, 2, 3, 4, 5};
  const std::vector<double> l = {5, 4, 4.5, 4.2, 3, 3};
  EXPECT_EQ(pareto_front(c, l), (std::vector<std::size_t>{0, 1, 4}));
  const std::vector<int> bucket = {0, 0, 0, 1, 1, 1};
  EXPECT_EQ(near_optimal_band({2.0, 2.004, 2.006, 3, 3.0075, 3.009}, bucket, 0.0025),
            (std::vector<std::size_t>{0, 1, 3, 4}));
  EXPECT_EQ(compute_buckets({1e18, 1.05e18, 3e18, 1e19, 0.98e19}, 0.25),
            (std::vector<int>{0, 0, 1, 2, 2}));
}

TEST(Fit, PlantedSweepRecoversLawsWithinOneHundredth) {
  const FitResult fit = fit_laws(planted_sweep(0.01, 7), quick());
  const Law* lr = fit.find("lr", "near_optimal_band");
  const Law* batch = fit.find("batch_tokens", "near_optimal_band");
  const Law* n2 = fit.find("N", "approach2");
  ASSERT_TRUE(lr && batch && n2);
  EXPECT_NEAR(lr->coef.at("p"), kLrExp, 0.01);
  EXPECT_NEAR(batch->coef.at("p"), kBatchExp, 0.01);
  EXPECT_NEAR(n2->coef.at("p"), kSurface.a(), 0.01);
  EXPECT_TRUE(lr->flags.empty()) << lr->flags.front();
  EXPECT_EQ(lr->scales, 10);
  // Intervals exist for every coefficient, and cover the planted exponent.
  ASSERT_TRUE(lr->interval.count("p"));
  EXPECT_LE(lr->interval.at("p").first, kLrExp);
  EXPECT_GE(lr->interval.at("p").second, kLrExp);
  // Leave-one-scale-out predicts the largest budget's lr closely.
  ASSERT_TRUE(lr->loso.contains("relative_error")) << lr->loso.dump();
  EXPECT_LT(lr->loso["relative_error"].get<double>(), 0.03);
  // The front of a full-grid sweep picks the best run per budget, and the frontier law fits.
  EXPECT_GE(fit.front.size(), 6u);
  const Law* frontier = fit.find("loss", "pareto_front");
  ASSERT_TRUE(frontier && !frontier->coef.empty());
}

TEST(Fit, ApproachThreeInThePipelineRecoversTheSurface) {
  FitOptions o;
  o.bootstrap = 20;
  o.laws = {"approach3"};
  Approach3Grid small;  // a coarse grid keeps the test fast; the optimum is found from it too
  small.alpha = {0.5};
  small.beta = {0.5};
  small.e = {0.5};
  small.a = {5, 10};
  small.b = {5, 10};
  o.approach3.grid = small;
  const FitResult fit = fit_laws(planted_sweep(0.0, 1), o);
  const Law* s = fit.find("loss", "approach3");
  ASSERT_TRUE(s && !s->coef.empty());
  // The lr/batch penalties are zero only at the centre runs, so the surface is approximate.
  EXPECT_NEAR(s->coef.at("alpha"), 0.34, 0.05);
  EXPECT_NEAR(s->coef.at("a"), kSurface.a(), 0.05);
  EXPECT_EQ(s->replicates.at("E").size(), 20u);
}

TEST(Fit, BootstrapIntervalsCoverThePlantedExponent) {
  // 60 independent data sets with 5 % noise; the 90 % interval should cover about 54 of them.
  int covered = 0;
  const int trials = 60;
  for (int t = 0; t < trials; ++t) {
    std::mt19937_64 rng(100 + t);
    std::normal_distribution<double> eps(0, 0.05);
    std::vector<double> c, loss, lr;
    for (int k = 0; k < 8; ++k) {
      for (int j = 0; j < 3; ++j) {
        c.push_back(1e17 * std::pow(10.0, 0.5 * k) * (1 + 0.01 * j));
        loss.push_back(10 * std::pow(c.back(), -0.05));  // every run on the front
        lr.push_back(kLrCoef * std::pow(c.back(), kLrExp) * std::exp(eps(rng)));
      }
    }
    FitOptions o;
    o.laws = {"power"};
    o.bootstrap = 300;
    o.level = 0.90;
    o.seed = t;
    const FitResult fit = fit_laws(dataset_from_arrays(c, loss, {{"lr", lr}}), o);
    const Law* law = fit.find("lr", "pareto_front");
    ASSERT_TRUE(law && law->interval.count("p"));
    covered += law->interval.at("p").first <= kLrExp && kLrExp <= law->interval.at("p").second;
  }
  EXPECT_GE(covered, 47);  // binomial(60, 0.9): P(X < 47) ~ 0.2 %
  EXPECT_LE(covered, 60);
}

TEST(Fit, FlagsLawsTheDataDoNotDetermine) {
  // Two compute scales only: fitted, but flagged too_few_scales.
  std::vector<double> c = {1e18, 1e18, 1e19, 1e19}, loss = {3, 3.1, 2.5, 2.6},
                      lr = {1e-3, 1.2e-3, 8e-4, 7e-4};
  FitOptions o;
  o.laws = {"power"};
  o.bootstrap = 100;
  const FitResult fit = fit_laws(dataset_from_arrays(c, loss, {{"lr", lr}}), o);
  const Law* law = fit.find("lr", "near_optimal_band");
  ASSERT_TRUE(law);
  ASSERT_FALSE(law->flags.empty());
  EXPECT_EQ(law->flags[0].rfind("too_few_scales", 0), 0u) << law->flags[0];
  // Pure noise around a constant: the exponent interval is wide.
  std::mt19937_64 rng(5);
  std::normal_distribution<double> eps(0, 0.8);
  std::vector<double> c2, l2, y2;
  for (int k = 0; k < 5; ++k) {
    c2.push_back(1e18 * std::pow(2.0, k));
    l2.push_back(4.0 - 0.1 * k);
    y2.push_back(1e-3 * std::exp(eps(rng)));
  }
  const FitResult noisy = fit_laws(dataset_from_arrays(c2, l2, {{"lr", y2}}), o);
  const Law* nl = noisy.find("lr", "pareto_front");
  ASSERT_TRUE(nl);
  bool wide = false;
  for (const auto& f : nl->flags) wide = wide || f.rfind("wide_interval", 0) == 0;
  EXPECT_TRUE(wide);
  // One compute scale: refused with a reason.
  EXPECT_THROW(fit_laws(dataset_from_arrays({1e18, 1.01e18}, {3, 2}, {}), o),
               std::invalid_argument);
}

TEST(Fit, LeaveOneScaleOutCatchesABend) {
  // The law holds up to 1e20 and breaks at the largest scale.
  std::vector<double> c, loss, lr;
  for (int k = 0; k < 6; ++k) {
    c.push_back(1e17 * std::pow(10.0, 0.6 * k));
    loss.push_back(5 - 0.3 * k);
    lr.push_back(kLrCoef * std::pow(c.back(), kLrExp) * (k == 5 ? 3.0 : 1.0));
  }
  FitOptions o;
  o.laws = {"power"};
  o.bootstrap = 50;
  const FitResult fit = fit_laws(dataset_from_arrays(c, loss, {{"lr", lr}}), o);
  const Law* law = fit.find("lr", "pareto_front");
  ASSERT_TRUE(law);
  EXPECT_NEAR(law->loso["relative_error"].get<double>(), 2.0, 1e-6);
  EXPECT_NEAR(law->loso["p_without"].get<double>(), kLrExp, 1e-9);
  bool flagged = false;
  for (const auto& f : law->flags) flagged = flagged || f.rfind("loso_error", 0) == 0;
  EXPECT_TRUE(flagged);
}

TEST(Fit, JsonRoundTripKeepsLawsAndReplicates) {
  const FitResult fit = fit_laws(planted_sweep(0.01, 3), quick(50));
  const nlohmann::json j = to_json(fit);
  const FitResult back = fit_from_json(nlohmann::json::parse(j.dump()));
  ASSERT_EQ(back.laws.size(), fit.laws.size());
  EXPECT_EQ(back.runs.size(), fit.runs.size());
  EXPECT_EQ(back.front, fit.front);
  const Law* a = fit.find("lr", "near_optimal_band");
  const Law* b = back.find("lr", "near_optimal_band");
  ASSERT_TRUE(a && b);
  EXPECT_DOUBLE_EQ(a->coef.at("p"), b->coef.at("p"));
  EXPECT_EQ(a->replicate_values(1e22), b->replicate_values(1e22));
  // Every law in the JSON has the documented keys.
  for (const auto& law : j["laws"]) {
    for (const char* key : {"y", "form", "method", "coefficients", "intervals", "points",
                            "residuals", "flags", "determined", "bootstrap", "loso", "scales"})
      EXPECT_TRUE(law.contains(key)) << key << " in " << law["y"] << " " << law["method"];
  }
  EXPECT_THROW(fit_from_json(nlohmann::json::object()), std::invalid_argument);
}

TEST(Fit, RefitFromArraysForTheSweep) {
  const Dataset d = planted_sweep(0.01, 9, 4);
  std::vector<double> c, loss, lr;
  for (const auto& r : d.runs) {
    c.push_back(r.compute);
    loss.push_back(r.loss);
    lr.push_back(r.params.at("lr"));
  }
  const FitResult fit = refit_laws(c, loss, {{"lr", lr}}, 50);
  ASSERT_TRUE(fit.find("lr", "near_optimal_band"));
  EXPECT_NEAR(fit.find("lr", "near_optimal_band")->coef.at("p"), kLrExp, 0.02);
  // Too early in a sweep: no laws, a warning, no exception.
  const FitResult early = refit_laws({1e18}, {3.0}, {{"lr", {1e-3}}});
  EXPECT_TRUE(early.laws.empty());
  ASSERT_EQ(early.warnings.size(), 1u);
}

TEST(Extrapolate, ShapeMatchesParameterCount) {
  const ModelShape s = shape_for_params(7e9, 128, 128);
  EXPECT_EQ(s.d_model % 128, 0);
  EXPECT_EQ(s.n_head * 128, s.d_model);
  EXPECT_NEAR(s.params / 7e9, 1, 0.1);
  EXPECT_NEAR(static_cast<double>(s.d_model) / s.n_layer, 128, 20);
  const ModelShape tiny = shape_for_params(1e5, 64, 64);
  EXPECT_GE(tiny.n_layer, 1);
  EXPECT_EQ(tiny.d_model, 64);
}

TEST(Extrapolate, PredictsPlantedOptimaAtTenTimesTheCompute) {
  const FitResult fit = fit_laws(planted_sweep(0.01, 11), quick(200));
  ExtrapolateOptions o;
  o.compute = 10 * fit.max_compute;
  o.available_tokens = 1e9;
  const Prediction p = extrapolate(fit, o);
  EXPECT_EQ(p.lr_param, "lr");
  EXPECT_EQ(p.batch_param, "batch_tokens");
  const double lr_true = kLrCoef * std::pow(o.compute, kLrExp);
  EXPECT_NEAR(p.params.at("lr").value / lr_true, 1, 0.05);
  EXPECT_LE(p.params.at("lr").lo, p.params.at("lr").value);
  EXPECT_GE(p.params.at("lr").hi, p.params.at("lr").value);
  EXPECT_NEAR(p.n.value / kSurface.n_opt(o.compute), 1, 0.15);
  EXPECT_NEAR(6 * p.n.value * p.d.value / o.compute, 1, 1e-9);
  EXPECT_NEAR(p.steps, std::ceil(p.d.value / p.batch_tokens.value), 0.5);
  EXPECT_NEAR(p.decades_beyond, 1.0, 1e-9);
  // D_opt is ~1e11 tokens here, far beyond the 1e9 available: warned.
  bool data_warning = false;
  for (const auto& w : p.warnings) data_warning = data_warning || w.find("exceeds") != w.npos;
  EXPECT_TRUE(data_warning);
  // Two decades out: the distance warning.
  o.compute = 100 * fit.max_compute;
  o.available_tokens = 0;
  const Prediction far = extrapolate(fit, o);
  ASSERT_FALSE(far.warnings.empty());
  EXPECT_NE(far.warnings[0].find("decades beyond"), std::string::npos);
}

// A small sweep: the surface fit ran off (A infinite, as a 27-trial main job produced), so it
// gives no model size; the IsoFLOP law is used instead, with a warning, not an error.
TEST(Extrapolate, PassesOverALawWithNoFiniteModelSize) {
  FitResult fit;
  fit.max_compute = 5e12;
  Law surface;
  surface.y = "loss";
  surface.form = "loss_surface";
  surface.method = "approach3";
  surface.coef = {{"E", 0.28},
                  {"A", std::numeric_limits<double>::infinity()},
                  {"B", 4.6},
                  {"alpha", 35.4},
                  {"beta", 0.083}};
  surface.flags = {"wide_interval: alpha"};
  Law n_law;
  n_law.y = "N";
  n_law.form = "power";
  n_law.method = "approach1";
  n_law.coef = {{"k", 63.9}, {"p", 0.30}};
  n_law.flags = {"too_few_scales: 1 distinct compute scales (needs 3)"};
  fit.laws = {surface, n_law};
  ExtrapolateOptions o;
  o.compute = 5e14;
  const Prediction p = extrapolate(fit, o);
  EXPECT_NEAR(p.n.value, 63.9 * std::pow(5e14, 0.30), 1e-6 * p.n.value);
  EXPECT_EQ(p.n.law, "N approach1");
  EXPECT_NEAR(6 * p.n.value * p.d.value / o.compute, 1, 1e-9);
  bool warned = false;
  for (const auto& w : p.warnings) warned = warned || w.find("approach3 gives no finite") != w.npos;
  EXPECT_TRUE(warned);
  // With no usable law at all, the error says what to do.
  fit.laws = {surface};
  try {
    extrapolate(fit, o);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("more compute scales"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace scaletune::scaling
