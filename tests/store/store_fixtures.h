// Sample sweep metadata, trial records and curves shared by the store tests and the crash-test
// writer, plus field-by-field comparisons.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "orchestrator/store/records.h"

namespace scaletune::store::test {

inline SweepMeta sample_meta(int n_params = 3) {
  SweepMeta m;
  m.config_yaml = "trainer:\n  task: synthetic\nsearch:\n  max_trials: 20\n";
  m.scaletune_version = "9.8.7-test";
  m.created = 1764633600.25;
  m.search_space_json = R"({"lr":{"kind":"log","min":1e-5,"max":1e-1}})";
  m.direction = "minimize";
  m.objective = "val_loss";
  m.cost_metric = "flops";
  for (int i = 0; i < n_params; ++i) {
    m.params.push_back(i == 0 ? "optimizer.lr" : "p" + std::to_string(i));
  }
  m.metrics = {"val_loss", "train_loss"};
  return m;
}

// A deterministic record for row `i` of a sweep made with sample_meta(n_params).
inline TrialRecord sample_trial(std::int64_t i, int n_params = 3) {
  TrialRecord t;
  t.trial_id = i / 2;  // two rows per trial: running, then final
  t.attempt = static_cast<int>(i % 3 == 2);
  const bool final_row = i % 2 == 1;
  t.status = !final_row ? TrialStatus::kRunning
             : i % 7 == 3 ? TrialStatus::kFailed
                          : TrialStatus::kOk;
  if (t.status == TrialStatus::kFailed) {
    t.failure_kind = "diverged";
    t.reason = "loss became NaN at step " + std::to_string(i);
  }
  for (int p = 0; p < n_params; ++p) {
    t.params[p == 0 ? "optimizer.lr" : "p" + std::to_string(p)] = 1e-3 * (i + 1) + p;
  }
  t.objective = final_row ? 3.0 / (1.0 + i) : kNaN;
  t.cost = 1e12 * (i + 1);
  t.flops = 1e12 * (i + 1);
  t.flops_6n = 0.9e12 * (i + 1);
  t.tokens = 1e6 * (i + 1);
  t.device_seconds = 2.5 * i;
  t.wall_seconds = 1.25 * i;
  t.start_time = 1764633600.0 + i;
  t.end_time = final_row ? 1764633700.0 + i : kNaN;
  t.host = "node-" + std::to_string(i % 4);
  t.devices = 1 + static_cast<int>(i % 2);
  t.log_path = "trials/" + std::to_string(t.trial_id) + "/log.txt";
  t.suggestion_id = "s" + std::to_string(t.trial_id);
  if (final_row) {
    t.metrics["val_loss"] = t.objective;
    t.metrics["train_loss"] = t.objective * 0.9;
    t.metrics["tokens_per_second"] = 1000.0 + i;  // undeclared: goes to the JSON column
  }
  return t;
}

inline std::vector<trainer::CurvePoint> sample_curve(std::int64_t trial, int n) {
  std::vector<trainer::CurvePoint> c;
  for (int s = 0; s < n; ++s) {
    trainer::CurvePoint p;
    p.step = 10 * s;
    p.tokens = 4096.0 * s;
    p.flops = 1e9 * s;
    p.wall_seconds = 0.5 * s;
    p.train_loss = 5.0 / (1 + s) + trial;
    p.val_loss = s % 2 ? 5.5 / (1 + s) : kNaN;
    c.push_back(p);
  }
  return c;
}

// NaN-aware equality.
inline bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

}  // namespace scaletune::store::test
