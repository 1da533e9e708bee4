// Maze: a procedurally generated family of levels, in the spirit of ProcGen's `maze` (Cobbe et
// al. 2020), small enough for an MLP. Level `id` fixes the layout (a perfect maze carved by a
// randomized depth-first search from a seed derived from the id alone) and the goal cell; the
// agent starts in the top-left cell. Actions: 0 up, 1 down, 2 left, 3 right; walking into a wall
// does nothing. Reward 1 on reaching the goal (terminated); truncated after max_episode_steps.
//
// Level sets: every reset draws a level uniformly from [level_start, level_start + num_levels)
// with the environment's own RNG. Train on one range, evaluate on a disjoint range, and the
// difference measures generalisation, as ProcGen's 200 training levels vs. the full distribution.
//
// Observation: the (2c-1) x (2c-1) tile grid of a c x c maze in three planes, flattened:
// walls (1 = wall), agent (one-hot), goal (one-hot).
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/envs/vec_env.h"

namespace scaletune::envs {

struct MazeOptions {
  int cells = 5;                  // the maze is cells x cells
  std::int64_t level_start = 0;   // first level id of the set
  std::int64_t num_levels = 200;  // size of the level set
  int max_episode_steps = 100;
};

// One level: tiles (side x side, 1 = wall) and the goal tile; the agent starts at tile 0.
struct MazeLevel {
  int side = 0;
  std::vector<std::uint8_t> walls;
  int goal = 0;
};
// Generates level `id` (exposed for tests; the environment generates into preallocated buffers).
MazeLevel maze_level(int cells, std::int64_t id);

class Maze final : public VecEnv {
 public:
  Maze(int num_envs, const MazeOptions& options);
  const EnvSpec& spec() const override { return spec_; }
  void reset(std::uint64_t seed, const VecBuffers& b) override;
  void step(const VecBuffers& b) override;

  std::int64_t level(int i) const { return level_[i]; }
  int agent(int i) const { return agent_[i]; }
  int goal(int i) const { return goal_[i]; }

 private:
  void reset_one(int i, float* obs);
  void write_obs(int i, float* obs) const;
  EnvSpec spec_;
  MazeOptions options_;
  int side_;
  std::vector<std::uint8_t> walls_;  // (N, side*side)
  std::vector<int> agent_, goal_, elapsed_;
  std::vector<std::int64_t> level_;
  std::vector<Rng> rng_;
  std::vector<int> stack_;             // DFS scratch, one maze at a time
  std::vector<std::uint8_t> visited_;  // DFS scratch
};

}  // namespace scaletune::envs
