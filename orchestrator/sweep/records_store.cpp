#include "orchestrator/sweep/records_store.h"

#include <chrono>

#include "orchestrator/config/binder.h"
#include "scaletune_version.h"

namespace scaletune::sweep {

TrialRow to_row(const store::TrialRecord& r) {
  TrialRow row;
  row.trial = r.trial_id;
  row.suggestion_id = r.suggestion_id;
  row.attempt = r.attempt;
  row.status = store::to_string(r.status);
  row.failure_kind = r.failure_kind;
  row.reason = r.reason;
  row.params = r.params;
  row.objective = r.objective;
  row.cost = r.cost;
  row.flops = r.flops;
  row.flops_6n = r.flops_6n;
  row.tokens = r.tokens;
  row.device_seconds = r.device_seconds;
  row.wall_seconds = r.wall_seconds;
  row.devices = r.devices;
  row.host = r.host;
  row.start_unix = r.start_time;
  row.end_unix = r.end_time;
  row.slots = r.slots;
  row.dir = r.trial_dir;
  row.log_path = r.log_path;
  row.metrics = r.metrics;
  return row;
}

store::TrialRecord to_record(const TrialRow& row) {
  store::TrialRecord r;
  r.trial_id = row.trial;
  r.attempt = row.attempt;
  r.status = store::parse_trial_status(row.status);
  r.failure_kind = row.failure_kind;
  r.reason = row.reason;
  r.params = row.params;
  r.objective = row.objective;
  r.cost = row.cost;
  r.flops = row.flops;
  r.flops_6n = row.flops_6n;
  r.tokens = row.tokens;
  r.device_seconds = row.device_seconds;
  r.wall_seconds = row.wall_seconds;
  r.start_time = row.start_unix;
  r.end_time = row.end_unix;
  r.host = row.host;
  r.devices = row.devices;
  r.slots = row.slots;
  r.trial_dir = row.dir;
  r.log_path = row.log_path;
  r.suggestion_id = row.suggestion_id;
  r.metrics = row.metrics;
  return r;
}

store::SweepMeta sweep_meta(const SweepConfig& config, const std::string& config_yaml) {
  store::SweepMeta m;
  m.config_yaml = config_yaml;
  m.scaletune_version = SCALETUNE_VERSION;
  m.created =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.search_space_json = config::to_json(config.search.search).dump();
  m.direction = config.search.direction;
  // The trainers' default objective: val_loss for lm, lora and synthetic, `objective` otherwise.
  m.objective =
      !config.objective.empty() ? config.objective
      : config.trainer == "lm" || config.trainer == "lora" || config.trainer == "synthetic"
          ? "val_loss"
          : "objective";
  m.cost_metric = config.cost_metric();
  for (const auto& [name, spec] : config.search.search) m.params.push_back(name);
  return m;
}

void StoreRecords::append(const TrialRow& row) {
  // The curve first: a final row in the file implies its curve is there too.
  if (!row.curve.empty()) writer_.append_curve(row.trial, row.attempt, row.curve);
  writer_.append_trial(to_record(row));
}

}  // namespace scaletune::sweep
