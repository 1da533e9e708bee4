// PPO sample efficiency: CartPole with the default (CleanRL ppo.py) settings over several seeds,
// 500k steps each; per seed the first step at which the training return (mean over the episodes
// of one curve window) reaches 475, and the final held-out return (16 episodes of held-out
// seeds). Pendulum has its own benchmark, ppo_pendulum.
//
//   build/bench/ppo_returns [seeds=5]
// Target: mean return >= 475 within 500k steps on most seeds.
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

  return 0;
}
