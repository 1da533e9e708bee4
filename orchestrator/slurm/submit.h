// Submitting a batch script with `sbatch` and reading back the job id, with errors a user can act
// on: sbatch missing, the submission rejected (sbatch's own message), an unknown partition (with
// the partitions that exist).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace scaletune::slurm {

// Submission failed; nothing was queued. The message says why and what to do.
class SubmitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SubmitOptions {
  std::string sbatch = "sbatch";        // program name (looked up in PATH) or path
  std::vector<std::string> extra_args;  // before the script, e.g. --hold
  double timeout_seconds = 120;         // sbatch retries while slurmctld is busy; bound it
};

struct Submission {
  std::string job_id;   // e.g. "1234" (an array's job id for --mode array)
  std::string cluster;  // set on multi-cluster sites ("1234;cluster")
  std::string output;   // everything sbatch printed (warnings included)
};

// The job id in `sbatch --parsable` output: the last line that is `ID` or `ID;CLUSTER`.
std::optional<Submission> parse_sbatch_output(const std::string& output);

// Runs `sbatch --parsable [extra_args] script`. Throws SubmitError.
Submission submit_script(const std::string& script_path, const SubmitOptions& options = {});

// The partitions Slurm knows (`sinfo -h -o %R`), empty when sinfo is missing or does not answer.
std::vector<std::string> list_partitions(double timeout_seconds = 10);

}  // namespace scaletune::slurm
