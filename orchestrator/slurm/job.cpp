// Job specs -> placeholder values -> batch scripts (job.h).
#include "orchestrator/slurm/job.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace scaletune::slurm {
namespace generated {
extern const char* const kAllocationTemplate;
extern const char* const kArrayTemplate;
}  // namespace generated

namespace {

// Characters a value may contain to be pasted into the script unquoted (paths, names, flags).
// Spaces, quotes, `$` and backquotes are refused rather than escaped: the same value also goes
// into `#SBATCH` lines, which sbatch parses with its own rules.
bool shell_safe(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string("_-./+=,:@%").find(static_cast<char>(c)) != std::string::npos;
  });
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

bool is_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

const char* to_string(Mode mode) { return mode == Mode::kAllocation ? "allocation" : "array"; }

long parse_time_limit(const std::string& text) {
  // Slurm's formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
  long days = 0;
  std::string rest = text;
  const std::size_t dash = text.find('-');
  const bool has_days = dash != std::string::npos;
  if (has_days) {
    if (!is_digits(text.substr(0, dash))) return -1;
    days = std::stol(text.substr(0, dash));
    rest = text.substr(dash + 1);
  }
  std::vector<long> parts;
  std::stringstream ss(rest);
  std::string part;
  while (std::getline(ss, part, ':')) {
    if (!is_digits(part) || part.size() > 3) return -1;
    parts.push_back(std::stol(part));
  }
  if (rest.empty() || rest.back() == ':' || parts.empty() || parts.size() > 3) return -1;
  if (has_days) {  // D-HH[:MM[:SS]]
    const long h = parts[0], m = parts.size() > 1 ? parts[1] : 0,
               s = parts.size() > 2 ? parts[2] : 0;
    return ((days * 24 + h) * 60 + m) * 60 + s;
  }
  if (parts.size() == 1) return parts[0] * 60;             // MM
  if (parts.size() == 2) return parts[0] * 60 + parts[1];  // MM:SS
  return (parts[0] * 60 + parts[1]) * 60 + parts[2];       // HH:MM:SS
}

std::vector<std::string> validate(const JobSpec& s) {
  std::vector<std::string> errors;
  auto positive = [&](const char* flag, int value) {
    if (value < 1) errors.push_back(std::string(flag) + " must be at least 1");
  };
  positive("--nodes", s.nodes);
  positive("--tasks-per-node", s.tasks_per_node);
  if (s.gpus_per_node < 0) errors.push_back("--gpus-per-node must be 0 (no GPUs) or more");
  if (s.cpus_per_task < 0) errors.push_back("--cpus-per-task must be 0 (Slurm's default) or more");
  if (!s.time.empty()) {
    const long seconds = parse_time_limit(s.time);
    if (seconds < 0) {
      errors.push_back("--time '" + s.time +
                       "' is not a Slurm time limit (HH:MM:SS, MM, or D-HH:MM:SS)");
    } else if (seconds <= s.signal_seconds) {
      errors.push_back("--time " + s.time + " leaves no time to run: the warning signal comes " +
                       std::to_string(s.signal_seconds) +
                       " s before the end; ask for more time or a shorter --signal-seconds");
    }
  }
  if (s.signal_seconds < 1 || s.signal_seconds > 65535)
    errors.push_back("--signal-seconds must be within 1..65535 (Slurm's limit)");
  if (s.signal == "USR1")
    errors.push_back("the warning signal must not be SIGUSR1: NCCL may intercept it; use USR2");
  if (s.launcher != "srun" && s.launcher != "mpirun")
    errors.push_back("--launcher must be srun or mpirun, not '" + s.launcher + "'");
  if (s.max_requeues < 0) errors.push_back("max_requeues must be 0 or more");
  const std::pair<const char*, const std::string*> words[] = {
      {"job name", &s.job_name},     {"--partition", &s.partition},
      {"--account", &s.account},     {"--qos", &s.qos},
      {"signal", &s.signal},         {"scaletune program path", &s.scaletune},
      {"--config path", &s.config},  {"--records path", &s.records},
      {"run directory", &s.run_dir}, {"working directory", &s.workdir},
  };
  for (const auto& [what, value] : words) {
    if (!shell_safe(*value))
      errors.push_back(std::string(what) + " '" + *value +
                       "' has characters the batch script cannot hold unquoted (spaces, quotes, "
                       "$, ...); use letters, digits and _-./+=,:@%");
  }
  if (s.job_name.empty()) errors.push_back("the job name must not be empty");
  for (const auto& [what, value] :
       {std::pair{"scaletune program path", &s.scaletune}, std::pair{"--config path", &s.config},
        std::pair{"--records path", &s.records}, std::pair{"run directory", &s.run_dir},
        std::pair{"working directory", &s.workdir}}) {
    if (value->empty() || (*value)[0] != '/')
      errors.push_back(std::string(what) + " '" + *value + "' must be an absolute path");
  }
  for (const auto& arg : s.sbatch_args) {
    if (arg.size() < 2 || arg[0] != '-' || arg.find('\n') != std::string::npos)
      errors.push_back("--sbatch-arg '" + arg +
                       "' must be one sbatch option, e.g. --sbatch-arg=--constraint=a100");
  }
  for (const auto& arg : s.sweep_args) {
    if (!shell_safe(arg))
      errors.push_back("sweep argument '" + arg + "' has characters the script cannot hold");
  }
  if (s.mode == Mode::kArray) {
    if (s.total_trials < 1)
      errors.push_back(
          "--mode array needs the number of trials: set budget.max_trials in the config (or "
          "--trials N)");
    if (s.trials_per_job < 1) errors.push_back("--trials-per-job must be at least 1");
  }
  return errors;
}

std::string log_pattern(const JobSpec& s) {
  return s.run_dir + (s.mode == Mode::kArray ? "/slurm-%A_%a.out" : "/slurm-%j.out");
}

Values placeholder_values(const JobSpec& s) {
  std::vector<std::string> sbatch_lines;
  for (const auto& arg : s.sbatch_args) sbatch_lines.push_back("#SBATCH " + arg);
  const int per_job = std::max(1, s.trials_per_job);
  const int elements = std::max(1, (s.total_trials + per_job - 1) / per_job);
  return {
      {"job_name", s.job_name},
      {"nodes", std::to_string(s.nodes)},
      {"tasks_per_node", std::to_string(s.tasks_per_node)},
      {"gpus_per_node", std::to_string(s.gpus_per_node)},
      {"cpus_per_task", std::to_string(s.cpus_per_task)},
      {"time", s.time},
      {"partition", s.partition},
      {"account", s.account},
      {"qos", s.qos},
      {"sbatch_args", join(sbatch_lines, "\n")},
      {"signal", s.signal},
      {"signal_seconds", std::to_string(s.signal_seconds)},
      {"max_requeues", std::to_string(s.max_requeues)},
      {"stopped_exit_code", std::to_string(s.stopped_exit_code)},
      {"use_srun", s.launcher == "srun" ? "1" : ""},
      {"use_mpirun", s.launcher == "mpirun" ? "1" : ""},
      {"scaletune", s.scaletune},
      {"config", s.config},
      {"records", s.records},
      {"run_dir", s.run_dir},
      {"workdir", s.workdir},
      {"log", log_pattern(s)},
      {"sweep_args", join(s.sweep_args, " ")},
      {"total_trials", std::to_string(s.total_trials)},
      {"trials_per_job", std::to_string(per_job)},
      {"array_last", std::to_string(elements - 1)},
  };
}

const std::string& builtin_template(Mode mode) {
  static const std::string allocation = generated::kAllocationTemplate;
  static const std::string array = generated::kArrayTemplate;
  return mode == Mode::kAllocation ? allocation : array;
}

std::string render_script(const JobSpec& spec, const std::string& template_path) {
  if (template_path.empty())
    return render_template(builtin_template(spec.mode), placeholder_values(spec),
                           std::string("built-in ") + to_string(spec.mode) + " template");
  std::ifstream in(template_path);
  if (!in)
    throw std::runtime_error("cannot read the template " + template_path +
                             "; copy slurm/allocation.sbatch or slurm/array.sbatch to start one");
  std::stringstream text;
  text << in.rdbuf();
  return render_template(text.str(), placeholder_values(spec), template_path);
}

}  // namespace scaletune::slurm
