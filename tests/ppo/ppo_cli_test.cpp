// The real program: `scaletune train` with task ppo writes result.json with the learning curve;
// a bad config is exit code 2 naming the key; two Gloo ranks (FileStore rendezvous) train one
// run whose steps and devices add up.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace scaletune::trainer {
namespace {

using test::run_command;
using test::scaletune_bin;
using test::temp_dir;

std::string train_command(const std::string& config, const std::string& out,
                          const std::string& extra = "") {
  return scaletune_bin() + " train --config " + std::string(SCALETUNE_SOURCE_DIR) + "/configs/" +
         config + " --out " + out + " --set total_timesteps=4096 --set eval.episodes=4 " + extra;
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(test::read_file(path));
}

TEST(PpoCli, CartPoleWritesResultJsonWithCurve) {
  const std::string out = temp_dir("ppo_cli_cartpole");
  const auto r = run_command(train_command("ppo_cartpole.yaml", out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = read_json(out + "/result.json");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["task"], "ppo");
  EXPECT_EQ(j["objective"], "eval_return");
  EXPECT_TRUE(j["metrics"]["eval_return"].is_number());
  EXPECT_TRUE(j["metrics"]["tune_return"].is_number());
  EXPECT_EQ(j["cost"]["tokens"], 4096.0);
  EXPECT_GT(j["cost"]["flops"].get<double>(), j["cost"]["flops_6n"].get<double>());
  EXPECT_EQ(j["curve"]["tokens"].back(), 4096.0);
  EXPECT_EQ(j["curve"]["eval_return"].size(), j["curve"]["step"].size());
  EXPECT_EQ(j["config"]["env"]["id"], "cartpole");
  EXPECT_NE(r.out.find("\"eval_return\""), std::string::npos);  // the one-line summary
}

TEST(PpoCli, PendulumAndMazeConfigsRun) {
  for (const char* config : {"ppo_pendulum.yaml", "ppo_maze.yaml"}) {
    const std::string out = temp_dir(std::string("ppo_cli_") + config);
    const auto r = run_command(
        train_command(config, out, "--set num_steps=256 --set num_minibatches=4 --set num_envs=4"));
    ASSERT_EQ(r.exit_code, 0) << config << ": " << r.err;
    EXPECT_EQ(read_json(out + "/result.json")["status"], "ok") << config;
  }
}

TEST(PpoCli, BadConfigIsExitCodeTwoNamingTheKey) {
  const std::string out = temp_dir("ppo_cli_bad");
  auto r = run_command(train_command("ppo_cartpole.yaml", out, "--set num_minibatches=3"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("multiple of num_minibatches"), std::string::npos) << r.err;
  r = run_command(train_command("ppo_cartpole.yaml", out, "--set gama=0.9"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("gamma"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out + "/result.json"));
}

TEST(PpoCli, DivergedRunIsExitCodeThreeWithReason) {
  const std::string out = temp_dir("ppo_cli_nan");
  const auto r = run_command(
      train_command("ppo_cartpole.yaml", out, "--set learning_rate=1e30 --set anneal_lr=false"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  const auto j = read_json(out + "/result.json");
  EXPECT_EQ(j["status"], "diverged");
  EXPECT_NE(j["reason"].get<std::string>().find("learning_rate"), std::string::npos);
}

TEST(PpoCli, TwoGlooRanksShareOneRun) {
  const std::string out = temp_dir("ppo_cli_two");
  const std::string env = "WORLD_SIZE=2 SCALETUNE_STORE_FILE=" + out + "/store ";
  const std::string cmd = train_command("ppo_cartpole.yaml", out);
  const auto r = run_command("sh -c '" + env + "RANK=0 " + cmd + " & p=$!; " + env + "RANK=1 " +
                             cmd + "; e1=$?; wait $p; e0=$?; exit $((e0 * 16 + e1))'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = read_json(out + "/result.json");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["cost"]["devices"], 2);
  EXPECT_EQ(j["cost"]["tokens"], 4096.0);
  EXPECT_EQ(j["metrics"]["updates"], 4.0);  // 4096 / (2 ranks x 512)
  EXPECT_EQ(j["info"]["backend"], "gloo");
  EXPECT_TRUE(std::filesystem::exists(out + "/train.rank1.log"));
}

}  // namespace
}  // namespace scaletune::trainer
