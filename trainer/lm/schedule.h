// Run length and learning-rate schedule of a language-model run, matched to each other: the
// decay always ends at the last step, so a run's final loss is not pessimistic (Chinchilla §3).
// Torch-free and header-only; tests check the shape directly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "trainer/lm/lm_config.h"

namespace scaletune::trainer::lm {

struct RunPlan {
  std::int64_t steps = 0;
  std::int64_t tokens_per_step = 0;  // global batch in tokens
  double flops_per_token = 0;        // Chinchilla appendix F, training
  double tokens = 0;                 // steps * tokens_per_step (what the run really trains on)
};

inline RunPlan plan_run(const LmConfig& c, const LmShape& shape) {
  RunPlan p;
  p.tokens_per_step = c.train.batch_size * shape.context;
  p.flops_per_token = lm_flops_per_token(shape);
  const double wanted = c.train.tokens > 0 ? c.train.tokens : c.train.flops / p.flops_per_token;
  p.steps = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::llround(wanted / static_cast<double>(p.tokens_per_step))));
  p.tokens = static_cast<double>(p.steps) * static_cast<double>(p.tokens_per_step);
  return p;
}

// Learning rate for update `step` (0-based) of `steps`: linear warmup from lr/warmup to lr over
// the first warmup_fraction of the steps, then cosine or linear decay to min_lr_fraction * lr at
// the last step.
inline double learning_rate(const LmOptimConfig& o, std::int64_t step, std::int64_t steps) {
  const auto warmup = static_cast<std::int64_t>(std::ceil(o.warmup_fraction * steps));
  if (step < warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (o.schedule == "constant") return o.lr;
  const double span = static_cast<double>(std::max<std::int64_t>(1, steps - 1 - warmup));
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / span);  // 0 -> 1
  const double min_lr = o.min_lr_fraction * o.lr;
  const double shape =
      o.schedule == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return min_lr + (o.lr - min_lr) * shape;
}

}  // namespace scaletune::trainer::lm
