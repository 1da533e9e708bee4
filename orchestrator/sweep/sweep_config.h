// The sweep config: what to train (`trainer` + its base `train:` config), what to search
// (`search:`, `direction`, `seed`, `carbs:` — the same keys as an ask/tell config), what a trial
// costs and how much may be spent (`cost`, `budget:`), and where trials run (`resources:`).
// One file defines the whole sweep (configs/sweep_*.yaml).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "orchestrator/search/search_config.h"

namespace scaletune::sweep {

struct BudgetConfig {
  std::int64_t max_trials = 0;  // trials recorded (any status); 0 = no limit
  double max_cost = 0;          // total of the sweep's `cost` metric over trials; 0 = no limit
  double max_flops = 0;         // total training FLOPs; 0 = no limit
  double max_device_hours = 0;  // total device-hours; 0 = no limit
  double max_wall_seconds = 0;  // wall time of the sweep itself; 0 = no limit

  template <class V>
  void visit(V& v) {
    v.field("max_trials", max_trials, "Stop after this many trials are recorded (0: no limit).")
        .min(0);
    v.field("max_cost", max_cost, "Stop once the trials' total cost reaches this (0: no limit).")
        .min(0.0);
    v.field("max_flops", max_flops, "Stop once the trials' total FLOPs reach this (0: no limit).")
        .min(0.0);
    v.field("max_device_hours", max_device_hours,
            "Stop once trials used this many device-hours (0: no limit).")
        .min(0.0);
    v.field("max_wall_seconds", max_wall_seconds,
            "Stop suggesting after this much wall time (0: no limit).")
        .min(0.0);
  }
  void validate(std::vector<std::string>& errors) const {
    if (max_trials == 0 && max_cost == 0 && max_flops == 0 && max_device_hours == 0 &&
        max_wall_seconds == 0)
      errors.push_back(
          "set at least one limit (max_trials, max_cost, max_flops, max_device_hours or "
          "max_wall_seconds), or the sweep never ends");
  }
};

// Devices for a trial from its own config: ceil(value / per_device), clamped to [1, max].
struct DevicesRule {
  std::string key;        // "" = rule off; "params" / "memory_bytes" (LM estimates) or a config key
  double per_device = 0;  // how much of `key` one device holds
  int max = 0;            // upper bound (0: the whole allocation)

  template <class V>
  void visit(V& v) {
    v.field("key", key,
            "What sets the device count: params, memory_bytes, or a dotted config key.");
    v.field("per_device", per_device, "How much of `key` one device handles.").min(0.0);
    v.field("max", max, "Most devices for one trial (0: no cap beyond the allocation).").min(0);
  }
  void validate(std::vector<std::string>& errors) const {
    if (!key.empty() && per_device <= 0) errors.push_back("per_device must be > 0 when key is set");
  }
};

struct ResourcesConfig {
  std::string devices = "auto";  // auto: GPUs when the node has any, else CPU slots
  int slots = 0;                 // CPU slots per agent; 0 = usable cores / threads_per_trial
  int threads_per_trial = 1;     // threads per trial rank (OMP_NUM_THREADS, torch threads)
  int devices_per_trial = 1;     // ranks (devices) per trial, unless devices_rule applies
  DevicesRule devices_rule;
  bool span_nodes = true;         // may one trial take slots on several agents
  double timeout_seconds = 3600;  // a trial running longer is stopped and recorded as timed out
  int max_retries = 2;            // infrastructure failures retried this many times
  std::string on_stop = "checkpoint";  // on Ctrl-C/SIGTERM/preemption: checkpoint | finish | kill
  double stop_grace_seconds = 60;      // how long trials get to checkpoint or finish
  bool trials_on_rank0 = true;         // under MPI, rank 0 (the orchestrator) also runs trials
  // While the oldest waiting trial does not fit the free slots: how many suggestions may be asked
  // for, and started ahead of it on the idle slots (docs/sweep.md, "Scheduling"). 0 = none.
  int backfill = 2;

  template <class V>
  void visit(V& v) {
    v.field("devices", devices, "Device kind of the slots.").one_of({"auto", "cpu", "gpu"});
    v.field("slots", slots, "CPU worker slots per agent (0: cores / threads_per_trial).").min(0);
    v.field("threads_per_trial", threads_per_trial, "Threads for each rank of a trial.").min(1);
    v.field("devices_per_trial", devices_per_trial, "Devices (ranks) per trial.").min(1);
    v.field("devices_rule", devices_rule, "Derive the device count from the trial's config.");
    v.field("span_nodes", span_nodes, "Let one trial use slots of several agents.");
    v.field("timeout_seconds", timeout_seconds, "Stop a trial running longer than this (0: never).")
        .min(0.0);
    v.field("max_retries", max_retries, "Retries of a trial after infrastructure failures.").min(0);
    v.field("on_stop", on_stop, "What running trials do when the sweep is stopped.")
        .one_of({"checkpoint", "finish", "kill"});
    v.field("stop_grace_seconds", stop_grace_seconds, "Time trials get to checkpoint or finish.")
        .min(0.0);
    v.field("trials_on_rank0", trials_on_rank0, "Under MPI, rank 0 also runs an agent.");
    v.field("backfill", backfill,
            "Suggestions that may run on idle slots while a bigger trial waits for slots.")
        .min(0);
  }
};

// An external program as the trainer: it gets the parameters as `--key value` arguments and as
// SCALETUNE_PARAM_<KEY> variables, runs in the trial directory, and writes a result file.
struct CommandConfig {
  std::vector<std::string> argv;            // program and fixed arguments
  std::map<std::string, std::string> env;   // extra environment
  std::string result_file = "result.json";  // relative to the trial directory
  bool pass_arguments = true;               // append --key value for every parameter

  template <class V>
  void visit(V& v) {
    v.field("argv", argv, "Program and fixed arguments of the `command` trainer.");
    v.field("env", env, "Extra environment variables for the program.");
    v.field("result_file", result_file, "Result file the program writes in its working directory.")
        .nonempty();
    v.field("pass_arguments", pass_arguments, "Append --key value for every searched parameter.");
  }
};

// Refit scaling laws while the sweep runs (a hook into scaling/, when the build has it).
struct ScalingHookConfig {
  int refit_every = 0;  // observations between refits; 0 = never

  template <class V>
  void visit(V& v) {
    v.field("refit_every", refit_every,
            "Refit the scaling laws after this many new observations (0: never).")
        .min(0);
  }
};

// The whole sweep. `search`, `direction`, `seed` and `carbs` are the search's own keys
// (search::SearchConfig), read at the top level like in an ask-tell config.
struct SweepConfig {
  std::string name = "sweep";
  std::string trainer;        // lm | ppo | lora | synthetic | command
  YAML::Node train;           // base config of every trial (its `task:` comes from `trainer`)
  std::string objective;      // metric to optimise; "" = the trainer's default (objective)
  std::string cost = "auto";  // cost metric per trial: flops, flops_6n, tokens, device_seconds,
                              // wall_seconds, a reported metric; auto = flops (cost for command)
  search::SearchConfig search;
  BudgetConfig budget;
  ResourcesConfig resources;
  CommandConfig command;
  std::string out_dir;                     // trial directories and records; "" = runs/sweep-NAME
  std::string warning_signal = "SIGUSR2";  // Slurm's --signal before the time limit
  double log_interval_seconds = 30;        // progress log lines when not on a terminal
  ScalingHookConfig scaling;

  template <class V>
  void visit(V& v) {
    v.field("name", name, "Name of the sweep (progress lines, default output directory).")
        .nonempty();
    v.field("trainer", trainer, "What every trial runs.")
        .required()
        .one_of({"lm", "ppo", "lora", "synthetic", "command"});
    v.field("train", train, "Base training config of every trial; searched keys are set in it.");
    v.field("objective", objective,
            "Metric to optimise (default: the trainer's objective, e.g. val_loss).");
    v.field("cost", cost,
            "Cost of a trial: flops, flops_6n, tokens, device_seconds, wall_seconds, a reported "
            "metric, or auto (flops; the result's cost for the command trainer).")
        .nonempty();
    search.visit(v);
    v.field("budget", budget, "When the sweep stops.");
    v.field("resources", resources, "Where and how trials run.");
    v.field("command", command, "The external program of the `command` trainer.");
    v.field("out_dir", out_dir,
            "Directory for trial directories and records (default: "
            "runs/sweep-NAME).");
    v.field("warning_signal", warning_signal,
            "Signal that stops the sweep like SIGTERM (Slurm's --signal before the time limit).")
        .one_of({"SIGUSR2", "SIGTERM", "SIGINT", "SIGHUP", "SIGXCPU", "SIGURG"});
    v.field("log_interval_seconds", log_interval_seconds,
            "Seconds between progress log lines when not on a terminal.")
        .above(0.0);
    v.field("scaling", scaling, "Scaling-law refits during the sweep.");
  }
  // The cost metric after resolving `auto`.
  std::string cost_metric() const {
    if (cost != "auto") return cost;
    return trainer == "command" ? "cost" : "flops";
  }
  void validate(std::vector<std::string>& errors) const {
    search.validate(errors);
    if (warning_signal == "SIGUSR1")
      errors.push_back(
          "warning_signal SIGUSR1 can be intercepted by NCCL; use SIGUSR2 (and "
          "sbatch --signal=USR2@120)");
    if (trainer == "command" && command.argv.empty())
      errors.push_back("trainer is command but command.argv is empty; set the program to run");
    if (trainer != "command" && !command.argv.empty())
      errors.push_back("command.argv is set but trainer is " + trainer +
                       "; set trainer: command or remove the command section");
  }
};

}  // namespace scaletune::sweep
