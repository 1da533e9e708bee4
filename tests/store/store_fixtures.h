// Sample sweep metadata, trial records and curves shared by the store tests and the crash-test
// writer, plus field-by-field comparisons.
#pragma once

#include <cmath>
#include <optional>
#include <sstream>
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
  t.status = !final_row   ? TrialStatus::kRunning
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

// sample_trial(i) with every string column set, as a real sweep writes them: the schema-2
// columns, and on some rows values longer than their schema-3 cells, which go to /overflow (a
// failed trial's reason with a traceback, a deep trial directory, many undeclared metrics).
inline TrialRecord sample_trial_v2(std::int64_t i, int n_params = 3) {
  TrialRecord t = sample_trial(i, n_params);
  for (int d = 0; d < t.devices; ++d) t.slots.push_back(t.host + "/cuda:" + std::to_string(d));
  t.trial_dir = "trials/" + std::to_string(t.trial_id);
  if (t.status == TrialStatus::kFailed) {
    t.reason += "; traceback (most recent call last):\n";
    for (int f = 0; f < 6; ++f) {
      t.reason += "  File \"trainer/lm/train_lm.cpp\", line " + std::to_string(100 + 17 * f) +
                  ", in step \xE2\x80\x94 loss \xE2\x86\x92 NaN (\xCE\xB7 = 3e-3)\n";
    }
  }
  if (i % 5 == 1)
    t.trial_dir = "runs/" + std::string(300, 'd') + "/trials/" + std::to_string(t.trial_id);
  if (i % 4 == 3) {
    for (int m = 0; m < 48; ++m)
      t.metrics["eval/task_" + std::to_string(m) + "/accuracy"] = 0.01 * m;
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

// The fields store_crash_writer's rows are checked by: numbers that tell rows apart, and every
// string (those that went to /overflow included).
inline bool same_row(const TrialRecord& got, const TrialRecord& want) {
  return got.trial_id == want.trial_id && got.status == want.status && got.params == want.params &&
         same(got.objective, want.objective) && got.metrics == want.metrics &&
         got.failure_kind == want.failure_kind && got.reason == want.reason &&
         got.host == want.host && got.slots == want.slots && got.trial_dir == want.trial_dir &&
         got.log_path == want.log_path && got.suggestion_id == want.suggestion_id;
}

// What store_crash_writer's operations 0..end-1 leave in a file (crash_writer.cpp).
struct Expected {
  std::vector<std::int64_t> trial_ops;  // op index of each trials row, in order
  std::vector<std::int64_t> curve_ops;  // op index of each curve point
  std::optional<std::string> text;
};

inline Expected expected_after(std::int64_t end) {
  Expected e;
  for (std::int64_t k = 0; k < end; ++k) {
    if (k % 5 == 4) {
      e.text = "state " + std::to_string(k);
    } else if (k % 3 == 2) {
      for (int i = 0; i < 3; ++i) e.curve_ops.push_back(k);
    } else {
      e.trial_ops.push_back(k);
    }
  }
  return e;
}

// True when `r` is exactly the result of operations 0..end-1.
inline bool matches(const Records& r, std::int64_t end, std::string* why) {
  const Expected e = expected_after(end);
  std::ostringstream out;
  if (r.trials.size() != e.trial_ops.size()) {
    out << r.trials.size() << " trial rows, expected " << e.trial_ops.size();
  } else if (r.curves.size() != e.curve_ops.size()) {
    out << r.curves.size() << " curve rows, expected " << e.curve_ops.size();
  } else if (r.text("search_state") != e.text) {
    out << "search_state is '" << r.text("search_state").value_or("(none)") << "'";
  } else {
    for (std::size_t i = 0; i < r.trials.size(); ++i) {
      if (!same_row(r.trials[i], sample_trial_v2(e.trial_ops[i]))) {
        out << "trial row " << i << " differs";
        break;
      }
    }
    for (std::size_t i = 0; i < r.curves.size() && out.str().empty(); ++i) {
      const auto want = sample_curve(e.curve_ops[i], 3)[i % 3];
      if (r.curves[i].trial_id != e.curve_ops[i] || r.curves[i].point.step != want.step ||
          !same(r.curves[i].point.train_loss, want.train_loss)) {
        out << "curve row " << i << " differs";
      }
    }
  }
  *why = out.str();
  return why->empty();
}

// True when each table of `r` is a prefix of what the operations write (a snapshot taken while
// the writer runs: each table is read up to its own committed rows).
inline bool tables_are_prefixes(const Records& r, std::string* why) {
  const Expected e =
      expected_after(1 + 5 * static_cast<std::int64_t>(r.trials.size() + r.curves.size()));
  std::ostringstream out;
  if (r.trials.size() > e.trial_ops.size() || r.curves.size() > e.curve_ops.size()) {
    out << "too many rows";
  }
  for (std::size_t i = 0; i < r.trials.size() && out.str().empty(); ++i) {
    if (!same_row(r.trials[i], sample_trial_v2(e.trial_ops[i]))) {
      out << "trial row " << i << " differs";
    }
  }
  for (std::size_t i = 0; i < r.curves.size() && out.str().empty(); ++i) {
    const auto want = sample_curve(e.curve_ops[i], 3)[i % 3];
    if (r.curves[i].trial_id != e.curve_ops[i] || r.curves[i].point.step != want.step ||
        !same(r.curves[i].point.train_loss, want.train_loss)) {
      out << "curve row " << i << " differs";
    }
  }
  const auto text = r.text("search_state");
  if (text && text->rfind("state ", 0) != 0) out << "search_state is '" << *text << "'";
  *why = out.str();
  return why->empty();
}

// True when `r` is the result of operations 0..end-1 for some end; sets *end.
inline bool matches_some_prefix(const Records& r, std::int64_t* end) {
  std::string why;
  // The trial rows pin `end` down to the few operations (curves, texts) after the last trial.
  std::int64_t trials = 0, k = 0;
  for (; trials < static_cast<std::int64_t>(r.trials.size()); ++k) {
    if (k % 5 != 4 && k % 3 != 2) ++trials;
  }
  for (std::int64_t e = k; e <= k + 4; ++e) {
    if (matches(r, e, &why)) {
      *end = e;
      return true;
    }
  }
  return false;
}

}  // namespace scaletune::store::test
