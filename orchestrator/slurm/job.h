// What a submitted sweep asks Slurm for and runs, and how that becomes a batch script.
//
// Two modes (templates in slurm/, placeholders in docs/slurm.md):
//   allocation  one job: `nodes` x `tasks_per_node` MPI ranks (`srun --mpi=pmix` or `mpirun`);
//               rank 0 is the orchestrator, every rank an agent for the GPUs of its node.
//   array       a job array, one element per `trials_per_job` trials, run one after another
//               (`%1`): each element resumes the sweep from the records file and adds its trials.
//               For clusters that limit job length or discourage long allocations.
// Both ask for a warning signal before the time limit, forward it to the sweep (which stops
// suggesting, lets trials checkpoint and flushes the records) and requeue the job, which then
// resumes the sweep from the same records file.
#pragma once

#include <string>
#include <vector>

#include "orchestrator/slurm/template.h"

namespace scaletune::slurm {

enum class Mode { kAllocation, kArray };

struct JobSpec {
  Mode mode = Mode::kAllocation;
  std::string job_name = "scaletune";
  // Resources.
  int nodes = 1;
  int tasks_per_node = 1;  // agents per node; they split the node's GPUs round-robin
  int gpus_per_node = 0;   // 0: no GPU request
  int cpus_per_task = 0;   // 0: Slurm's default (often 1 CPU: set it for CPU trials)
  std::string time;        // time limit, e.g. 04:00:00 or 1-00:00:00; "" = partition default
  std::string partition, account, qos;   // "" = cluster defaults
  std::vector<std::string> sbatch_args;  // extra `#SBATCH` options, e.g. --constraint=a100
  std::string launcher = "srun";         // srun (PMIx) | mpirun
  // Preemption and time limits.
  std::string signal = "USR2";  // warning signal, sent to the batch shell `signal_seconds` early
  int signal_seconds = 120;
  int max_requeues = 20;      // a job stopped more often than this is not requeued again
  int stopped_exit_code = 4;  // the sweep's exit code for "stopped early, resume me"
  // What runs. Absolute paths (the job may start in another directory).
  std::string scaletune;                // the program
  std::string config;                   // sweep config
  std::string records;                  // HDF5 records file
  std::string run_dir;                  // batch logs and the rendered script
  std::string workdir;                  // the job's working directory (where submit ran)
  std::vector<std::string> sweep_args;  // more arguments for `scaletune sweep` (e.g. --set k=v)
  // Array mode.
  int total_trials = 0;    // trials of the whole sweep (its budget.max_trials)
  int trials_per_job = 1;  // trials each array element adds
};

// Everything wrong with a spec, each message saying what to change; empty when it is valid.
std::vector<std::string> validate(const JobSpec& spec);

// The values of every placeholder the templates may use (docs/slurm.md).
Values placeholder_values(const JobSpec& spec);

// The built-in template of a mode (the text of slurm/allocation.sbatch or slurm/array.sbatch,
// compiled into the program so `scaletune submit` works from any directory).
const std::string& builtin_template(Mode mode);
const char* to_string(Mode mode);

// Renders the batch script: `template_path` if set (a user's template), else the built-in one.
// Throws TemplateError (bad template) or std::runtime_error (unreadable template file).
std::string render_script(const JobSpec& spec, const std::string& template_path = "");

// Where Slurm writes the batch log (`%j`/`%A_%a` patterns, as in the script's --output).
std::string log_pattern(const JobSpec& spec);

// Seconds of a Slurm time limit ("MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS");
// -1 when malformed.
long parse_time_limit(const std::string& text);

}  // namespace scaletune::slurm
