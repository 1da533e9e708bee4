// The `env:` section of an RL config and the factory that builds a vectorized environment from it.
//
// Training and evaluation use the same environment with different seed sets: for the maze the
// training and held-out level ranges must not overlap (EnvConfig::validate says so otherwise).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/envs/vec_env.h"

namespace scaletune::envs {

struct EnvConfig {
  std::string id = "cartpole";         // cartpole | pendulum | maze
  int max_episode_steps = 0;           // 0: the environment's own limit (500, 200, maze_max_steps)
  int maze_cells = 5;                  // maze side in cells
  int maze_max_steps = 100;            // maze truncation limit
  std::int64_t train_level_start = 0;  // maze levels the run trains (and is tuned) on
  std::int64_t train_num_levels = 200;
  std::int64_t eval_level_start = 1000000;  // held-out maze levels, disjoint from the above
  std::int64_t eval_num_levels = 100000;

  template <class V>
  void visit(V& v) {
    v.field("id", id, "Environment: cartpole (CartPole-v1), pendulum (Pendulum-v1), maze.")
        .one_of({"cartpole", "pendulum", "maze"});
    v.field("max_episode_steps", max_episode_steps,
            "Truncation limit; 0 keeps the environment's own (500, 200, maze_max_steps).")
        .min(0);
    v.field("maze_cells", maze_cells, "Maze size in cells per side.").min(2).max(32);
    v.field("maze_max_steps", maze_max_steps, "Maze episode limit in steps.").min(1);
    v.field("train_level_start", train_level_start, "First maze level id of the training set.")
        .min(0);
    v.field("train_num_levels", train_num_levels, "Number of maze training levels.").min(1);
    v.field("eval_level_start", eval_level_start, "First held-out maze level id.").min(0);
    v.field("eval_num_levels", eval_num_levels, "Number of held-out maze levels.").min(1);
  }
  // Inline so the torch-free config library needs no link to the environments.
  void validate(std::vector<std::string>& errors) const {
    if (id != "maze") return;
    const std::int64_t train_end = train_level_start + train_num_levels;
    const std::int64_t eval_end = eval_level_start + eval_num_levels;
    if (train_level_start < eval_end && eval_level_start < train_end) {
      errors.push_back("training levels [" + std::to_string(train_level_start) + ", " +
                       std::to_string(train_end) + ") overlap the held-out levels [" +
                       std::to_string(eval_level_start) + ", " + std::to_string(eval_end) +
                       "); move eval_level_start to " + std::to_string(train_end) +
                       " or beyond so held-out returns measure generalisation");
    }
  }
};

// Which seed set an environment draws from.
enum class LevelSet { kTrain, kEval };

// Builds `num_envs` copies. For cartpole/pendulum the level set changes nothing (seeds do).
std::unique_ptr<VecEnv> make_vec_env(const EnvConfig& config, int num_envs, LevelSet set);

}  // namespace scaletune::envs
