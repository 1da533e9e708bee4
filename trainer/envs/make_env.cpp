// The environment factory (see make_env.h).
#include "trainer/envs/make_env.h"

#include <stdexcept>

#include "trainer/envs/cartpole.h"
#include "trainer/envs/maze.h"
#include "trainer/envs/pendulum.h"

namespace scaletune::envs {

std::unique_ptr<VecEnv> make_vec_env(const EnvConfig& config, int num_envs, LevelSet set) {
  if (num_envs < 1) throw std::invalid_argument("num_envs must be at least 1");
  if (config.id == "cartpole") {
    return std::make_unique<CartPole>(
        num_envs, config.max_episode_steps ? config.max_episode_steps : CartPoleParams::kMaxSteps);
  }
  if (config.id == "pendulum") {
    return std::make_unique<Pendulum>(
        num_envs, config.max_episode_steps ? config.max_episode_steps : PendulumParams::kMaxSteps);
  }
  if (config.id == "maze") {
    MazeOptions o;
    o.cells = config.maze_cells;
    o.max_episode_steps =
        config.max_episode_steps ? config.max_episode_steps : config.maze_max_steps;
    o.level_start = set == LevelSet::kTrain ? config.train_level_start : config.eval_level_start;
    o.num_levels = set == LevelSet::kTrain ? config.train_num_levels : config.eval_num_levels;
    return std::make_unique<Maze>(num_envs, o);
  }
  throw std::invalid_argument("unknown environment '" + config.id +
                              "'; use cartpole, pendulum or maze");
}

}  // namespace scaletune::envs
