// scaletune submit --config FILE [--nodes N] [--gpus-per-node G] ... [--dry-run]
//
// Renders a batch script for a sweep from a template in slurm/ (or the user's --template),
// submits it with sbatch and prints the job id and where the records and logs will be, as one
// JSON line on stdout. The job runs `scaletune sweep` under srun (or mpirun), stops on Slurm's
// warning signal, requeues itself and resumes from the same records file (docs/slurm.md).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "orchestrator/cli/command.h"
#include "orchestrator/config/kinds.h"
#include "orchestrator/slurm/job.h"
#include "orchestrator/slurm/submit.h"

namespace scaletune::cli {
namespace {

namespace fs = std::filesystem;

std::string absolute(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return stamp;
}

// A scalar of the sweep config, or `fallback` when absent. The sweep validates the whole file
// when it starts; submit reads only what shapes the batch script.
template <class T>
T config_value(const config::Document& doc, const std::string& section, const std::string& key,
               T fallback) {
  // Const nodes only: assigning one yaml-cpp node to another rewrites the tree it points into.
  const YAML::Node& root = doc.root();
  const YAML::Node node = section.empty() ? root : root[section];
  if (!node || !node.IsMap() || !node[key]) return fallback;
  try {
    return node[key].as<T>();
  } catch (const YAML::Exception&) {
    throw UsageError(doc.name() + ": " + (section.empty() ? "" : section + ".") + key +
                     " has the wrong type; `scaletune validate " + doc.name() + "` says more");
  }
}

}  // namespace

Command add_submit_command(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    slurm::JobSpec spec;
    std::string mode = "allocation";
    std::string records;
    std::string template_path;
    int signal_seconds = 0;
    int trials = 0;
    bool resume = false;
    bool dry_run = false;
  };
  auto opts = std::make_shared<Options>();
  auto& s = opts->spec;
  CLI::App* sub = app.add_subcommand(
      "submit", "Submit a sweep to Slurm (sbatch); it survives time limits and preemption");
  sub->add_option("--config", opts->config, "Sweep config (YAML) with `trainer:` and `search:`")
      ->required();
  sub->add_option("--set", opts->overrides,
                  "Override a key of the sweep config, passed on to `scaletune sweep`");
  sub->add_option("--nodes", s.nodes, "Nodes of the allocation (default 1)");
  sub->add_option("--tasks-per-node", s.tasks_per_node,
                  "Agents per node (default 1; they split the node's GPUs)");
  sub->add_option("--gpus-per-node", s.gpus_per_node, "GPUs per node (default 0: none)");
  sub->add_option("--cpus-per-task", s.cpus_per_task,
                  "CPU cores per agent (default: Slurm's, often 1)");
  sub->add_option("--time", s.time, "Time limit of one run of the job, HH:MM:SS or D-HH:MM:SS");
  sub->add_option("--partition", s.partition, "Partition (default: the cluster's default)");
  sub->add_option("--account", s.account, "Account to charge");
  sub->add_option("--qos", s.qos, "Quality of service");
  sub->add_option("--sbatch-arg", s.sbatch_args,
                  "Extra sbatch option as --sbatch-arg=--constraint=a100 (repeatable)");
  sub->add_option("--mode", opts->mode,
                  "allocation: one job for the sweep; array: one array element per trial")
      ->check(CLI::IsMember({"allocation", "array"}));
  sub->add_option("--trials-per-job", s.trials_per_job,
                  "--mode array: trials each element adds (default 1)");
  sub->add_option("--trials", opts->trials,
                  "--mode array: trials of the whole sweep (default: budget.max_trials)");
  sub->add_option("--launcher", s.launcher, "srun (PMIx, default) or mpirun")
      ->check(CLI::IsMember({"srun", "mpirun"}));
  sub->add_option("--signal-seconds", opts->signal_seconds,
                  "Warning signal this long before the time limit (default: "
                  "resources.stop_grace_seconds + 60, at least 120)");
  CLI::Option* job_name =
      sub->add_option("--job-name", s.job_name, "Job name (default: scaletune-NAME)");
  sub->add_option("--records", opts->records,
                  "HDF5 records file (default: OUT_DIR/records.h5, OUT_DIR from the config or "
                  "runs/sweep-NAME)");
  sub->add_option("--template", opts->template_path,
                  "Own batch-script template (start from slurm/allocation.sbatch)");
  sub->add_flag("--resume", opts->resume,
                "Continue the sweep in an existing records file instead of refusing it");
  sub->add_flag("--dry-run", opts->dry_run, "Print the batch script; submit nothing");

  return {sub, "submit", [opts, job_name] {
            auto& spec = opts->spec;
            const auto doc = config::Document::load_file(opts->config, opts->overrides);
            if (config::detect_kind(doc) != config::ConfigKind::kSweep)
              throw UsageError(opts->config +
                               " is not a sweep config (it needs `trainer:` and `search:`); "
                               "`scaletune submit` runs sweeps");
            const auto name = config_value<std::string>(doc, "", "name", "sweep");
            std::string out_dir = config_value<std::string>(doc, "", "out_dir", "");
            if (out_dir.empty()) out_dir = "runs/sweep-" + name;
            std::string signal = config_value<std::string>(doc, "", "warning_signal", "SIGUSR2");
            if (signal.rfind("SIG", 0) == 0) signal = signal.substr(3);
            const double grace = config_value<double>(doc, "resources", "stop_grace_seconds", 60.0);

            spec.mode = opts->mode == "array" ? slurm::Mode::kArray : slurm::Mode::kAllocation;
            if (job_name->count() == 0) spec.job_name = "scaletune-" + name;
            spec.signal = signal;
            spec.signal_seconds = opts->signal_seconds > 0
                                      ? opts->signal_seconds
                                      : std::max(120, static_cast<int>(grace) + 60);
            spec.stopped_exit_code = kExitStopped;  // what `scaletune sweep` exits with on a stop
            spec.scaletune = fs::read_symlink("/proc/self/exe").string();
            spec.config = absolute(opts->config);
            spec.records =
                absolute(opts->records.empty() ? out_dir + "/records.h5" : opts->records);
            spec.run_dir = fs::path(spec.records).parent_path().string();
            spec.workdir = fs::current_path().string();
            spec.sweep_args.clear();
            for (const auto& o : opts->overrides) {
              spec.sweep_args.push_back("--set");
              spec.sweep_args.push_back(o);
            }
            spec.total_trials =
                opts->trials > 0 ? opts->trials : config_value<int>(doc, "budget", "max_trials", 0);
            const auto problems = slurm::validate(spec);
            if (!problems.empty()) {
              std::string message = "cannot submit:";
              for (const auto& p : problems) message += "\n  " + p;
              throw UsageError(message);
            }
            if (fs::exists(spec.records) && !opts->resume)
              throw UsageError("the records file " + spec.records +
                               " exists: pass --resume to continue that sweep, or choose "
                               "another --records");

            std::string script;
            try {
              script = slurm::render_script(spec, opts->template_path);
            } catch (const slurm::TemplateError& e) {
              throw UsageError(e.what());
            }
            if (opts->dry_run) {
              std::fputs(script.c_str(), stdout);
              return kExitOk;
            }
            if (spec.cpus_per_task == 0 && spec.gpus_per_node == 0)
              spdlog::warn(
                  "no --cpus-per-task: Slurm's default is often 1 core per agent, "
                  "shared by all its trials");

            fs::create_directories(spec.run_dir);
            const std::string script_path = spec.run_dir + "/submit-" + timestamp() + "." +
                                            slurm::to_string(spec.mode) + ".sbatch";
            std::ofstream(script_path) << script;
            slurm::Submission submission;
            try {
              submission = slurm::submit_script(script_path);
            } catch (const slurm::SubmitError& e) {
              throw UsageError(e.what());
            }
            std::string log = slurm::log_pattern(spec);
            const auto replace = [&](const std::string& from, const std::string& to) {
              const auto at = log.find(from);
              if (at != std::string::npos) log.replace(at, from.size(), to);
            };
            replace("%j", submission.job_id);
            replace("%A", submission.job_id);
            nlohmann::json summary = {{"job_id", submission.job_id},
                                      {"mode", slurm::to_string(spec.mode)},
                                      {"records", spec.records},
                                      {"log", log},
                                      {"script", script_path}};
            if (!submission.cluster.empty()) summary["cluster"] = submission.cluster;
            spdlog::info("submitted job {}; records {}; log {}; follow with `scaletune status {}`",
                         submission.job_id, spec.records, log, spec.records);
            std::printf("%s\n", summary.dump().c_str());
            std::fflush(stdout);
            return kExitOk;
          }};
}

}  // namespace scaletune::cli
