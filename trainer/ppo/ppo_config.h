// The config of one PPO run (`task: ppo`), a plain struct read from YAML by
// orchestrator/config/binder.h. Keys and defaults follow CleanRL's ppo.py (Huang et al. 2022,
// "The 37 implementation details of PPO") so a CleanRL command line maps one to one; every key is
// documented in docs/ppo.md and every number is searchable by a sweep.
//
// Torch-free on purpose: the config library, `scaletune validate` and the sweep orchestrator
// include it without LibTorch. Also holds the closed-form parameter and FLOP counts (§0.5 of
// scaling-methods.md), which need no network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/envs/make_env.h"

namespace scaletune::trainer {

struct PpoModelConfig {
  int hidden = 64;                  // width of every hidden layer
  int layers = 2;                   // hidden layers per network
  bool shared = false;              // one trunk with actor and critic heads instead of two MLPs
  std::string activation = "tanh";  // tanh | relu
  double init_log_std = 0.0;        // Gaussian policies: initial log standard deviation

  template <class V>
  void visit(V& v) {
    v.field("hidden", hidden, "Width of each hidden layer.").min(1);
    v.field("layers", layers, "Hidden layers of the actor and of the critic (or the trunk).")
        .min(1);
    v.field("shared", shared, "Share one trunk between actor and critic (counted once).");
    v.field("activation", activation, "Hidden activation.").one_of({"tanh", "relu"});
    v.field("init_log_std", init_log_std, "Initial log std of a Gaussian policy.");
  }
};

struct PpoEvalConfig {
  int episodes = 16;           // episodes per evaluation (one per environment, fixed seeds)
  std::int64_t every = 0;      // updates between evaluations; 0: about `points` evaluations
  int points = 10;             // curve points when every = 0
  std::int64_t seed = -1;      // held-out seed set; -1: a stream derived from `seed`
  bool deterministic = false;  // greedy/mean actions instead of sampling

  template <class V>
  void visit(V& v) {
    v.field("episodes", episodes, "Episodes per evaluation, split across ranks.").min(1);
    v.field("every", every, "Updates between evaluations; 0: about `points` of them.").min(0);
    v.field("points", points, "Evaluations over the run when every = 0.").min(1);
    v.field("seed", seed, "Seed of the held-out episodes; -1 derives one from `seed`.").min(-1);
    v.field("deterministic", deterministic, "Evaluate the mode of the policy, not samples.");
  }
};

struct PpoConfig {
  std::string task = "ppo";
  std::int64_t seed = 1;        // init, sampling and the tuning environments' seeds
  int threads = 1;              // LibTorch intra-op threads per rank
  std::string device = "cpu";   // cpu | cuda | auto (tiny MLPs are faster on the CPU)
  std::int64_t log_every = 10;  // updates between progress lines
  envs::EnvConfig env;
  PpoModelConfig model;
  PpoEvalConfig eval;

  double total_timesteps = 500000;  // environment steps over all ranks
  double learning_rate = 2.5e-4;
  bool anneal_lr = true;  // linear decay to 0 over the updates
  int num_envs = 4;       // environments per rank
  int num_steps = 128;    // rollout length per environment
  double gamma = 0.99;
  double gae_lambda = 0.95;
  int num_minibatches = 4;
  int update_epochs = 4;
  bool norm_adv = true;  // normalise advantages per minibatch
  double clip_coef = 0.2;
  bool clip_vloss = true;
  double ent_coef = 0.01;
  double vf_coef = 0.5;
  double max_grad_norm = 0.5;  // 0 disables clipping
  double target_kl = 0;        // approx-KL early stop per epoch; 0 disables
  double adam_eps = 1e-5;
  bool norm_obs = false;      // running mean/std observation normalisation
  bool norm_reward = false;   // scale rewards by the std of the discounted return
  double clip_obs = 10.0;     // clip normalised observations to +-clip_obs
  double clip_reward = 10.0;  // clip normalised rewards to +-clip_reward
  // A truncated (not terminated) step's reward gains gamma * V(final observation), so the value
  // target goes on past the time limit. false: CleanRL's handling (truncation ends the return).
  bool bootstrap_truncated = false;

  template <class V>
  void visit(V& v) {
    v.field("task", task, "Trainer: ppo.").one_of({"ppo"});
    v.field("seed", seed, "Seed of initialisation, sampling and the tuning environments.");
    v.field("threads", threads, "LibTorch intra-op threads per rank.").min(1);
    v.field("device", device, "Device of the networks.").one_of({"cpu", "cuda", "auto"});
    v.field("log_every", log_every, "Updates between progress lines.").min(1);
    v.field("env", env, "Environment and its training / held-out seed sets.");
    v.field("model", model, "Actor and critic networks.");
    v.field("eval", eval, "Held-out evaluation.");
    v.field("total_timesteps", total_timesteps, "Environment steps of the run, all ranks.")
        .above(0.0);
    v.field("learning_rate", learning_rate, "Adam learning rate.").above(0.0);
    v.field("anneal_lr", anneal_lr, "Decay the learning rate linearly to 0.");
    v.field("num_envs", num_envs, "Parallel environments per rank.").min(1);
    v.field("num_steps", num_steps, "Steps per environment per rollout.").min(1);
    v.field("gamma", gamma, "Discount factor.").min(0.0).max(1.0);
    v.field("gae_lambda", gae_lambda, "GAE lambda.").min(0.0).max(1.0);
    v.field("num_minibatches", num_minibatches, "Minibatches per epoch.").min(1);
    v.field("update_epochs", update_epochs, "Epochs over each rollout.").min(1);
    v.field("norm_adv", norm_adv, "Normalise advantages per minibatch.");
    v.field("clip_coef", clip_coef, "Surrogate clipping coefficient.").above(0.0);
    v.field("clip_vloss", clip_vloss, "Clip the value loss like the policy ratio.");
    v.field("ent_coef", ent_coef, "Entropy bonus coefficient.").min(0.0);
    v.field("vf_coef", vf_coef, "Value loss coefficient.").min(0.0);
    v.field("max_grad_norm", max_grad_norm, "Global gradient-norm clip; 0 disables.").min(0.0);
    v.field("target_kl", target_kl, "Stop an update's epochs above this approx KL; 0 disables.")
        .min(0.0);
    v.field("adam_eps", adam_eps, "Adam epsilon.").above(0.0);
    v.field("norm_obs", norm_obs, "Normalise observations by running mean and std.");
    v.field("norm_reward", norm_reward, "Scale rewards by the running std of the return.");
    v.field("clip_obs", clip_obs, "Clip normalised observations to +-this.").above(0.0);
    v.field("clip_reward", clip_reward, "Clip normalised rewards to +-this.").above(0.0);
    v.field("bootstrap_truncated", bootstrap_truncated,
            "Bootstrap truncated episodes with gamma * V(final observation) (CleanRL: false).");
  }

  // (env.validate runs too: the binder checks nested structs itself.)
  void validate(std::vector<std::string>& errors) const {
    const std::int64_t batch = static_cast<std::int64_t>(num_envs) * num_steps;
    if (batch % num_minibatches != 0)
      errors.push_back("num_envs * num_steps (" + std::to_string(batch) +
                       ") must be a multiple of num_minibatches (" +
                       std::to_string(num_minibatches) + ")");
    if (total_timesteps < static_cast<double>(batch))
      errors.push_back(
          "total_timesteps (" + std::to_string(static_cast<std::int64_t>(total_timesteps)) +
          ") is less than one rollout, num_envs * num_steps = " + std::to_string(batch));
  }
};

// Closed-form parameter counts of the networks train_ppo builds.
struct PpoParamCount {
  std::int64_t policy = 0;  // actor MLP (+ log std); with a shared trunk: trunk + actor head
  std::int64_t value = 0;   // critic MLP; with a shared trunk: critic head only
  std::int64_t total() const { return policy + value; }
};

inline std::int64_t mlp_params(std::int64_t in, std::int64_t hidden, std::int64_t layers,
                               std::int64_t out) {
  return (in * hidden + hidden) + (layers - 1) * (hidden * hidden + hidden) + (hidden * out + out);
}

inline PpoParamCount ppo_param_count(const envs::EnvSpec& spec, const PpoModelConfig& m) {
  const std::int64_t out = spec.discrete ? spec.num_actions : spec.action_dim;
  const std::int64_t log_std = spec.discrete ? 0 : spec.action_dim;
  PpoParamCount c;
  if (m.shared) {
    const std::int64_t trunk = mlp_params(spec.obs_dim, m.hidden, m.layers, 0);
    c.policy = trunk + (m.hidden * out + out) + log_std;
    c.value = m.hidden + 1;
  } else {
    c.policy = mlp_params(spec.obs_dim, m.hidden, m.layers, out) + log_std;
    c.value = mlp_params(spec.obs_dim, m.hidden, m.layers, 1);
  }
  return c;
}

// Training FLOPs per environment step (scaling-methods.md §0.5): 2 N for the rollout forward of
// policy and value, 6 N per epoch the sample is trained on.
inline double ppo_flops_per_step(const PpoParamCount& n, double epochs) {
  return static_cast<double>(n.total()) * (2.0 + 6.0 * epochs);
}

}  // namespace scaletune::trainer
