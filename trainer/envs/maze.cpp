// Maze level generation and the vectorized loop (see maze.h).
#include "trainer/envs/maze.h"

#include <algorithm>
#include <cassert>

namespace scaletune::envs {
namespace {

// Seed of level `id`: a fixed function of the id, so a level is the same in every run.
constexpr std::uint64_t kLevelSalt = 0x6D617A656C76ull;  // "mazelv"

// Carves a perfect maze of cells x cells into `walls` (side x side tiles, side = 2 cells - 1) with
// a randomized depth-first search (recursive backtracker, iterative with an explicit stack), and
// returns the goal tile. `stack` and `visited` are scratch of cells^2 entries.
int generate(int cells, std::int64_t id, std::uint8_t* walls, int* stack, std::uint8_t* visited) {
  const int side = 2 * cells - 1;
  Rng rng(derive_seed(kLevelSalt, static_cast<std::uint64_t>(id)));
  std::fill(walls, walls + side * side, std::uint8_t{1});
  std::fill(visited, visited + cells * cells, std::uint8_t{0});
  int top = 0;
  stack[top++] = 0;
  visited[0] = 1;
  walls[0] = 0;
  static constexpr int kDr[4] = {-1, 1, 0, 0};
  static constexpr int kDc[4] = {0, 0, -1, 1};
  while (top > 0) {
    const int cell = stack[top - 1];
    const int r = cell / cells, c = cell % cells;
    int options[4];
    int n = 0;
    for (int d = 0; d < 4; ++d) {
      const int nr = r + kDr[d], nc = c + kDc[d];
      if (nr >= 0 && nr < cells && nc >= 0 && nc < cells && !visited[nr * cells + nc])
        options[n++] = d;
    }
    if (n == 0) {
      --top;
      continue;
    }
    const int d = options[rng.below(static_cast<std::uint64_t>(n))];
    const int nr = r + kDr[d], nc = c + kDc[d];
    walls[(2 * r + kDr[d]) * side + (2 * c + kDc[d])] = 0;  // the wall between the two cells
    walls[(2 * nr) * side + 2 * nc] = 0;
    visited[nr * cells + nc] = 1;
    stack[top++] = nr * cells + nc;
  }
  const int goal_cell =
      1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(cells * cells - 1)));
  return (2 * (goal_cell / cells)) * side + 2 * (goal_cell % cells);
}

}  // namespace

MazeLevel maze_level(int cells, std::int64_t id) {
  MazeLevel level;
  level.side = 2 * cells - 1;
  level.walls.resize(static_cast<size_t>(level.side * level.side));
  std::vector<int> stack(static_cast<size_t>(cells * cells));
  std::vector<std::uint8_t> visited(static_cast<size_t>(cells * cells));
  level.goal = generate(cells, id, level.walls.data(), stack.data(), visited.data());
  return level;
}

Maze::Maze(int num_envs, const MazeOptions& options)
    : VecEnv(num_envs),
      options_(options),
      side_(2 * options.cells - 1),
      walls_(static_cast<size_t>(num_envs) * static_cast<size_t>(side_ * side_)),
      agent_(num_envs, 0),
      goal_(num_envs, 0),
      elapsed_(num_envs, 0),
      level_(num_envs, 0),
      rng_(num_envs),
      stack_(static_cast<size_t>(options.cells * options.cells)),
      visited_(static_cast<size_t>(options.cells * options.cells)) {
  assert(options.cells >= 2 && options.num_levels >= 1 && options.max_episode_steps >= 1);
  spec_.name = "maze";
  spec_.obs_dim = 3 * side_ * side_;
  spec_.discrete = true;
  spec_.num_actions = 4;
  spec_.max_episode_steps = options.max_episode_steps;
}

void Maze::write_obs(int i, float* obs) const {
  const int tiles = side_ * side_;
  const std::uint8_t* w = walls_.data() + static_cast<size_t>(i) * tiles;
  for (int t = 0; t < tiles; ++t) obs[t] = w[t];
  std::fill(obs + tiles, obs + 3 * tiles, 0.0f);
  obs[tiles + agent_[i]] = 1.0f;
  obs[2 * tiles + goal_[i]] = 1.0f;
}

void Maze::reset_one(int i, float* obs) {
  level_[i] =
      options_.level_start +
      static_cast<std::int64_t>(rng_[i].below(static_cast<std::uint64_t>(options_.num_levels)));
  goal_[i] = generate(options_.cells, level_[i],
                      walls_.data() + static_cast<size_t>(i) * static_cast<size_t>(side_ * side_),
                      stack_.data(), visited_.data());
  agent_[i] = 0;
  elapsed_[i] = 0;
  write_obs(i, obs);
}

void Maze::reset(std::uint64_t seed, const VecBuffers& b) {
  clear_episodes();
  for (int i = 0; i < num_envs_; ++i) {
    rng_[i] = Rng(derive_seed(seed, static_cast<std::uint64_t>(i)));
    reset_one(i, b.observations + static_cast<size_t>(i) * spec_.obs_dim);
  }
}

void Maze::step(const VecBuffers& b) {
  assert(b.discrete_actions && "Maze needs discrete_actions");
  const int tiles = side_ * side_;
  for (int i = 0; i < num_envs_; ++i) {
    const std::int64_t a = b.discrete_actions[i];
    assert(a >= 0 && a < 4 && "Maze actions are 0..3");
    const int r = agent_[i] / side_, c = agent_[i] % side_;
    const int nr = r + (a == 0 ? -1 : a == 1 ? 1 : 0);
    const int nc = c + (a == 2 ? -1 : a == 3 ? 1 : 0);
    float* obs = b.observations + static_cast<size_t>(i) * spec_.obs_dim;
    if (nr >= 0 && nr < side_ && nc >= 0 && nc < side_ &&
        !walls_[static_cast<size_t>(i) * tiles + nr * side_ + nc]) {
      agent_[i] = nr * side_ + nc;
    }
    elapsed_[i] += 1;
    const bool terminated = agent_[i] == goal_[i];
    const bool truncated = elapsed_[i] >= spec_.max_episode_steps;  // as Gymnasium's TimeLimit
    const float reward = terminated ? 1.0f : 0.0f;
    b.rewards[i] = reward;
    b.terminations[i] = terminated;
    b.truncations[i] = truncated;
    record(i, reward, terminated || truncated);
    if (terminated || truncated) {
      if (b.final_observations)
        write_obs(i, b.final_observations + static_cast<size_t>(i) * spec_.obs_dim);
      reset_one(i, obs);
    } else {
      write_obs(i, obs);  // the caller's buffer may be a fresh row each step: write all of it
    }
  }
}

}  // namespace scaletune::envs
