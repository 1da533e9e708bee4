// `scaletune sweep` and `scaletune status` as a user runs them: embedded and under mpirun, with
// faulty trials, a command trainer, SIGKILL of the orchestrator then --resume, and bad configs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "orchestrator/store/records.h"
#include "tests/support/process.h"

namespace scaletune {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::scaletune_bin;

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// A fast synthetic sweep: lr and tokens searched; extra lines for `train:` and `resources:`.
std::string synthetic_config(const std::string& dir, int trials, const std::string& train = "",
                             const std::string& resources = "  slots: 2\n") {
  return "name: test\n"
         "trainer: synthetic\n"
         "train:\n"
         "  noise: 0.01\n"
         "  n_params: 1.0e7\n" +
         train +
         "search:\n"
         "  lr: {space: log, center: 1.0e-3, scale: 1}\n"
         "  tokens: {space: log, center: 2.0e8, min: 1.0e7, max: 1.0e10, scale: 0.5}\n"
         "seed: 3\n"
         "budget:\n"
         "  max_trials: " +
         std::to_string(trials) +
         "\n"
         "resources:\n"
         "  devices: cpu\n" +
         resources + "out_dir: " + dir + "/out\n";
}

// Final rows per trial id: each trial must have exactly one.
std::map<std::int64_t, int> final_rows(const store::Records& r) {
  std::map<std::int64_t, int> n;
  for (const auto& t : r.trials)
    if (t.status == store::TrialStatus::kOk || t.status == store::TrialStatus::kFailed ||
        t.status == store::TrialStatus::kInfraFailed)
      n[t.trial_id] += 1;
  return n;
}

TEST(SweepCli, MpiSweepWithThreeRanksRecordsEveryTrial) {
  const std::string dir = test::temp_dir("sweep_mpi");
  // 1 orchestrator (with an agent) + 2 agent ranks, 1 slot each.
  const std::string config = write(dir, "sweep.yaml", synthetic_config(dir, 9, "", "  slots: 1\n"));
  const auto r = run_command(
      "timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to "
      "none -np 3 " +
      scaletune_bin() + " sweep --config " + config);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = store::load(dir + "/out/records.h5");
  const auto latest = records.latest_trials();
  ASSERT_EQ(latest.size(), 9u);
  std::map<std::string, int> hosts_per_log;  // trials ran on 3 different agents
  for (const auto& t : latest) {
    // ok, or a diverged lr (a result the search may find); never a launch or agent failure
    EXPECT_TRUE(t.status == store::TrialStatus::kOk || t.failure_kind == "diverged") << t.reason;
    if (t.status == store::TrialStatus::kOk) {
      EXPECT_TRUE(std::isfinite(t.objective));
    }
    EXPECT_GT(t.cost, 0);
    EXPECT_TRUE(fs::exists(t.log_path)) << t.log_path;
    ASSERT_EQ(t.slots.size(), 1u);  // schema 2: the slot and the trial directory of each trial
    // 3 agents on one host: the slot names say which agent (rank) it was.
    EXPECT_EQ(t.slots[0].rfind(t.host + "/rank", 0), 0u) << t.slots[0];
    EXPECT_EQ(t.slots[0].substr(t.slots[0].size() - 6), "/cpu:0") << t.slots[0];
    EXPECT_EQ(fs::path(t.log_path).parent_path(), fs::path(t.trial_dir));
  }
  for (const auto& [id, n] : final_rows(records)) EXPECT_EQ(n, 1) << "trial " << id;
  EXPECT_TRUE(records.text("search_state").has_value());
  EXPECT_NE(r.err.find("agent rank 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("agent rank 3"), std::string::npos) << r.err;  // rank 0's own agent

  const auto status = run_command(scaletune_bin() + " status " + dir + "/out/records.h5");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("trials: 9 done (9 ok"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("9/9 trials"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("pareto front"), std::string::npos) << status.out;
}

// Trials of 1 to 3 devices (by their searched token count) on 3 slots, under a FLOP budget: big
// trials wait for enough slots while smaller ones backfill, and no trial starts that would take
// the recorded plus running FLOPs (the synthetic trainer's 6 N D, known ahead) past the budget.
TEST(SweepCli, MixedSizeTrialsUnderAFlopBudget) {
  const std::string dir = test::temp_dir("sweep_mixed");
  const double max_flops = 1.5e17;  // about 12 trials of 6 * 1e7 * 2e8
  std::string text =
      synthetic_config(dir, 40, "  seconds: 0.2\n",
                       "  slots: 3\n  devices_rule: {key: tokens, per_device: 2.0e8, max: 3}\n");
  text.replace(text.find("  max_trials: 40\n"), 17,
               "  max_trials: 40\n  max_flops: " + std::to_string(max_flops) + "\n");
  const std::string config = write(dir, "sweep.yaml", text);
  const auto r = run_command("timeout 120 " + scaletune_bin() + " sweep --config " + config);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("budget spent (max_flops"), std::string::npos) << r.err;
  const auto latest = store::load(dir + "/out/records.h5").latest_trials();
  ASSERT_GE(latest.size(), 3u);
  double flops = 0;
  std::set<int> sizes;
  for (const auto& t : latest) {
    // The search may step into the trainer's divergence region (lr scale 1 is coarse): a
    // hyper-parameter failure is a result like any other; anything else is not.
    EXPECT_TRUE(t.status == store::TrialStatus::kOk || t.failure_kind == "diverged") << t.reason;
    flops += t.flops;
    const int expected = std::clamp(static_cast<int>(std::ceil(t.params.at("tokens") / 2e8)), 1, 3);
    EXPECT_EQ(t.devices, expected) << "trial " << t.trial_id;
    ASSERT_EQ(t.slots.size(), static_cast<std::size_t>(t.devices));
    EXPECT_EQ(std::set<std::string>(t.slots.begin(), t.slots.end()).size(), t.slots.size());
    EXPECT_TRUE(fs::exists(fs::path(t.trial_dir) / "rank0.log")) << t.trial_dir;
    sizes.insert(t.devices);
  }
  // Within the budget. (How close it gets is not fixed: a refused suggestion ends the sweep
  // when no trial is left running, docs/sweep.md "Budget".)
  EXPECT_LE(flops, max_flops * (1 + 1e-9)) << r.err;
  EXPECT_GE(sizes.size(), 2u) << "the seeded suggestions gave one trial size only";
}

TEST(SweepCli, SegfaultHangAndNanTrialsAreRecordedWithTheirKind) {
  const std::string dir = test::temp_dir("sweep_faults");
  // log10(lr) ~ N(-3, 0.3) in the random phase: four bands of about a quarter each.
  const std::string faults =
      "  faults:\n"
      "    - {kind: segfault, param: lr, below: 6.3e-4}\n"
      "    - {kind: hang, param: lr, above: 6.3e-4, below: 1.0e-3}\n"
      "    - {kind: nan, param: lr, above: 1.0e-3, below: 1.58e-3}\n";
  const std::string text = synthetic_config(dir, 12, faults, "  slots: 2\n  timeout_seconds: 1\n");
  const std::string config = write(dir, "sweep.yaml", text);
  const auto r = run_command("timeout 120 " + scaletune_bin() + " sweep --config " + config);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto latest = store::load(dir + "/out/records.h5").latest_trials();
  ASSERT_EQ(latest.size(), 12u);
  std::map<std::string, int> kinds;
  for (const auto& t : latest) {
    const double lr = t.params.at("lr");
    const std::string expected = lr < 6.3e-4    ? "crash"
                                 : lr < 1.0e-3  ? "timeout"
                                 : lr < 1.58e-3 ? "nan"
                                                : "";
    EXPECT_EQ(t.failure_kind, expected) << "lr " << lr << ": " << t.reason;
    EXPECT_EQ(t.status, expected.empty() ? store::TrialStatus::kOk : store::TrialStatus::kFailed);
    kinds[t.failure_kind] += 1;
  }
  // The seed makes the draws fixed; each kind happened.
  EXPECT_GT(kinds["crash"], 0);
  EXPECT_GT(kinds["timeout"], 0);
  EXPECT_GT(kinds["nan"], 0);
  EXPECT_GT(kinds[""], 0);
}

TEST(SweepCli, KilledOrchestratorResumesWithEveryTrialExactlyOnce) {
  const std::string dir = test::temp_dir("sweep_resume");
  const std::string text = synthetic_config(dir, 10, "  seconds: 0.3\n");
  const std::string config = write(dir, "sweep.yaml", text);
  const std::string records_path = dir + "/out/records.h5";

  const pid_t pid = fork();
  if (pid == 0) {
    const std::string bin = scaletune_bin();
    freopen((dir + "/first.log").c_str(), "w", stderr);
    execl(bin.c_str(), bin.c_str(), "sweep", "--config", config.c_str(), nullptr);
    _exit(127);
  }
  // Kill it once a few trials are recorded (trials are running then: 2 slots, 0.3 s each).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t done = 0;
  while (std::chrono::steady_clock::now() < deadline && done < 3) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    try {
      done = final_rows(store::load(records_path, {false})).size();
    } catch (const store::StoreError&) {
    }
  }
  ASSERT_GE(done, 3u);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto before = store::load(records_path);
  ASSERT_LT(final_rows(before).size(), 10u) << "the sweep ended before the kill";

  // Without --resume the file is refused; with it the sweep completes.
  const auto refused = run_command(scaletune_bin() + " sweep --config " + config);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--resume"), std::string::npos) << refused.err;
  const auto r =
      run_command("timeout 120 " + scaletune_bin() + " sweep --config " + config + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto after = store::load(records_path);
  const auto latest = after.latest_trials();
  ASSERT_EQ(latest.size(), 10u);
  std::int64_t expected = 0;
  for (const auto& t : latest) {
    EXPECT_EQ(t.trial_id, expected++);
    // Recorded results (a diverged lr is one), never an infrastructure failure from the kill.
    EXPECT_TRUE(t.status == store::TrialStatus::kOk || t.failure_kind == "diverged") << t.reason;
  }
  for (const auto& [id, n] : final_rows(after)) EXPECT_EQ(n, 1) << "trial " << id;
  // Everything recorded before the kill is still there, unchanged.
  for (const auto& t : before.latest_trials())
    if (t.status == store::TrialStatus::kOk) {
      EXPECT_EQ(latest[static_cast<std::size_t>(t.trial_id)].objective, t.objective);
    }
}

TEST(SweepCli, StopSignalEndsWithExitFourAndResumeFinishes) {
  const std::string dir = test::temp_dir("sweep_stop");
  const std::string text =
      synthetic_config(dir, 6, "  seconds: 0.5\n", "  slots: 2\n  on_stop: kill\n");
  const std::string config = write(dir, "sweep.yaml", text);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string bin = scaletune_bin();
    freopen((dir + "/first.log").c_str(), "w", stderr);
    execl(bin.c_str(), bin.c_str(), "sweep", "--config", config.c_str(), nullptr);
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  kill(pid, SIGUSR2);  // Slurm's warning signal
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4) << test::read_file(dir + "/first.log");
  const auto r =
      run_command("timeout 120 " + scaletune_bin() + " sweep --config " + config + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto after = store::load(dir + "/out/records.h5");
  EXPECT_EQ(after.latest_trials().size(), 6u);
  for (const auto& [id, n] : final_rows(after)) EXPECT_EQ(n, 1) << "trial " << id;
}

TEST(SweepCli, CommandTrainerRunsAnExternalProgram) {
  const std::string dir = test::temp_dir("sweep_command");
  write(dir, "train.py",
        "import json, os, sys\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "x = float(args['--x'])\n"
        "assert float(os.environ['SCALETUNE_PARAM_X']) == x\n"
        "json.dump({'objective': (x - 0.3) ** 2, 'cost': 1 + x}, open('result.json', 'w'))\n");
  const std::string config =
      write(dir, "sweep.yaml",
            "name: cmd\n"
            "trainer: command\n"
            "command:\n"
            "  argv: [python3, " +
                dir +
                "/train.py]\n"
                "search:\n"
                "  x: {space: linear, center: 0.5, min: 0, max: 1, scale: 1}\n"
                "budget: {max_trials: 5}\n"
                "resources: {devices: cpu, slots: 2}\n"
                "out_dir: " +
                dir + "/out\n");
  const auto r = run_command("timeout 120 " + scaletune_bin() + " sweep --config " + config);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto latest = store::load(dir + "/out/records.h5").latest_trials();
  ASSERT_EQ(latest.size(), 5u);
  for (const auto& t : latest) {
    ASSERT_EQ(t.status, store::TrialStatus::kOk) << t.reason;
    const double x = t.params.at("x");
    EXPECT_NEAR(t.objective, (x - 0.3) * (x - 0.3), 1e-12);
    EXPECT_NEAR(t.cost, 1 + x, 1e-12);
  }
}

TEST(SweepCli, BadConfigsAreRefusedBeforeAnythingStarts) {
  const std::string dir = test::temp_dir("sweep_bad");
  struct Case {
    std::string name, edit_from, edit_to, message;
  };
  const std::string good = synthetic_config(dir, 4);
  const std::vector<Case> cases = {
      {"unknown trainer", "trainer: synthetic", "trainer: synthtic", "did you mean 'synthetic'"},
      {"empty search",
       "  lr: {space: log, center: 1.0e-3, scale: 1}\n  tokens: {space: log, "
       "center: 2.0e8, min: 1.0e7, max: 1.0e10, scale: 0.5}\n",
       "", "search"},
      {"searched key not in the trainer", "  lr: {", "  learning_rate: {",
       "not a numeric field of the synthetic config"},
      {"impossible resources", "  slots: 2\n",
       "  slots: 2\n  devices_per_trial: 3\n  "
       "span_nodes: false\n",
       "at most 2 device(s) per trial"},
      {"bad train section", "  noise: 0.01\n", "  noise: -1\n", "train.noise"},
      {"no budget", "  max_trials: 4\n", "  max_trials: 0\n", "set at least one limit"},
      {"SIGUSR1 as warning signal", "trainer: synthetic",
       "trainer: synthetic\nwarning_signal: SIGUSR1", "warning_signal"},
  };
  for (const auto& c : cases) {
    std::string text = good;
    const auto at = text.find(c.edit_from);
    ASSERT_NE(at, std::string::npos) << c.name;
    text.replace(at, c.edit_from.size(), c.edit_to);
    const std::string config = write(dir, "bad.yaml", text);
    const auto r = run_command(scaletune_bin() + " sweep --config " + config);
    EXPECT_EQ(r.exit_code, 2) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
    EXPECT_FALSE(fs::exists(dir + "/out")) << c.name << ": something started";
    const auto v = run_command(scaletune_bin() + " validate " + config);
    // validate checks what needs no allocation; the device count is checked at start.
    if (c.name != "impossible resources") {
      EXPECT_EQ(v.exit_code, 2) << c.name << ": " << v.err;
    }
  }
  // The good one validates.
  const auto v = run_command(scaletune_bin() + " validate " + write(dir, "good.yaml", good));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("trainer: synthetic"), std::string::npos) << v.out;
}

TEST(SweepCli, TwoDeviceLmTrialRendezvousWithGloo) {
  if (!fs::exists(std::string(SCALETUNE_BINARY_DIR) + "/libscaletune_torch.so"))
    GTEST_SKIP() << "the LibTorch plugin is not built";
  const std::string dir = test::temp_dir("sweep_lm2");
  const std::string config =
      write(dir, "sweep.yaml",
            "name: lm2\n"
            "trainer: lm\n"
            "train:\n"
            "  threads: 1\n"
            "  model: {n_layer: 1, d_model: 32, n_head: 4, context: 32}\n"
            "  data: {source: synthetic, synthetic: {vocab: 64, branching: 4, tokens: 50000}}\n"
            "  train: {batch_size: 8, tokens: 4096}\n"
            "  eval: {every: 0, tokens: 1024}\n"
            "search:\n"
            "  optim.lr: {space: log, center: 3.0e-3, min: 1.0e-4, max: 1.0e-1}\n"
            "budget: {max_trials: 1}\n"
            "resources: {devices: cpu, slots: 2, devices_per_trial: 2, timeout_seconds: 300}\n"
            "out_dir: " +
                dir + "/out\n");
  const auto r = run_command("timeout 300 " + scaletune_bin() + " sweep --config " + config);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto latest = store::load(dir + "/out/records.h5").latest_trials();
  ASSERT_EQ(latest.size(), 1u);
  const auto& t = latest[0];
  ASSERT_EQ(t.status, store::TrialStatus::kOk) << t.reason << "\n" << test::read_file(t.log_path);
  EXPECT_EQ(t.devices, 2);
  EXPECT_TRUE(std::isfinite(t.objective));
  const fs::path trial_dir = fs::path(t.log_path).parent_path();
  EXPECT_TRUE(fs::exists(trial_dir / "rank1.log"));
  const auto result = nlohmann::json::parse(test::read_file((trial_dir / "result.json").string()));
  EXPECT_EQ(result["cost"]["devices"], 2) << result.dump();
}

}  // namespace
}  // namespace scaletune
