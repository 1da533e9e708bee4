// Short real runs of the PPO trainer: CartPole learns, the same seed gives the same run, a
// learning rate that blows up is reported as diverged, Gaussian and shared-trunk policies and
// mazes run, and two data-parallel ranks over Gloo stay in lockstep, normaliser statistics
// included.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

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

TEST(PpoTrain, EvaluatingMoreOftenChangesNeitherTrainingNorScores) {
  // Evaluation samples from a generator of its own: 2 curve points or one per update, the
  // weights come out the same, and the same final weights score the same on the held-out seeds.
  // Both policy kinds: categorical (CartPole) and Gaussian (Pendulum).
  for (const char* id : {"cartpole", "pendulum"}) {
    PpoConfig c = cartpole(4096);
    c.env.id = id;
    c.eval.points = 2;
    const TrainResult sparse = train_ppo(c);
    c.eval.every = 1;
    const TrainResult dense = train_ppo(c);
    ASSERT_TRUE(sparse.ok() && dense.ok()) << sparse.reason << dense.reason;
    EXPECT_GT(dense.curve.size(), sparse.curve.size()) << id;
    EXPECT_EQ(dense.metrics.at("param_norm"), sparse.metrics.at("param_norm")) << id;
    EXPECT_EQ(dense.metrics.at("eval_return"), sparse.metrics.at("eval_return")) << id;
  }
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

TEST(PpoTrain, BootstrapTruncatedAddsDiscountedValueOfTheFinalObservation) {
  // One rank, 2 envs x 256 steps x 4 updates: each env steps 1024 times and is truncated at
  // 200, 400, ..., 1000, so 10 truncated steps get gamma * V(final observation) added.
  PpoConfig c;
  c.env.id = "pendulum";
  c.total_timesteps = 2048;
  c.num_envs = 2;
  c.num_steps = 256;
  c.num_minibatches = 4;
  c.update_epochs = 2;
  c.ent_coef = 0;
  c.norm_obs = c.norm_reward = true;
  c.eval.episodes = 2;
  c.log_every = 1000;
  auto run = [&](bool bootstrap, double gamma) {
    PpoConfig k = c;
    k.bootstrap_truncated = bootstrap;
    k.gamma = gamma;
    const TrainResult r = train_ppo(k);
    EXPECT_TRUE(r.ok()) << r.reason;
    return r;
  };
  // gamma 0: the bonus is 0 * V, so the run is bit-identical, only 10 value forwards costlier.
  const TrainResult off0 = run(false, 0.0), on0 = run(true, 0.0);
  EXPECT_EQ(on0.metrics.at("param_norm"), off0.metrics.at("param_norm"));
  const double n = off0.metrics.at("params_policy") + off0.metrics.at("params_value");
  EXPECT_DOUBLE_EQ(on0.cost.flops - off0.cost.flops, 2.0 * n * 10);
  // gamma 0.99: the targets change, so does the run.
  EXPECT_NE(run(true, 0.99).metrics.at("param_norm"), run(false, 0.99).metrics.at("param_norm"));
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

// Runs body(rank, comm) on two Gloo ranks (threads of this process meeting in a FileStore).
template <class Body>
void on_two_gloo_ranks(Body body) {
  const auto store = std::filesystem::temp_directory_path() /
                     ("ppo_dp_test_" + std::to_string(::getpid()) + "_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove(store);
  std::thread ranks[2];
  for (int rank = 0; rank < 2; ++rank) {
    ranks[rank] = std::thread([&, rank] {
      dist::DistEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.store_file = store.string();
      auto comm = dist::connect(env, false, std::chrono::seconds(60));
      body(rank, comm.get());
    });
  }
  for (auto& t : ranks) t.join();
  std::filesystem::remove(store);
}

// Row r of a (rows, dim) sample block, distinct per rank and round.
std::vector<float> block(int rank, int round, int rows, int dim) {
  std::vector<float> x;
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < dim; ++d)
      x.push_back(static_cast<float>((d + 1) * std::sin(3.1 * rank + 1.3 * round + 0.7 * r) +
                                     10.0 * rank - 4.0 * d));
  return x;
}

TEST(PpoTrain, GlooRanksShareNormaliserStatisticsOfTheUnion) {
  // Unequal parts (rank 0: 3 then 6 rows, rank 1: 5 then 2), two dims for the observations, one
  // for the returns; two rounds, as two rollouts would.
  const int rows[2][2] = {{3, 6}, {5, 2}};
  RunningMeanStd obs_out[2] = {RunningMeanStd(2), RunningMeanStd(2)};
  RunningMeanStd ret_out[2] = {RunningMeanStd(1), RunningMeanStd(1)};
  double fresh_left[2] = {-1, -1};
  on_two_gloo_ranks([&](int rank, dist::Communicator* comm) {
    RunningMeanStd obs(2), ret(1);
    RunningMeanStd obs_fresh = RunningMeanStd::Empty(2), ret_fresh = RunningMeanStd::Empty(1);
    for (int round = 0; round < 2; ++round) {
      const int n = rows[rank][round];
      const std::vector<float> x = block(rank, round, n, 2), y = block(rank, round + 7, n, 1);
      obs_fresh.update(x.data(), n);
      ret_fresh.update(y.data(), n);
      allreduce_running_stats(comm, {{&obs, &obs_fresh}, {&ret, &ret_fresh}});
    }
    obs_out[rank] = obs;
    ret_out[rank] = ret;
    fresh_left[rank] = obs_fresh.count + ret_fresh.count;
  });
  // Bit-identical on both ranks.
  EXPECT_EQ(obs_out[0].count, obs_out[1].count);
  EXPECT_EQ(obs_out[0].mean, obs_out[1].mean);
  EXPECT_EQ(obs_out[0].var, obs_out[1].var);
  EXPECT_EQ(ret_out[0].mean, ret_out[1].mean);
  EXPECT_EQ(ret_out[0].var, ret_out[1].var);
  EXPECT_EQ(fresh_left[0], 0.0);
  EXPECT_EQ(fresh_left[1], 0.0);
  // Equal to one process that saw every sample of both ranks.
  RunningMeanStd obs_one(2), ret_one(1);
  for (int round = 0; round < 2; ++round)
    for (int rank = 0; rank < 2; ++rank) {
      const int n = rows[rank][round];
      obs_one.update(block(rank, round, n, 2).data(), n);
      ret_one.update(block(rank, round + 7, n, 1).data(), n);
    }
  EXPECT_DOUBLE_EQ(obs_out[0].count, 16 + 1e-4);
  EXPECT_DOUBLE_EQ(ret_out[0].count, 16 + 1e-4);
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(obs_out[0].mean[d], obs_one.mean[d], 1e-12 * std::abs(obs_one.mean[d]));
    EXPECT_NEAR(obs_out[0].var[d], obs_one.var[d], 1e-12 * obs_one.var[d]);
  }
  EXPECT_NEAR(ret_out[0].mean[0], ret_one.mean[0], 1e-12 * std::abs(ret_one.mean[0]));
  EXPECT_NEAR(ret_out[0].var[0], ret_one.var[0], 1e-12 * ret_one.var[0]);
  // The ranks' samples differ a lot (rank 1 sits 10 higher), so the union is not either part.
  EXPECT_GT(obs_one.var[0], 20.0);
}

TEST(PpoTrain, TwoRanksNormalisePendulumIdentically) {
  PpoConfig c;
  c.env.id = "pendulum";
  c.total_timesteps = 2048;  // 2 updates of 2 ranks x 2 envs x 256 steps
  c.num_envs = 2;
  c.num_steps = 256;
  c.num_minibatches = 4;
  c.update_epochs = 2;
  c.ent_coef = 0;
  c.norm_obs = c.norm_reward = true;
  c.eval.episodes = 2;
  c.eval.points = 2;
  c.log_every = 1000;
  TrainResult results[2];
  on_two_gloo_ranks(
      [&](int rank, dist::Communicator* comm) { results[rank] = train_ppo(c, comm); });
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.reason;
    // Every observation of both ranks (2 x (2 reset + 2 x 256 x 2 stepped)) and every return.
    EXPECT_DOUBLE_EQ(r.metrics.at("obs_norm_count"), 2 * (2 + 1024) + 1e-4);
    EXPECT_DOUBLE_EQ(r.metrics.at("reward_norm_count"), 2 * 1024 + 1e-4);
  }
  // The ranks step different environments, yet normalise with the same statistics.
  for (const char* key : {"obs_norm_mean_l2", "obs_norm_var_sum", "reward_norm_var", "param_norm"})
    EXPECT_EQ(results[0].metrics.at(key), results[1].metrics.at(key)) << key;
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
