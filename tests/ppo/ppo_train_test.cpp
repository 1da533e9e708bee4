// Short real runs of the PPO trainer: CartPole learns, the same seed gives the same run, a
// learning rate that blows up is reported as diverged, Gaussian and shared-trunk policies and
// mazes run, and two data-parallel ranks over Gloo stay in lockstep.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include "trainer/dist/comm.h"
#include "trainer/ppo/ppo.h"

namespace scaletune::trainer {
namespace {

PpoConfig cartpole(double steps) {
  PpoConfig c;
  c.total_timesteps = steps;
  c.eval.episodes = 8;
  c.eval.points = 4;
  c.log_every = 1000;
  return c;
}

TEST(PpoTrain, CartPoleReturnImproves) {
  PpoConfig c = cartpole(40960);
  c.learning_rate = 1e-3;  // faster than CleanRL's 2.5e-4 so a short run shows learning
  const TrainResult r = train_ppo(c);
  ASSERT_TRUE(r.ok()) << r.reason;
  ASSERT_GE(r.curve.size(), 3u);
  const double before = r.curve.front().eval_return;  // the initial, near-uniform policy
  const double after = r.metrics.at("eval_return");
  EXPECT_LT(before, 60.0);
  EXPECT_GT(after, 2.0 * before) << "before " << before << " after " << after;
  EXPECT_GT(r.metrics.at("train_return"), 2.0 * before);
  EXPECT_TRUE(std::isfinite(r.metrics.at("tune_return")));
  EXPECT_EQ(r.objective, "eval_return");
  EXPECT_DOUBLE_EQ(r.cost.tokens, 40960.0);  // 80 updates of 4 x 128
  // FLOPs: (2 + 6 K) N per step plus the bootstrap values (scaling-methods.md §0.5).
  const double n = r.metrics.at("params_policy") + r.metrics.at("params_value");
  EXPECT_NEAR(r.cost.flops, 26.0 * n * 40960 + 2.0 * n * 4 * 80, 1.0);
  EXPECT_DOUBLE_EQ(r.cost.flops_6n, 6.0 * n * 40960);
  EXPECT_GT(r.cost.wall_seconds, 0.0);
  // The curve counts steps in `tokens` and carries both returns.
  const auto j = r.to_json();
  EXPECT_EQ(j["curve"]["tokens"].back(), 40960.0);
  EXPECT_TRUE(j["curve"]["eval_return"].back().is_number());
  EXPECT_TRUE(j["curve"]["train_return"].back().is_number());
}

TEST(PpoTrain, SameSeedSameRunOtherSeedOtherRun) {
  PpoConfig c = cartpole(4096);
  const TrainResult a = train_ppo(c), b = train_ppo(c);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.metrics.at("param_norm"), b.metrics.at("param_norm"));
  EXPECT_EQ(a.metrics.at("eval_return"), b.metrics.at("eval_return"));
  c.seed = 2;
  EXPECT_NE(train_ppo(c).metrics.at("param_norm"), a.metrics.at("param_norm"));
}

TEST(PpoTrain, ExplodingLearningRateIsReportedAsDiverged) {
  PpoConfig c = cartpole(8192);
  c.learning_rate = 1e30;
  c.anneal_lr = false;
  const TrainResult r = train_ppo(c);
  EXPECT_EQ(r.status, RunStatus::kDiverged) << to_string(r.status) << ": " << r.reason;
  EXPECT_NE(r.reason.find("learning_rate"), std::string::npos) << r.reason;
  EXPECT_FALSE(std::isfinite(r.objective_value()));
  ASSERT_FALSE(r.curve.empty());  // what was recorded before is kept
}

TEST(PpoTrain, CudaRunsWhereThereIsOneAndFailsCleanlyWhereNot) {
  PpoConfig c = cartpole(1024);
  c.device = "cuda";
  const TrainResult r = train_ppo(c);
  if (r.ok()) {  // a CUDA device: the networks ran on it
    EXPECT_EQ(r.info.at("device").rfind("cuda", 0), 0u) << r.info.at("device");
    EXPECT_TRUE(std::isfinite(r.metrics.at("eval_return")));
    return;
  }
  EXPECT_EQ(r.status, RunStatus::kFailed) << r.reason;
  EXPECT_NE(r.reason.find("cuda"), std::string::npos) << r.reason;
}

TEST(PpoTrain, PendulumGaussianWithNormalisationRuns) {
  PpoConfig c;
  c.env.id = "pendulum";
  c.total_timesteps = 4096;
  c.num_envs = 1;
  c.num_steps = 2048;
  c.num_minibatches = 32;
  c.update_epochs = 2;
  c.ent_coef = 0;
  c.learning_rate = 3e-4;
  c.norm_obs = c.norm_reward = true;
  c.eval.episodes = 2;
  const TrainResult r = train_ppo(c);
  ASSERT_TRUE(r.ok()) << r.reason;
  const double ret = r.metrics.at("eval_return");
  EXPECT_LT(ret, 0.0);  // Pendulum rewards are costs
  EXPECT_GT(ret, -200.0 * (M_PI * M_PI + 0.1 * 64 + 0.004));
  EXPECT_EQ(r.metrics.at("params_policy"), (3 * 64 + 64) + (64 * 64 + 64) + (64 + 1) + 1);
}

TEST(PpoTrain, SharedTrunkMazeRunsOnBothLevelSets) {
  PpoConfig c;
  c.env.id = "maze";
  c.env.maze_cells = 3;
  c.env.train_num_levels = 5;
  c.model.shared = true;
  c.model.activation = "relu";
  c.total_timesteps = 8192;
  c.num_envs = 8;
  c.target_kl = 0.01;
  c.eval.episodes = 8;
  const TrainResult r = train_ppo(c);
  ASSERT_TRUE(r.ok()) << r.reason;
  for (const char* key : {"eval_return", "tune_return"}) {
    EXPECT_GE(r.metrics.at(key), 0.0) << key;
    EXPECT_LE(r.metrics.at(key), 1.0) << key;
  }
}

TEST(PpoTrain, TwoRanksOverGlooStayInLockstep) {
  const auto store =
      std::filesystem::temp_directory_path() / ("ppo_dp_test_" + std::to_string(::getpid()));
  std::filesystem::remove(store);
  PpoConfig c = cartpole(8192);
  TrainResult results[2];
  std::thread ranks[2];
  for (int rank = 0; rank < 2; ++rank) {
    ranks[rank] = std::thread([&, rank] {
      dist::DistEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.store_file = store.string();
      auto comm = dist::connect(env, false, std::chrono::seconds(60));
      results[rank] = train_ppo(c, comm.get());
    });
  }
  for (auto& t : ranks) t.join();
  std::filesystem::remove(store);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.reason;
    EXPECT_DOUBLE_EQ(r.cost.tokens, 8192.0);  // total over both ranks
    EXPECT_EQ(r.cost.devices, 2);
    EXPECT_EQ(r.metrics.at("updates"), 8.0);  // 8192 / (2 ranks x 4 envs x 128 steps)
  }
  // Averaged gradients, identical weights; the held-out return is summed over both ranks.
  EXPECT_DOUBLE_EQ(results[0].metrics.at("param_norm"), results[1].metrics.at("param_norm"));
  EXPECT_DOUBLE_EQ(results[0].metrics.at("eval_return"), results[1].metrics.at("eval_return"));
  EXPECT_DOUBLE_EQ(results[0].metrics.at("train_episodes"),
                   results[1].metrics.at("train_episodes"));
}

}  // namespace
}  // namespace scaletune::trainer
