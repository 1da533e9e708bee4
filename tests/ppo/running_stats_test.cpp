// The normalisers' running statistics (trainer/ppo/running_stats.h) against hand-computed values
// with Gymnasium's prior, and the parallel combination that data-parallel ranks use to share
// them: merging the statistics of parts equals the statistics of the union.
#include "trainer/ppo/running_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace scaletune::trainer {
namespace {

constexpr double kPrior = 1e-4;  // Gymnasium's pseudo-count (mean 0, variance 1)

TEST(RunningMeanStd, OneBatchWithGymnasiumPriorByHand) {
  RunningMeanStd s(1);
  const std::vector<float> x{1, 2, 3, 4};  // mean 2.5, population variance 1.25
  s.update(x.data(), 4);
  const double n = 4 + kPrior;
  EXPECT_DOUBLE_EQ(s.count, n);
  EXPECT_NEAR(s.mean[0], 10.0 / n, 1e-15);
  // M2 = prior (1e-4 * 1) + batch (4 * 1.25) + between (2.5^2 * 1e-4 * 4 / n).
  EXPECT_NEAR(s.var[0], (kPrior + 5.0 + 6.25 * kPrior * 4 / n) / n, 1e-15);
}

// 13 rows of 2 dims, not centred and of different scales.
std::vector<float> samples() {
  std::vector<float> x;
  for (int r = 0; r < 13; ++r) {
    x.push_back(static_cast<float>(3.0 + std::sin(1.7 * r)));
    x.push_back(static_cast<float>(-50.0 + 20.0 * std::cos(0.9 * r * r)));
  }
  return x;
}

TEST(RunningMeanStd, MergedPartsEqualTheUnionAndTheDirectFormula) {
  const std::vector<float> x = samples();
  RunningMeanStd whole(2);
  whole.update(x.data(), 13);

  // The trainer's way: one row at a time.
  RunningMeanStd stepwise(2);
  for (int r = 0; r < 13; ++r) stepwise.update(x.data() + 2 * r, 1);

  // The data-parallel way: parts of unequal size summarised apart, then merged in order.
  RunningMeanStd a = RunningMeanStd::Empty(2), b = RunningMeanStd::Empty(2);
  a.update(x.data(), 5);
  b.update(x.data() + 10, 8);
  RunningMeanStd merged(2);
  merged.merge(a);
  merged.merge(b);

  for (int d = 0; d < 2; ++d) {
    // Two passes over the union with the prior as a pseudo-sample of weight 1e-4 at mean 0,
    // variance 1: M2 = sum (x - m)^2 + 1e-4 * (1 + m^2).
    double sum = 0;
    for (int r = 0; r < 13; ++r) sum += x[2 * r + d];
    const double n = 13 + kPrior, m = sum / n;
    double m2 = kPrior * (1 + m * m);
    for (int r = 0; r < 13; ++r) m2 += (x[2 * r + d] - m) * (x[2 * r + d] - m);
    const double var = m2 / n;
    for (const RunningMeanStd* s : {&whole, &stepwise, &merged}) {
      EXPECT_DOUBLE_EQ(s->count, n);
      EXPECT_NEAR(s->mean[d], m, 1e-12 * std::abs(m));
      EXPECT_NEAR(s->var[d], var, 1e-11 * var);
    }
  }
}

TEST(RunningMeanStd, EmptyIsTheIdentityOfMerge) {
  const std::vector<float> x = samples();
  RunningMeanStd s(2);
  s.update(x.data(), 13);
  const RunningMeanStd before = s;
  s.merge(RunningMeanStd::Empty(2));
  EXPECT_EQ(s.count, before.count);
  EXPECT_EQ(s.mean, before.mean);
  EXPECT_EQ(s.var, before.var);

  RunningMeanStd e = RunningMeanStd::Empty(2);
  e.merge(before);
  EXPECT_EQ(e.count, before.count);
  EXPECT_EQ(e.mean, before.mean);
  EXPECT_EQ(e.var, before.var);
}

TEST(RunningMeanStd, NormalizeStandardisesAndClips) {
  RunningMeanStd s(2);
  s.mean = {1.0, -2.0};
  s.var = {4.0, 0.25};
  std::vector<float> x{3.0f, -2.5f, 100.0f, 8.0f};
  s.normalize(x.data(), 2, 10.0);
  EXPECT_NEAR(x[0], 2.0 / std::sqrt(4.0 + 1e-8), 1e-6);
  EXPECT_NEAR(x[1], -0.5 / std::sqrt(0.25 + 1e-8), 1e-6);
  EXPECT_FLOAT_EQ(x[2], 10.0f);  // 49.5 sigma, clipped
  EXPECT_FLOAT_EQ(x[3], 10.0f);  // 20 sigma, clipped
}

}  // namespace
}  // namespace scaletune::trainer
