// GAE on hand-computed examples, the clipped PPO loss against hand-computed numbers, the
// closed-form parameter and FLOP counts, and config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "orchestrator/config/binder.h"
#include "trainer/ppo/gae.h"
#include "trainer/ppo/ppo.h"
#include "trainer/ppo/ppo_config.h"

namespace scaletune::trainer {
namespace {

TEST(Gae, ThreeStepsByHand) {
  // gamma 0.9, lambda 0.8; the observation at t = 2 begins a new episode (dones[2] = 1).
  //   t=2: delta = 3 + 0.9 * 2.0 - 1.5 = 3.3                A = 3.3
  //   t=1: delta = 2 + 0 - 1.0 = 1.0 (episode ends)          A = 1.0
  //   t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4                 A = 1.4 + 0.72 * 1.0 = 2.12
  const std::vector<float> rewards{1, 2, 3}, values{0.5f, 1.0f, 1.5f}, dones{0, 0, 1};
  const float next_value = 2.0f, next_done = 0.0f;
  std::vector<float> adv(3), ret(3);
  compute_gae(3, 1, rewards.data(), values.data(), dones.data(), &next_value, &next_done, 0.9, 0.8,
              adv.data(), ret.data());
  EXPECT_NEAR(adv[0], 2.12, 1e-6);
  EXPECT_NEAR(adv[1], 1.0, 1e-6);
  EXPECT_NEAR(adv[2], 3.3, 1e-6);
  EXPECT_NEAR(ret[0], 2.62, 1e-6);
  EXPECT_NEAR(ret[1], 2.0, 1e-6);
  EXPECT_NEAR(ret[2], 4.8, 1e-6);
}

TEST(Gae, EnvironmentsAreColumnsAndNextDoneCutsTheBootstrap) {
  // Two environments interleaved (row t holds both); the second ends right after the rollout,
  // so its last step does not bootstrap: delta_2 = 3 - 1.5 = 1.5.
  const std::vector<float> rewards{1, 1, 2, 2, 3, 3}, values{0.5f, 0.5f, 1.0f, 1.0f, 1.5f, 1.5f},
      dones{0, 0, 0, 0, 1, 1};
  const float next_value[2] = {2.0f, 2.0f}, next_done[2] = {0.0f, 1.0f};
  std::vector<float> adv(6), ret(6);
  compute_gae(3, 2, rewards.data(), values.data(), dones.data(), next_value, next_done, 0.9, 0.8,
              adv.data(), ret.data());
  EXPECT_NEAR(adv[4], 3.3, 1e-6);
  EXPECT_NEAR(adv[5], 1.5, 1e-6);
  EXPECT_NEAR(adv[0], 2.12, 1e-6);
  EXPECT_NEAR(adv[1], 2.12, 1e-6);
}

TEST(Gae, LambdaOneIsDiscountedReturnMinusValue) {
  const std::vector<float> rewards{1, 1, 1, 1}, values{0.3f, 0.2f, 0.1f, 0.4f}, dones{0, 0, 0, 0};
  const float next_value = 10.0f, next_done = 0.0f;
  std::vector<float> adv(4), ret(4);
  compute_gae(4, 1, rewards.data(), values.data(), dones.data(), &next_value, &next_done, 0.5, 1.0,
              adv.data(), ret.data());
  // Monte-Carlo return from t = 0: 1 + .5 + .25 + .125 + .0625 * 10.
  EXPECT_NEAR(ret[0], 1.875 + 0.625, 1e-6);
  EXPECT_NEAR(adv[0], 2.5 - 0.3, 1e-6);
}

PpoLossInputs three_samples() {
  // ratios 1.5, 0.7, 1.1 with advantages 1, -2, 0.5 (clip 0.2):
  //   max(-A r, -A clip(r)) = max(-1.5, -1.2) = -1.2; max(1.4, 1.6) = 1.6; max(-0.55, -0.55)
  PpoLossInputs in;
  in.new_logprob = {0.0f, 0.0f, 0.0f};
  in.old_logprob = {static_cast<float>(-std::log(1.5)), static_cast<float>(-std::log(0.7)),
                    static_cast<float>(-std::log(1.1))};
  in.advantages = {1.0f, -2.0f, 0.5f};
  in.new_value = {1.0f, 0.0f, 2.0f};
  in.old_value = {0.5f, 0.5f, 2.0f};
  in.returns = {2.0f, 1.0f, 2.5f};
  in.entropy = {0.6f, 0.7f, 0.8f};
  in.clip_coef = 0.2;
  in.norm_adv = false;
  return in;
}

TEST(PpoLoss, ClippedSurrogateAndValueLossByHand) {
  PpoLossInputs in = three_samples();
  in.clip_vloss = true;
  const PpoLossTerms l = ppo_loss_terms(in);
  EXPECT_NEAR(l.pg_loss, (-1.2 + 1.6 - 0.55) / 3, 1e-6);
  // Clipped values 0.7, 0.3, 2.0: squared errors max(1, 1.69), max(1, 0.49), max(.25, .25).
  EXPECT_NEAR(l.v_loss, 0.5 * (1.69 + 1.0 + 0.25) / 3, 1e-6);
  EXPECT_NEAR(l.entropy_loss, 0.7, 1e-6);
  const double k3 = ((0.5 - std::log(1.5)) + (-0.3 - std::log(0.7)) + (0.1 - std::log(1.1))) / 3;
  EXPECT_NEAR(l.approx_kl, k3, 1e-6);
  EXPECT_NEAR(l.old_approx_kl, -(std::log(1.5) + std::log(0.7) + std::log(1.1)) / 3, 1e-6);
  EXPECT_NEAR(l.clipfrac, 2.0 / 3.0, 1e-6);
}

TEST(PpoLoss, UnclippedValueLossAndAdvantageNormalisation) {
  PpoLossInputs in = three_samples();
  in.clip_vloss = false;
  in.norm_adv = true;
  const PpoLossTerms l = ppo_loss_terms(in);
  EXPECT_NEAR(l.v_loss, 0.5 * (1.0 + 1.0 + 0.25) / 3, 1e-6);
  // Advantages standardised with the unbiased std (torch.std), then clipped as before.
  const double mean = -1.0 / 6.0;
  const double sd = std::sqrt(
      ((1 - mean) * (1 - mean) + (-2 - mean) * (-2 - mean) + (0.5 - mean) * (0.5 - mean)) / 2.0);
  const double a[3] = {(1 - mean) / sd, (-2 - mean) / sd, (0.5 - mean) / sd};
  const double r[3] = {1.5, 0.7, 1.1};
  double pg = 0;
  for (int k = 0; k < 3; ++k)
    pg += std::max(-a[k] * r[k], -a[k] * std::min(1.2, std::max(0.8, r[k])));
  EXPECT_NEAR(l.pg_loss, pg / 3, 1e-5);
}

TEST(PpoCounts, ParametersAndFlopsInClosedForm) {
  envs::EnvSpec cartpole;
  cartpole.obs_dim = 4;
  cartpole.discrete = true;
  cartpole.num_actions = 2;
  PpoModelConfig m;  // 64 x 2, separate
  const PpoParamCount c = ppo_param_count(cartpole, m);
  EXPECT_EQ(c.policy, (4 * 64 + 64) + (64 * 64 + 64) + (64 * 2 + 2));
  EXPECT_EQ(c.value, (4 * 64 + 64) + (64 * 64 + 64) + (64 + 1));
  EXPECT_DOUBLE_EQ(ppo_flops_per_step(c, 4), 26.0 * static_cast<double>(c.total()));
  m.shared = true;
  const PpoParamCount s = ppo_param_count(cartpole, m);
  EXPECT_EQ(s.total(), (4 * 64 + 64) + (64 * 64 + 64) + (64 * 2 + 2) + (64 + 1));
  envs::EnvSpec pendulum;
  pendulum.obs_dim = 3;
  pendulum.discrete = false;
  pendulum.action_dim = 1;
  m.shared = false;
  EXPECT_EQ(ppo_param_count(pendulum, m).policy, (3 * 64 + 64) + (64 * 64 + 64) + (64 + 1) + 1);
}

TEST(PpoConfig, BindsDefaultsAndReportsErrorsByKey) {
  auto doc =
      config::Document::parse("task: ppo\nlearning_rate: 1e-3\nenv: {id: pendulum}\n", "ppo.yaml");
  const auto c = config::bind<PpoConfig>(doc);
  EXPECT_DOUBLE_EQ(c.learning_rate, 1e-3);
  EXPECT_EQ(c.env.id, "pendulum");
  EXPECT_EQ(c.num_envs, 4);  // CleanRL's default
  try {
    config::bind<PpoConfig>(config::Document::parse(
        "task: ppo\nlearning_rte: 1e-3\nnum_minibatches: 3\nenv: {id: atari}\n", "bad.yaml"));
    FAIL() << "expected ConfigError";
  } catch (const config::ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("learning_rate"), std::string::npos) << what;  // the suggestion
    EXPECT_NE(what.find("env.id"), std::string::npos) << what;
  }
  try {
    config::bind<PpoConfig>(config::Document::parse(
        "task: ppo\nnum_minibatches: 3\ntotal_timesteps: 100\n", "bad.yaml"));
    FAIL() << "expected ConfigError";
  } catch (const config::ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("multiple of num_minibatches"), std::string::npos) << what;
    EXPECT_NE(what.find("less than one rollout"), std::string::npos) << what;
  }
  EXPECT_THROW(config::bind<PpoConfig>(config::Document::parse(
                   "task: ppo\nenv: {id: maze, eval_level_start: 100}\n", "overlap.yaml")),
               config::ConfigError);
}

}  // namespace
}  // namespace scaletune::trainer
