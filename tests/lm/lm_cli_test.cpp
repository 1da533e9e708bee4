// The real program: `scaletune train` with task lm writes result.json; two ranks over c10d Gloo
// (a FileStore rendezvous) end where one rank with the same global batch ends, with identical
// replicas, and the gradient all-reduce overlapped with backward gives the same bits as the one
// after backward; SIGTERM checkpoints and exits 4, and --resume finishes bit-for-bit.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "trainer/lm/safetensors.h"

extern char** environ;

namespace scaletune::trainer::lm {
namespace {

using test::run_command;
using test::scaletune_bin;
using test::temp_dir;

const std::string kConfig = std::string(SCALETUNE_SOURCE_DIR) + "/configs/lm_tiny.yaml";

std::string train_command(const std::string& out, const std::string& extra = "") {
  return scaletune_bin() + " train --config " + kConfig + " --out " + out +
         " --set checkpoint.safetensors=true " + extra;
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(test::read_file(path));
}

TEST(LmCli, TrainWritesResultJson) {
  const std::string out = temp_dir("lm_cli_train");
  const auto r = run_command(train_command(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = read_json(out + "/result.json");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["task"], "lm");
  EXPECT_EQ(j["objective"], "val_loss");
  EXPECT_TRUE(j["metrics"]["val_loss"].is_number());
  EXPECT_TRUE(j["metrics"]["entropy_floor"].is_number());
  EXPECT_GT(j["cost"]["flops"].get<double>(), j["cost"]["flops_6n"].get<double>() * 0.5);
  EXPECT_EQ(j["config"]["model"]["d_model"], 32);
  EXPECT_NE(r.out.find("\"val_loss\""), std::string::npos);  // the one-line summary
  EXPECT_TRUE(std::filesystem::exists(out + "/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(out + "/train.log"));
}

TEST(LmCli, BadConfigIsExitCodeTwo) {
  const std::string out = temp_dir("lm_cli_bad");
  const auto r = run_command(train_command(out, "--set model.n_head=5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("divisible by model.n_head"), std::string::npos) << r.err;
}

// Runs two ranks (one thread each) meeting at a FileStore in `out`; returns the exit code.
test::CommandResult run_two_ranks(const std::string& out, const std::string& extra) {
  const std::string env = "WORLD_SIZE=2 SCALETUNE_STORE_FILE=" + out + "/store OMP_NUM_THREADS=1 ";
  return run_command("sh -c '" + env + "RANK=0 " + train_command(out, extra) + " & p=$!; " + env +
                     "RANK=1 " + train_command(out, extra) +
                     "; e1=$?; wait $p; e0=$?; exit $((e0 * 16 + e1))'");
}

double max_abs_diff(const std::map<std::string, FloatTensor>& a,
                    const std::map<std::string, FloatTensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, t] : a) {
    EXPECT_EQ(b.at(name).values.size(), t.values.size()) << name;
    for (std::size_t i = 0; i < t.values.size() && i < b.at(name).values.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(t.values[i] - b.at(name).values[i])));
  }
  return worst;
}

// Gradient accumulation (2 micro-batches per rank, 4 on one rank) and 0.01 MB buckets (one per
// parameter), so gradients are all-reduced bucket by bucket during the last backward.
TEST(LmCli, TwoGlooRanksMatchOneRankWithTheSameGlobalBatch) {
  const std::string one = temp_dir("lm_cli_one"), two = temp_dir("lm_cli_two");
  const std::string shorter =
      "--set train.tokens=1.6e4 --set train.batch_size=8 --set train.micro_batch=2 "
      "--set dist.bucket_mb=0.01";
  ASSERT_EQ(run_command(train_command(one, shorter)).exit_code, 0);
  const auto r = run_two_ranks(two, shorter);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = read_json(two + "/result.json");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["cost"]["devices"], 2);
  EXPECT_EQ(j["info"]["backend"], "gloo");
  EXPECT_EQ(j["metrics"]["replica_max_abs_diff"].get<double>(), 0.0);  // identical replicas
  EXPECT_TRUE(std::filesystem::exists(two + "/train.rank1.log"));
  const std::string log = test::read_file(two + "/train.log");
  EXPECT_NE(log.find("overlapped with backward"), std::string::npos) << log;
  const auto a = read_safetensors(one + "/model.safetensors");
  const auto b = read_safetensors(two + "/model.safetensors");
  EXPECT_LT(max_abs_diff(a, b), 2e-5);  // same math, different summation order
  const double loss1 = read_json(one + "/result.json")["metrics"]["val_loss"];
  EXPECT_NEAR(j["metrics"]["val_loss"].get<double>(), loss1, 1e-4);

  // The fallback (every bucket after backward) runs the same collectives: the same bits.
  const std::string off = temp_dir("lm_cli_two_off");
  const auto r_off = run_two_ranks(off, shorter + " --set dist.overlap=false");
  ASSERT_EQ(r_off.exit_code, 0) << r_off.err;
  EXPECT_NE(test::read_file(off + "/train.log").find("after backward"), std::string::npos);
  EXPECT_EQ(max_abs_diff(b, read_safetensors(off + "/model.safetensors")), 0.0);
  EXPECT_EQ(read_json(off + "/result.json")["metrics"]["val_loss"], j["metrics"]["val_loss"]);
  EXPECT_EQ(read_json(off + "/result.json")["metrics"]["replica_max_abs_diff"].get<double>(), 0.0);
}

// Starts the program with argv split on spaces (no shell, so the signal reaches it).
// `extra_env` ("NAME=value" entries) comes on top of this process's environment.
pid_t spawn(const std::string& command, const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> words;
  std::istringstream in(command);
  for (std::string w; in >> w;) words.push_back(w);
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data());
  return pid;
}

// The exit code of `pid`, or -1 (after killing it) if it has not exited by `deadline`.
int wait_exit(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A stop request on one rank travels in the last gradient bucket: both ranks checkpoint at the
// same step and exit 4 (neither waits forever in a collective the other never joins).
TEST(LmCli, SigtermToOneOfTwoRanksStopsBothAtTheSameStep) {
  const std::string out = temp_dir("lm_cli_two_stop");
  const std::string cmd = train_command(out,
                                        "--set train.tokens=2e5 --set train.micro_batch=4 "
                                        "--set dist.bucket_mb=0.05 --set log_every=1") +
                          " -q";
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn(cmd, {"WORLD_SIZE=2", "RANK=" + std::to_string(r),
                               "SCALETUNE_STORE_FILE=" + out + "/store", "OMP_NUM_THREADS=1"}));
  ASSERT_GT(pids[0], 0);
  ASSERT_GT(pids[1], 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (test::read_file(out + "/train.log").find("step 2/") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pids[1], SIGTERM);
  EXPECT_EQ(wait_exit(pids[0], deadline), 4) << test::read_file(out + "/train.log");
  EXPECT_EQ(wait_exit(pids[1], deadline), 4) << test::read_file(out + "/train.rank1.log");
  EXPECT_TRUE(std::filesystem::exists(out + "/checkpoint.pt"));
  const std::string log0 = test::read_file(out + "/train.log");
  const std::string log1 = test::read_file(out + "/train.rank1.log");
  const auto step_of = [](const std::string& log) {
    const auto at = log.find("interrupted at step ");
    return at == std::string::npos
               ? std::string("none")
               : log.substr(at, log.find(';', at) - at);  // "... at step 4 of 391"
  };
  EXPECT_NE(step_of(log0), "none") << log0;
  EXPECT_EQ(step_of(log0), step_of(log1));
}

TEST(LmCli, SigtermCheckpointsExitsFourAndResumesBitForBit) {
  const std::string straight = temp_dir("lm_cli_straight"), resumed = temp_dir("lm_cli_resumed");
  const std::string longer = "--set train.tokens=1e5 --set log_every=1";
  ASSERT_EQ(run_command(train_command(straight, longer)).exit_code, 0);

  const pid_t pid = spawn(train_command(resumed, longer) + " -q");
  ASSERT_GT(pid, 0);
  // Wait until training has started (the first progress line), then ask it to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (test::read_file(resumed + "/train.log").find("step 2/") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 4) << test::read_file(resumed + "/train.log");
  EXPECT_TRUE(std::filesystem::exists(resumed + "/checkpoint.pt"));
  EXPECT_FALSE(std::filesystem::exists(resumed + "/result.json"));

  const auto r = run_command(train_command(resumed, longer + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = read_safetensors(straight + "/model.safetensors");
  const auto b = read_safetensors(resumed + "/model.safetensors");
  for (const auto& [name, t] : a) EXPECT_EQ(b.at(name).values, t.values) << name;
  EXPECT_EQ(read_json(resumed + "/result.json")["metrics"]["val_loss"],
            read_json(straight + "/result.json")["metrics"]["val_loss"]);
}

}  // namespace
}  // namespace scaletune::trainer::lm
