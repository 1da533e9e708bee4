// `scaletune submit` against fake sbatch/sinfo programs on PATH: what is submitted, what is
// printed, and the errors for a missing sbatch, a rejected submission and an unknown partition.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace scaletune::test {
namespace {

const std::string kSweep = std::string(SCALETUNE_SOURCE_DIR) + "/tests/slurm/sweep.yaml";

void write_program(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  chmod(path.c_str(), 0755);
}

struct Fake {
  std::string dir, bin;
  explicit Fake(const std::string& name) : dir(temp_dir(name)), bin(dir + "/bin") {
    std::filesystem::create_directories(bin);
  }
  // Runs `scaletune submit ARGS` with the fake programs first on PATH (then the system's, for
  // the tools the fakes use), or with only them when `only_fakes`.
  CommandResult submit(const std::string& args, bool only_fakes = false) const {
    const std::string path = only_fakes ? bin : bin + ":/usr/bin:/bin";
    return run_command("cd " + dir + " && PATH=" + path + " " + scaletune_bin() +
                       " submit --config " + kSweep + " --records " + dir + "/run/records.h5 " +
                       args);
  }
};

TEST(Submit, SubmitsScriptAndPrintsJobIdRecordsAndLog) {
  Fake f("slurm_submit_ok");
  write_program(f.bin + "/sbatch", "echo \"$@\" > " + f.dir +
                                       "/args\nfor a; do last=$a; done\ncp \"$last\" " + f.dir +
                                       "/submitted\necho 'sbatch: warning: fake'\necho 4242\n");
  const auto r = f.submit("--nodes 2 --gpus-per-node 4 --time 01:00:00 --partition gpu");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["job_id"], "4242");
  EXPECT_EQ(out["mode"], "allocation");
  EXPECT_EQ(out["records"], f.dir + "/run/records.h5");
  EXPECT_EQ(out["log"], f.dir + "/run/slurm-4242.out");
  const std::string script_path = out["script"];
  EXPECT_EQ(script_path.rfind(f.dir + "/run/submit-", 0), 0u) << script_path;
  // sbatch got --parsable and the script that was kept next to the records.
  EXPECT_EQ(read_file(f.dir + "/args"), "--parsable " + script_path + "\n");
  const std::string script = read_file(f.dir + "/submitted");
  EXPECT_EQ(script, read_file(script_path));
  EXPECT_NE(script.find("#SBATCH --nodes=2\n"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --gres=gpu:4\n"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --partition=gpu\n"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --job-name=scaletune-slurm-test\n"), std::string::npos);
  EXPECT_NE(script.find("config=" + kSweep + "\n"), std::string::npos);
  EXPECT_NE(script.find("scaletune=" + scaletune_bin() + "\n"), std::string::npos);
  // stop_grace_seconds is 5 in the config: the default warning is the 120 s floor.
  EXPECT_NE(script.find("#SBATCH --signal=B:USR2@120\n"), std::string::npos);
  EXPECT_NE(r.err.find("submitted job 4242"), std::string::npos) << r.err;
}

TEST(Submit, DryRunPrintsScriptAndSubmitsNothing) {
  Fake f("slurm_submit_dry");
  write_program(f.bin + "/sbatch", "touch " + f.dir + "/called\nexit 1\n");
  const auto r = f.submit("--mode array --trials-per-job 2 --set seed=9 --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_NE(r.out.find("#SBATCH --array=0-2%1\n"), std::string::npos) << r.out;  // 6 trials / 2
  EXPECT_NE(r.out.find("--set seed=9 --set budget.max_trials=\"$target\""), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/called"));
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/run"));
}

TEST(Submit, MissingSbatchSaysWhereToRun) {
  Fake f("slurm_submit_missing");
  const auto r = f.submit("", /*only_fakes=*/true);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'sbatch' not found on PATH"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--dry-run"), std::string::npos) << r.err;
}

TEST(Submit, RejectedSubmissionShowsSbatchMessage) {
  Fake f("slurm_submit_rejected");
  write_program(f.bin + "/sbatch",
                "echo 'sbatch: error: Batch job submission failed: Invalid account or "
                "account/partition combination specified' >&2\nexit 1\n");
  const auto r = f.submit("--account nobody");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("sbatch rejected the job (exit code 1):"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Invalid account or account/partition combination specified"),
            std::string::npos)
      << r.err;
}

TEST(Submit, UnknownPartitionListsPartitions) {
  Fake f("slurm_submit_partition");
  write_program(f.bin + "/sbatch",
                "echo 'sbatch: error: invalid partition specified: gpux' >&2\n"
                "echo 'sbatch: error: Batch job submission failed: Invalid partition name "
                "specified' >&2\nexit 1\n");
  write_program(f.bin + "/sinfo", "echo debug\necho gpu\necho gpu\n");
  const auto r = f.submit("--partition gpux");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("partition 'gpux' does not exist on this cluster; partitions: debug gpu "
                       "(pass one with --partition"),
            std::string::npos)
      << r.err;
}

TEST(Submit, SbatchWithoutJobIdIsAnError) {
  Fake f("slurm_submit_noid");
  write_program(f.bin + "/sbatch", "echo 'Submitted batch job'\n");
  const auto r = f.submit("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("printed no job id"), std::string::npos) << r.err;
}

TEST(Submit, RefusesExistingRecordsUnlessResume) {
  Fake f("slurm_submit_exists");
  write_program(f.bin + "/sbatch", "echo 77\n");
  std::filesystem::create_directories(f.dir + "/run");
  std::ofstream(f.dir + "/run/records.h5") << "x";
  auto r = f.submit("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("exists: pass --resume to continue that sweep"), std::string::npos) << r.err;
  r = f.submit("--resume");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["job_id"], "77");
}

TEST(Submit, BadRequestsAreUsageErrors) {
  Fake f("slurm_submit_bad");
  auto r = f.submit("--time 4h --nodes 0 --dry-run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--time '4h' is not a Slurm time limit"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--nodes must be at least 1"), std::string::npos) << r.err;

  std::ofstream(f.dir + "/bad.sbatch") << "#SBATCH --nodes={{node}}\n";
  r = f.submit("--template " + f.dir + "/bad.sbatch --dry-run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.sbatch:1: unknown placeholder {{node}}; did you mean {{nodes}}?"),
            std::string::npos)
      << r.err;

  r = run_command(scaletune_bin() + " submit --dry-run --config " + SCALETUNE_SOURCE_DIR +
                  "/configs/synthetic.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not a sweep config"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace scaletune::test
