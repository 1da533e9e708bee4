// `scaletune submit` on a real single-node Slurm cluster (scripts/slurm-local.sh: slurmctld,
// slurmd, munge, two fake GPUs as GRES). Skipped when the cluster cannot start (not root, no
// packages). Jobs are polled with `scontrol show job -o` (no slurmdbd, so no sacct).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "orchestrator/store/records.h"
#include "tests/support/process.h"

namespace scaletune::test {
namespace {

const std::string kSource = SCALETUNE_SOURCE_DIR;
const std::string kScript = kSource + "/scripts/slurm-local.sh";

std::string field(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 2;
  return line.substr(start, line.find(' ', start) - start);
}

struct JobEnd {
  std::string state;
  int restarts = 0;
};

// Polls the job until it ends (or `seconds` pass: then cancels it and reports WAIT_TIMEOUT).
JobEnd wait_job(const std::string& id, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  JobEnd end;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto r = run_command("timeout 10 scontrol show job -o " + id);
    end.state = field(r.out, "JobState");
    end.restarts = std::atoi(field(r.out, "Restarts").c_str());
    for (const char* final : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                              "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"})
      if (end.state == final) return end;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  run_command("scancel " + id);
  end.state = "WAIT_TIMEOUT(last " + end.state + ")";
  return end;
}

class SlurmCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_ = "";
    if (geteuid() != 0) {
      skip_ = "the local Slurm cluster needs root";
      return;
    }
    const auto r = run_command("timeout 600 " + kScript + " start");
    if (r.exit_code != 0) {
      skip_ = "scripts/slurm-local.sh start failed: " +
              r.err.substr(r.err.size() > 600 ? r.err.size() - 600 : 0);
      return;
    }
    setenv("SLURM_CONF", "/var/tmp/scaletune-slurm/slurm.conf", 1);
    started_ = true;
  }
  static void TearDownTestSuite() {
    if (started_) run_command(kScript + " stop");
    started_ = false;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }
  static bool sweep_built() {
    return run_command(scaletune_bin() + " sweep --help").exit_code == 0;
  }
  // Submits from `dir` and returns the JSON summary (fails the test when submit fails).
  static nlohmann::json submit(const std::string& dir, const std::string& args) {
    const auto r = run_command("cd " + dir + " && " + scaletune_bin() + " -q submit " + args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return {};
    return nlohmann::json::parse(r.out);
  }
  static std::string skip_;
  static bool started_;
};
std::string SlurmCluster::skip_;
bool SlurmCluster::started_ = false;

// The job's GPUs come from the fake GRES; also exercises a user template on a real cluster.
TEST_F(SlurmCluster, GpuJobGetsCudaVisibleDevicesFromGres) {
  const std::string dir = temp_dir("slurm_cluster_gres");
  std::ofstream(dir + "/env.sbatch")
      << "#!/bin/bash\n#SBATCH --job-name={{job_name}}\n#SBATCH --output={{log}}\n"
         "{{?gpus_per_node}}#SBATCH --gres=gpu:{{gpus_per_node}}\n"
         "echo \"CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES\" > {{run_dir}}/env.txt\n";
  const auto out =
      submit(dir, "--config " + kSource + "/tests/slurm/sweep.yaml --records " + dir +
                      "/run/records.h5 --gpus-per-node 2 --template " + dir + "/env.sbatch");
  ASSERT_TRUE(out.contains("job_id"));
  const auto end = wait_job(out["job_id"], 60);
  ASSERT_EQ(end.state, "COMPLETED") << read_file(out["log"]);
  EXPECT_EQ(read_file(dir + "/run/env.txt"), "CUDA_VISIBLE_DEVICES=0,1\n");
}

// A synthetic sweep over 2 agents (2 tasks on the node) runs to the end; every trial recorded.
TEST_F(SlurmCluster, SweepAcrossTwoTasksCompletes) {
  if (!sweep_built()) GTEST_SKIP() << "`scaletune sweep` is not built yet";
  const std::string dir = temp_dir("slurm_cluster_sweep");
  const auto out = submit(dir, "--config " + kSource + "/tests/slurm/sweep.yaml --records " + dir +
                                   "/run/records.h5 --tasks-per-node 2 --cpus-per-task 1");
  ASSERT_TRUE(out.contains("job_id"));
  const auto end = wait_job(out["job_id"], 90);
  const std::string log = read_file(out["log"]);
  ASSERT_EQ(end.state, "COMPLETED") << log;
  EXPECT_NE(log.find("agent rank 1"), std::string::npos) << log;  // a second rank took part
  const auto trials = store::load(dir + "/run/records.h5").latest_trials();
  ASSERT_EQ(trials.size(), 6u);
  for (std::size_t i = 0; i < trials.size(); ++i) {
    EXPECT_EQ(trials[i].trial_id, static_cast<std::int64_t>(i));
    EXPECT_EQ(trials[i].status, store::TrialStatus::kOk) << trials[i].reason;
  }
  const auto status = run_command(scaletune_bin() + " status " + dir + "/run/records.h5");
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("6 done (6 ok"), std::string::npos) << status.out;
}

// The warning signal mid-sweep (what `--signal=B:USR2@120` sends before the time limit): the
// sweep stops, the job requeues itself, the next run resumes and finishes; nothing lost.
TEST_F(SlurmCluster, WarningSignalRequeuesAndResumesWithNothingLost) {
  if (!sweep_built()) GTEST_SKIP() << "`scaletune sweep` is not built yet";
  const std::string dir = temp_dir("slurm_cluster_requeue");
  const std::string records = dir + "/run/records.h5";
  const auto out = submit(dir, "--config " + kSource + "/tests/slurm/sweep.yaml --records " +
                                   records + " --tasks-per-node 2 --cpus-per-task 1 " +
                                   "--set train.seconds=1.0 budget.max_trials=8");
  ASSERT_TRUE(out.contains("job_id"));
  const std::string id = out["job_id"];
  // Wait until some trials are recorded, then signal the batch shell as Slurm would.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t done = 0;
  while (done < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    try {
      done = 0;
      for (const auto& t : store::load(records, {false}).latest_trials())
        done += t.status == store::TrialStatus::kOk;
    } catch (const store::StoreError&) {  // not created yet
    }
  }
  ASSERT_GE(done, 2u) << read_file(out["log"]);
  ASSERT_LT(done, 8u) << "the sweep ended before the signal; make its trials longer";
  ASSERT_EQ(run_command("scancel --batch --signal=USR2 " + id).exit_code, 0);
  const auto end = wait_job(id, 90);
  const std::string log = read_file(out["log"]);
  ASSERT_EQ(end.state, "COMPLETED") << log;
  EXPECT_EQ(end.restarts, 1) << log;
  EXPECT_NE(log.find("requeueing job " + id), std::string::npos) << log;
  EXPECT_NE(log.find("(resumed)"), std::string::npos) << log;

  const auto recorded = store::load(records);
  const auto trials = recorded.latest_trials();
  ASSERT_EQ(trials.size(), 8u) << log;
  std::set<std::int64_t> ids;
  for (const auto& t : trials) {
    ids.insert(t.trial_id);
    EXPECT_EQ(t.status, store::TrialStatus::kOk) << t.trial_id << ": " << t.reason;
  }
  EXPECT_EQ(ids, (std::set<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  bool interrupted = false;  // the stop caught trials running; they were re-run, not lost
  for (const auto& row : recorded.trials)
    interrupted = interrupted || row.status == store::TrialStatus::kInterrupted;
  EXPECT_TRUE(interrupted) << log;
}

// Agents take their slots from the GRES's CUDA_VISIBLE_DEVICES: 2 agents on the node split the
// 2 GPUs, and each trial runs with exactly one of them (the `command` trial reports it).
TEST_F(SlurmCluster, AgentsAssignGresGpusToTrials) {
  if (!sweep_built()) GTEST_SKIP() << "`scaletune sweep` is not built yet";
  const std::string dir = temp_dir("slurm_cluster_gpu_sweep");
  std::ofstream(dir + "/gpu.yaml")
      << "name: slurm-gpu-test\ntrainer: command\ncommand:\n  argv: [sh, " << kSource
      << "/tests/slurm/gpu_trial.sh]\ntrain:\n  lr: 1.0e-3\nobjective: val_loss\ncost: flops\n"
         "search:\n  lr: {space: log, center: 1.0e-3, scale: 1.0}\ndirection: minimize\n"
         "seed: 5\nbudget:\n  max_trials: 6\nresources:\n  devices: gpu\n";
  const auto out = submit(dir, "--config " + dir + "/gpu.yaml --records " + dir +
                                   "/run/records.h5 --tasks-per-node 2 --gpus-per-node 2 "
                                   "--cpus-per-task 1");
  ASSERT_TRUE(out.contains("job_id"));
  const auto end = wait_job(out["job_id"], 90);
  const std::string log = read_file(out["log"]);
  ASSERT_EQ(end.state, "COMPLETED") << log;
  const auto trials = store::load(dir + "/run/records.h5").latest_trials();
  ASSERT_EQ(trials.size(), 6u);
  std::set<double> gpus;
  for (const auto& t : trials) {
    ASSERT_EQ(t.status, store::TrialStatus::kOk) << t.reason;
    ASSERT_TRUE(t.metrics.count("gpu")) << "trial " << t.trial_id << " saw no CUDA_VISIBLE_DEVICES";
    gpus.insert(t.metrics.at("gpu"));
  }
  EXPECT_EQ(gpus, (std::set<double>{0, 1})) << log;  // both GRES GPUs, one per trial
}

// Array mode: 3 elements of 2 trials each, one after another, each resuming the same records.
TEST_F(SlurmCluster, ArrayModeElementsEachAddTheirTrials) {
  if (!sweep_built()) GTEST_SKIP() << "`scaletune sweep` is not built yet";
  const std::string dir = temp_dir("slurm_cluster_array");
  const auto out = submit(dir, "--config " + kSource + "/tests/slurm/sweep.yaml --records " + dir +
                                   "/run/records.h5 --mode array --trials-per-job 2 "
                                   "--tasks-per-node 2 --cpus-per-task 1");
  ASSERT_TRUE(out.contains("job_id"));
  const std::string id = out["job_id"];
  for (int element = 0; element < 3; ++element) {
    const auto end = wait_job(id + "_" + std::to_string(element), 90);
    EXPECT_EQ(end.state, "COMPLETED") << element;
  }
  std::string logs;
  for (int element = 0; element < 3; ++element)
    logs += read_file(dir + "/run/slurm-" + id + "_" + std::to_string(element) + ".out");
  for (const char* line :
       {"element 0 done (2 trials)", "element 1 done (4 trials)", "element 2 done (6 trials)"})
    EXPECT_NE(logs.find(line), std::string::npos) << line << "\n" << logs;
  const auto trials = store::load(dir + "/run/records.h5").latest_trials();
  ASSERT_EQ(trials.size(), 6u) << logs;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    EXPECT_EQ(trials[i].trial_id, static_cast<std::int64_t>(i));
    EXPECT_EQ(trials[i].status, store::TrialStatus::kOk);
  }
}

}  // namespace
}  // namespace scaletune::test
