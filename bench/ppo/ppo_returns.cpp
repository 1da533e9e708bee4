// PPO sample efficiency: CartPole with the default (CleanRL ppo.py) settings over several seeds,
// 500k steps each; per seed the first step at which the training return (mean over the episodes
// of one curve window) reaches 475, and the final held-out return (16 episodes of held-out
// seeds). Optional: Pendulum with CleanRL's ppo_continuous_action.py settings for 1M steps.
//
//   build/bench/ppo_returns [seeds=5] [pendulum=0]
// Target: mean return >= 475 within 500k steps on most seeds. Reference for Pendulum-v1 PPO:
// RL Zoo's tuned SB3 agents score about -230 +- 140 (huggingface.co/sb3/ppo-Pendulum-v1).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "trainer/ppo/ppo.h"

using namespace scaletune;

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 5;
  const bool pendulum = argc > 2 && std::atoi(argv[2]) != 0;
  spdlog::set_level(spdlog::level::warn);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured

  std::printf("== CartPole-v1, default settings, 500k steps, %d seeds ==\n", seeds);
  std::printf("%5s %14s %12s %12s %10s %9s\n", "seed", "first >= 475", "final eval", "final train",
              "seconds", "steps/s");
  std::vector<double> finals;
  int solved = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    trainer::PpoConfig c;  // total_timesteps 500k, CleanRL defaults
    c.seed = seed;
    c.eval.points = 50;
    c.eval.episodes = 16;
    const auto r = trainer::train_ppo(c);
    if (!r.ok()) {
      std::printf("%5d failed: %s\n", seed, r.reason.c_str());
      continue;
    }
    double first = NAN;
    for (const auto& p : r.curve)
      if (p.train_return >= 475.0) {
        first = p.tokens;
        break;
      }
    solved += std::isfinite(first);
    finals.push_back(r.metrics.at("eval_return"));
    std::printf("%5d %14s %12.1f %12.1f %10.1f %9.0f\n", seed,
                std::isfinite(first) ? std::to_string(static_cast<long>(first)).c_str() : "never",
                r.metrics.at("eval_return"), r.metrics.at("train_return"), r.cost.wall_seconds,
                r.metrics.at("steps_per_second"));
  }
  std::sort(finals.begin(), finals.end());
  if (!finals.empty())
    std::printf(
        "reached 475: %d of %d seeds | final held-out return min %.1f median %.1f max %.1f\n",
        solved, seeds, finals.front(), finals[finals.size() / 2], finals.back());

  if (pendulum) {
    std::printf("\n== Pendulum-v1, CleanRL ppo_continuous_action settings, 1M steps ==\n");
    trainer::PpoConfig c;
    c.env.id = "pendulum";
    c.total_timesteps = 1e6;
    c.learning_rate = 3e-4;
    c.num_envs = 1;
    c.num_steps = 2048;
    c.num_minibatches = 32;
    c.update_epochs = 10;
    c.ent_coef = 0.0;
    c.norm_obs = c.norm_reward = true;
    c.eval.points = 10;
    const auto r = trainer::train_ppo(c);
    for (const auto& p : r.curve)
      std::printf("  step %8.0f  train %8.1f  held-out %8.1f\n", p.tokens, p.train_return,
                  p.eval_return);
    std::printf("final held-out return %.1f (%s) in %.0f s; reference about -230 +- 140\n",
                r.metrics.count("eval_return") ? r.metrics.at("eval_return") : NAN,
                trainer::to_string(r.status), r.cost.wall_seconds);
  }
  return 0;
}
