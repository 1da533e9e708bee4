// Running per-dimension mean and variance, the statistics behind PPO's observation and reward
// normalisation (Gymnasium's RunningMeanStd, which CleanRL's NormalizeObservation and
// NormalizeReward wrappers use): a prior of count 1e-4, mean 0, variance 1, updated a batch at a
// time with Chan, Golub & LeVeque's parallel combination of (count, mean, M2 = var * count).
//
// The same combination merges the statistics of disjoint sample sets exactly (up to rounding),
// which is how data-parallel ranks share one normaliser: each rank gathers its new samples in a
// statistics object of its own (Empty()), and once per rollout every rank folds all ranks' parts
// into the shared statistics in rank order (allreduce_running_stats in ppo.h).
//
// Torch-free on purpose: plain doubles, testable without LibTorch.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace scaletune::trainer {

struct RunningMeanStd {
  // Gymnasium's prior: a pseudo-count 1e-4 at mean 0, variance 1.
  explicit RunningMeanStd(int dim) : mean(dim, 0.0), var(dim, 1.0) {}
  // No samples at all (count 0): the identity of merge().
  static RunningMeanStd Empty(int dim) {
    RunningMeanStd s(dim);
    s.count = 0;
    std::fill(s.var.begin(), s.var.end(), 0.0);
    return s;
  }
  int dim() const { return static_cast<int>(mean.size()); }

  // Adds `rows` samples, x row-major (rows, dim).
  void update(const float* x, int rows) {
    if (rows <= 0) return;
    const int d_max = dim();
    const double n = rows;
    for (int d = 0; d < d_max; ++d) {
      double m = 0, v = 0;
      for (int r = 0; r < rows; ++r) m += x[r * d_max + d];
      m /= n;
      for (int r = 0; r < rows; ++r) v += (x[r * d_max + d] - m) * (x[r * d_max + d] - m);
      merge_dim(d, n, m, v / n);
    }
    count += n;
  }

  // Adds the samples `other` summarises (same dim). Merging Empty() changes nothing.
  void merge(const RunningMeanStd& other) {
    if (other.count <= 0) return;
    for (int d = 0; d < dim(); ++d) merge_dim(d, other.count, other.mean[d], other.var[d]);
    count += other.count;
  }

  // x <- clip((x - mean) / sqrt(var + 1e-8), +-clip), rows of dim values.
  void normalize(float* x, int rows, double clip) const {
    const int d_max = dim();
    for (int r = 0; r < rows; ++r)
      for (int d = 0; d < d_max; ++d) {
        const double z = (x[r * d_max + d] - mean[d]) / std::sqrt(var[d] + 1e-8);
        x[r * d_max + d] = static_cast<float>(std::max(-clip, std::min(clip, z)));
      }
  }

  std::vector<double> mean, var;  // var: population variance (M2 / count)
  double count = 1e-4;

 private:
  // Dimension d absorbs n samples of mean m and population variance v (count not yet updated).
  void merge_dim(int d, double n, double m, double v) {
    const double delta = m - mean[d], total = count + n;
    mean[d] += delta * n / total;
    var[d] = (var[d] * count + v * n + delta * delta * count * n / total) / total;
  }
};

}  // namespace scaletune::trainer
