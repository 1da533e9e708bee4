// PPO on Pendulum-v1 with CleanRL's ppo_continuous_action.py settings, next to CleanRL's own
// published Pendulum-v1 figure. Variants: `cleanrl` (those settings), `bootstrap` (the same with
// bootstrap_truncated: the 200-step time limit bootstrapped instead of ending the return), `zoo`
// (the RL Zoo-style settings of configs/ppo_pendulum.yaml, at most 300k steps, next to RL Zoo's
// published PPO agent).
//
//   build/bench/ppo_pendulum                  cleanrl, 1 seed x 1M steps (a few minutes)
//   build/bench/ppo_pendulum --full           cleanrl, bootstrap and zoo, seeds 1-3
//   build/bench/ppo_pendulum --seeds 5 --steps 500000 --variants cleanrl,bootstrap
//
// Per seed: the training return (mean return of the training episodes that finished in the last
// ~10k steps, stochastic policy, raw rewards: what CleanRL logs as charts/episodic_return) and the
// held-out return (16 episodes on held-out seeds) at 100k, 250k, 500k and 1M steps.
//
// The references are published figures, not measured here (docs/ppo.md, "Pendulum" says where
// each comes from and under what conditions).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "trainer/ppo/ppo.h"

using namespace scaletune;

namespace {

// CleanRL's published Pendulum-v1 result for ppo_continuous_action.py: the "Gym(Gymnasium)" table
// of https://docs.cleanrl.dev/rl-algorithms/rpo/ (source: docs/rl-algorithms/rpo.md of
// github.com/vwxyzjn/cleanrl), column ppo_continuous_action_8M (tag v1.0.0-13-gcbd83f6): default
// settings, 1 env, 8M steps, 10 seeds, mean +- std over seeds. CleanRL publishes no 1M figure.
constexpr double kCleanRlPendulum8MMean = -1141.98;
constexpr double kCleanRlPendulum8MStd = 135.55;
// The same table, RPO (rpo_continuous_action.py, alpha 0.5), 8M steps, 10 seeds.
constexpr double kCleanRlRpoPendulum8MMean = -151.08;
constexpr double kCleanRlRpoPendulum8MStd = 3.73;
// RL Zoo's tuned SB3 PPO on Pendulum-v1 (https://huggingface.co/sb3/ppo-Pendulum-v1, model card
// mean_reward): 4 envs x 1024 steps, gamma 0.9, lr 1e-3, gSDE, 100k steps.
constexpr double kRlZooPendulumMean = -230.42;
constexpr double kRlZooPendulumStd = 142.54;

constexpr double kCheckpoints[] = {100e3, 250e3, 500e3, 1e6};

// CleanRL's ppo_continuous_action.py defaults.
trainer::PpoConfig cleanrl_config(int seed, double steps) {
  trainer::PpoConfig c;
  c.seed = seed;
  c.env.id = "pendulum";
  c.total_timesteps = steps;
  c.learning_rate = 3e-4;
  c.num_envs = 1;
  c.num_steps = 2048;
  c.num_minibatches = 32;
  c.update_epochs = 10;
  c.gamma = 0.99;
  c.gae_lambda = 0.95;
  c.ent_coef = 0.0;
  c.vf_coef = 0.5;
  c.max_grad_norm = 0.5;
  c.norm_obs = c.norm_reward = true;
  c.eval.every = 5;  // a curve point every 10240 steps
  c.eval.episodes = 16;
  c.log_every = 1000000;
  return c;
}

// CleanRL's settings with the time limit bootstrapped.
trainer::PpoConfig bootstrap_config(int seed, double steps) {
  trainer::PpoConfig c = cleanrl_config(seed, steps);
  c.bootstrap_truncated = true;
  return c;
}

// configs/ppo_pendulum.yaml (RL Zoo-style).
trainer::PpoConfig zoo_config(int seed, double steps) {
  trainer::PpoConfig c = cleanrl_config(seed, steps);
  c.learning_rate = 1e-3;
  c.num_envs = 4;
  c.num_steps = 1024;
  c.num_minibatches = 64;
  c.gamma = 0.9;
  c.eval.every = 3;  // every 12288 steps
  return c;
}

// The curve point at the first step >= `at` (or the last one).
const trainer::CurvePoint* point_at(const std::vector<trainer::CurvePoint>& curve, double at) {
  for (const auto& p : curve)
    if (p.tokens >= at) return &p;
  return curve.empty() ? nullptr : &curve.back();
}

void run_seeds(const char* title, trainer::PpoConfig (*make)(int, double), int seeds, double steps,
               double ref_mean, double ref_std, const char* ref_label) {
  std::printf("== Pendulum-v1, %s, %.0fk steps, seeds 1-%d ==\n", title, steps / 1e3, seeds);
  std::printf("%5s %9s %10s %10s %9s\n", "seed", "step", "train", "held-out", "seconds");
  std::vector<std::vector<double>> train_at(std::size(kCheckpoints));
  for (int seed = 1; seed <= seeds; ++seed) {
    const trainer::TrainResult r = trainer::train_ppo(make(seed, steps));
    if (!r.ok()) {
      std::printf("%5d %s: %s\n", seed, trainer::to_string(r.status), r.reason.c_str());
      continue;
    }
    for (size_t k = 0; k < std::size(kCheckpoints); ++k) {
      if (kCheckpoints[k] > steps * 1.0001) break;
      const trainer::CurvePoint* p = point_at(r.curve, kCheckpoints[k]);
      if (!p) break;
      train_at[k].push_back(p->train_return);
      std::printf("%5d %9.0f %10.1f %10.1f %9.1f\n", seed, p->tokens, p->train_return,
                  p->eval_return, p->wall_seconds);
    }
  }
  for (size_t k = 0; k < std::size(kCheckpoints); ++k) {
    std::vector<double>& v = train_at[k];
    if (v.empty()) continue;
    double mean = 0, sq = 0;
    for (double x : v) mean += x;
    mean /= static_cast<double>(v.size());
    for (double x : v) sq += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0;
    std::printf("at %4.0fk steps: training return %.1f +- %.1f over %zu seeds | %s %.2f +- %.2f\n",
                kCheckpoints[k] / 1e3, mean, sd, v.size(), ref_label, ref_mean, ref_std);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 1;
  double steps = 1e6;
  std::string variants = "cleanrl";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--full") {
      seeds = 3;
      variants = "cleanrl,bootstrap,zoo";
    } else if (a == "--variants" && i + 1 < argc) {
      variants = argv[++i];
    } else if (a == "--seeds" && i + 1 < argc) {
      seeds = std::atoi(argv[++i]);
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::atof(argv[++i]);
    } else {
      std::fprintf(
          stderr, "usage: %s [--full] [--seeds N] [--steps S] [--variants cleanrl,bootstrap,zoo]\n",
          argv[0]);
      return 2;
    }
  }
  const auto wants = [&](const char* v) {
    return ("," + variants + ",").find(std::string(",") + v + ",") != std::string::npos;
  };
  if (seeds < 1 || !(steps >= 2048) || !(wants("cleanrl") || wants("bootstrap") || wants("zoo"))) {
    std::fprintf(stderr,
                 "--seeds must be >= 1, --steps >= 2048, --variants of cleanrl, bootstrap, zoo\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured

  if (wants("cleanrl")) {
    run_seeds("CleanRL ppo_continuous_action defaults", cleanrl_config, seeds, steps,
              kCleanRlPendulum8MMean, kCleanRlPendulum8MStd,
              "CleanRL published (8M steps, 10 seeds)");
    std::printf("CleanRL's RPO on the same table: %.2f +- %.2f (8M steps, 10 seeds)\n\n",
                kCleanRlRpoPendulum8MMean, kCleanRlRpoPendulum8MStd);
  }
  if (wants("bootstrap")) {
    run_seeds("CleanRL defaults + bootstrap_truncated", bootstrap_config, seeds, steps,
              kCleanRlPendulum8MMean, kCleanRlPendulum8MStd,
              "CleanRL published, no bootstrap (8M steps, 10 seeds)");
    std::printf("\n");
  }
  if (wants("zoo")) {
    run_seeds("RL Zoo-style configs/ppo_pendulum.yaml", zoo_config, seeds, std::min(steps, 300e3),
              kRlZooPendulumMean, kRlZooPendulumStd, "RL Zoo sb3/ppo-Pendulum-v1 (100k steps)");
  }
  return 0;
}
