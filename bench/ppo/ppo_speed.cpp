// PPO speed: raw environment steps/s on one core (random actions) and end-to-end PPO training
// steps/s, each next to the CleanRL-style Python PPO (bench/ppo/cleanrl_ppo.py: numpy CartPole,
// python3-torch) with the same network, batch and threads, measured in the same run.
//
//   build/bench/ppo_speed [e2e_steps=50000] [threads=1]
// Target: C++ end-to-end >= 3x the Python reference.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/ppo/bench_util.h"
#include "trainer/envs/make_env.h"
#include "trainer/ppo/ppo.h"

using namespace scaletune;

// Steps/s of `num_envs` copies of `id` over about `steps` environment steps.
double env_rate(const std::string& id, int num_envs, long steps) {
  envs::EnvConfig c;
  c.id = id;
  auto env = envs::make_vec_env(c, num_envs, envs::LevelSet::kTrain);
  const auto& spec = env->spec();
  std::vector<float> obs(static_cast<size_t>(num_envs * spec.obs_dim)), rew(num_envs),
      cont(static_cast<size_t>(num_envs * std::max(1, spec.action_dim)));
  std::vector<std::int64_t> disc(num_envs);
  std::vector<std::uint8_t> term(num_envs), trunc(num_envs);
  envs::VecBuffers b{obs.data(), disc.data(), cont.data(), rew.data(), term.data(), trunc.data()};
  env->reset(1, b);
  envs::Rng rng(7);
  const long iters = steps / num_envs;
  // Actions drawn up front so the timing is the environment's alone.
  std::vector<std::int64_t> actions(static_cast<size_t>(iters * num_envs));
  for (auto& a : actions) a = static_cast<std::int64_t>(rng.below(std::max(1, spec.num_actions)));
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < iters; ++k) {
    for (int i = 0; i < num_envs; ++i) {
      disc[i] = actions[static_cast<size_t>(k * num_envs + i)];
      cont[i] = static_cast<float>(disc[i]) - 0.5f;
    }
    env->step(b);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(iters * num_envs) / s;
}

int main(int argc, char** argv) {
  const double e2e_steps = argc > 1 ? std::atof(argv[1]) : 50000;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  spdlog::set_level(spdlog::level::warn);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured

  std::printf("== raw environment steps/s, one core, random actions ==\n");
  std::printf("%-10s %6s %14s %14s %8s\n", "env", "envs", "C++", "python/numpy", "ratio");
  for (int n : {4, 256}) {
    const double cpp = env_rate("cartpole", n, 4000000);
    const auto py = bench::run_python_reference("--env-steps " + std::to_string(n * 2000) +
                                                " --num-envs " + std::to_string(n));
    const double pyr = py.is_object() ? py.value("env_sps", 0.0) : 0.0;
    std::printf("%-10s %6d %14.3g %14.3g %7.0fx\n", "cartpole", n, cpp, pyr,
                pyr > 0 ? cpp / pyr : 0.0);
  }
  for (const char* id : {"pendulum", "maze"})
    std::printf("%-10s %6d %14.3g %14s\n", id, 256, env_rate(id, 256, 2000000), "-");

  std::printf(
      "\n== end-to-end PPO on CartPole: 4 envs x 128 steps, 64x2 tanh, 4 epochs x 4 "
      "minibatches, %d thread(s), %.0f steps ==\n",
      threads, e2e_steps);
  trainer::PpoConfig c;
  c.total_timesteps = e2e_steps;
  c.threads = threads;
  c.eval.points = 1;
  c.eval.episodes = 1;
  c.log_every = 1000000;
  const auto r = trainer::train_ppo(c);
  const double cpp = r.metrics.count("steps_per_second") ? r.metrics.at("steps_per_second") : 0.0;
  const auto py = bench::run_python_reference("--total-timesteps " +
                                              std::to_string(static_cast<long>(e2e_steps)) +
                                              " --threads " + std::to_string(threads));
  const double pyr = py.is_object() ? py.value("sps", 0.0) : 0.0;
  std::printf("C++ scaletune PPO   %10.0f steps/s  (train return %.1f)\n", cpp,
              r.metrics.count("train_return") ? r.metrics.at("train_return") : 0.0);
  std::printf("Python CleanRL PPO  %10.0f steps/s  (train return %s)\n", pyr,
              py.is_object() && py["final_return"].is_number()
                  ? std::to_string(py["final_return"].get<double>()).c_str()
                  : "-");
  std::printf("speed-up            %10.2fx  (target >= 3x)\n", pyr > 0 ? cpp / pyr : 0.0);
  return r.ok() ? 0 : 1;
}
