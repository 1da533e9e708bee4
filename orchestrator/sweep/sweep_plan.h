// Everything decided from the sweep config alone: the checks that run before anything starts,
// each trial's device count, and what an agent runs for a trial (its LaunchTrial).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "orchestrator/config/binder.h"
#include "orchestrator/sweep/messages.h"
#include "orchestrator/sweep/sweep_config.h"
#include "orchestrator/sweep/trial_config.h"

namespace scaletune::sweep {

// Binds and checks a sweep config: the struct itself, the base `train:` section against the
// trainer's config, that every searched key names a numeric field of it, that the config at the
// search center is a valid training config, and that the resources can ever hold a trial.
// Throws config::ConfigError listing every problem (nothing has started yet).
SweepConfig load_sweep_config(const config::Document& doc);

// The task name a trial config carries (`command` trials keep the user's train: section as is).
std::string trial_task(const SweepConfig& config);

// The trial's config: the base `train:` section with the suggested values and a derived seed.
YAML::Node trial_config(const SweepConfig& config, std::int64_t trial, const ParamValues& params);

// Devices (ranks) for a trial with this config: devices_per_trial, or devices_rule's
// ceil(value / per_device) clamped to [1, max]. Throws std::invalid_argument when the rule's key
// is missing or not a number in the trial config.
int devices_for(const ResourcesConfig& resources, const YAML::Node& trial_config);

// What a trial will cost, from its config alone (NaN where the trainer does not say): FLOPs
// (6 N D for `synthetic`; the Chinchilla count for `lm`), 6ND FLOPs, tokens, and wall seconds
// (`synthetic` only: it sleeps for a time set by its config). Used to keep cost budgets.
struct CostEstimate {
  double flops = std::numeric_limits<double>::quiet_NaN();
  double flops_6n = std::numeric_limits<double>::quiet_NaN();
  double tokens = std::numeric_limits<double>::quiet_NaN();
  double wall_seconds = std::numeric_limits<double>::quiet_NaN();
};
CostEstimate estimate_cost(const SweepConfig& config, const YAML::Node& trial_config);

// What the agents run for one attempt of a trial (ranks, master address and slots are filled in
// by the orchestrator at placement).
LaunchTrial launch_for(const SweepConfig& config, std::int64_t trial, int attempt,
                       const ParamValues& params, const YAML::Node& trial_config,
                       const std::string& trial_dir);

// Checks that trials of `devices_per_trial` (and the rule's max) fit an allocation of agents with
// these slot counts. Returns a message saying what to change, or "" when they fit.
std::string check_allocation(const ResourcesConfig& resources, const std::vector<int>& agent_slots);

}  // namespace scaletune::sweep
