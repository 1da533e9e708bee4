// Environments against hand-computed steps and Gymnasium's termination rules, and the
// vectorized contract (auto-reset, seeding, statistics, no allocation per step) for every env.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <new>
#include <set>
#include <vector>

#include "trainer/envs/cartpole.h"
#include "trainer/envs/make_env.h"
#include "trainer/envs/maze.h"
#include "trainer/envs/pendulum.h"

// Counts heap allocations so the tests can check that step() makes none. GCC 12 mistakes the
// replaced global operator delete for a mismatched free.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace scaletune::envs {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Owns buffers of the right shapes for one VecEnv.
struct Buffers {
  explicit Buffers(const VecEnv& env)
      : obs(static_cast<size_t>(env.num_envs() * env.spec().obs_dim)),
        discrete(static_cast<size_t>(env.num_envs()), 0),
        continuous(static_cast<size_t>(env.num_envs() * std::max(1, env.spec().action_dim)), 0.f),
        rewards(static_cast<size_t>(env.num_envs())),
        terms(static_cast<size_t>(env.num_envs())),
        truncs(static_cast<size_t>(env.num_envs())) {}
  VecBuffers view() {
    return {obs.data(),     discrete.data(), continuous.data(),
            rewards.data(), terms.data(),    truncs.data()};
  }
  std::vector<float> obs;
  std::vector<std::int64_t> discrete;
  std::vector<float> continuous;
  std::vector<float> rewards;
  std::vector<std::uint8_t> terms, truncs;
};

TEST(CartPole, OneStepMatchesHandComputedDynamics) {
  // From rest, push right: temp = 10/1.1, theta_acc = -temp / (0.5 (4/3 - 0.1/1.1)),
  // x_acc = temp - 0.05 theta_acc / 1.1; Euler uses the old velocities for the positions.
  const CartPoleState s1 = cartpole_dynamics({0, 0, 0, 0}, 1);
  const double temp = 10.0 / 1.1;
  const double theta_acc = -temp / (0.5 * (4.0 / 3.0 - 0.1 / 1.1));
  const double x_acc = temp - 0.05 * theta_acc / 1.1;
  EXPECT_NEAR(theta_acc, -14.6341463, 1e-6);
  EXPECT_NEAR(x_acc, 9.7560976, 1e-6);
  EXPECT_DOUBLE_EQ(s1.x, 0.0);
  EXPECT_DOUBLE_EQ(s1.theta, 0.0);
  EXPECT_NEAR(s1.x_dot, 0.19512195, 1e-8);
  EXPECT_NEAR(s1.theta_dot, -0.29268293, 1e-8);
  const CartPoleState s2 = cartpole_dynamics(s1, 0);
  EXPECT_NEAR(s2.x, 0.02 * 0.19512195, 1e-9);
  EXPECT_NEAR(s2.theta, 0.02 * -0.29268293, 1e-9);
  // Push left from rest mirrors push right.
  const CartPoleState m = cartpole_dynamics({0, 0, 0, 0}, 0);
  EXPECT_DOUBLE_EQ(m.x_dot, -s1.x_dot);
  EXPECT_DOUBLE_EQ(m.theta_dot, -s1.theta_dot);
}

TEST(CartPole, GravityPullsATiltedPole) {
  // A pole tilted right keeps falling right under either push, faster when the cart moves left.
  const CartPoleState left = cartpole_dynamics({0, 0, 0.1, 0}, 0);
  const CartPoleState right = cartpole_dynamics({0, 0, 0.1, 0}, 1);
  EXPECT_GT(left.theta_dot, right.theta_dot);
  EXPECT_GT(left.theta_dot, 0.0);
}

TEST(CartPole, TerminationThresholds) {
  const double limit = 12.0 * 2.0 * kPi / 360.0;
  EXPECT_FALSE(cartpole_terminated({2.4, 0, 0, 0}));
  EXPECT_TRUE(cartpole_terminated({2.4000001, 0, 0, 0}));
  EXPECT_TRUE(cartpole_terminated({-2.4000001, 0, 0, 0}));
  EXPECT_FALSE(cartpole_terminated({0, 0, limit, 0}));
  EXPECT_TRUE(cartpole_terminated({0, 0, limit + 1e-9, 0}));
  EXPECT_TRUE(cartpole_terminated({0, 0, -limit - 1e-9, 0}));
  EXPECT_FALSE(cartpole_terminated({0, 100, 0, 100}));  // velocities never terminate
}

TEST(CartPole, TerminatingStepPaysOneAndAutoResets) {
  CartPole env(1);
  Buffers b(env);
  env.reset(7, b.view());
  env.state(0) = {2.399, 1.0, 0.0, 0.0};  // x passes 2.4 after one step
  b.discrete[0] = 1;
  env.step(b.view());
  EXPECT_EQ(b.terms[0], 1);
  EXPECT_EQ(b.truncs[0], 0);
  EXPECT_EQ(b.rewards[0], 1.0f);
  for (int k = 0; k < 4; ++k) EXPECT_LE(std::fabs(b.obs[k]), 0.05f);  // the reset observation
  EXPECT_EQ(env.elapsed(0), 0);
  EXPECT_EQ(env.stats().episodes, 1);
}

TEST(CartPole, TruncatesAt500Steps) {
  CartPole env(1);
  Buffers b(env);
  env.reset(1, b.view());
  for (int t = 1; t <= 500; ++t) {
    env.state(0) = {0, 0, 0, 0};  // hold the pole upright so only the time limit can end it
    b.discrete[0] = t % 2;
    env.step(b.view());
    ASSERT_EQ(b.terms[0], 0) << "step " << t;
    ASSERT_EQ(b.truncs[0], t == 500 ? 1 : 0) << "step " << t;
  }
  const EpisodeStats s = env.take_stats();
  EXPECT_EQ(s.episodes, 1);
  EXPECT_DOUBLE_EQ(s.mean_return(), 500.0);
  EXPECT_DOUBLE_EQ(s.mean_length(), 500.0);
  EXPECT_EQ(env.stats().episodes, 0);  // take_stats starts a new window
}

TEST(CartPole, ResetIsUniformInFiveHundredthsAndSeeded) {
  CartPole a(64), b(64);
  Buffers ba(a), bb(b);
  a.reset(3, ba.view());
  b.reset(3, bb.view());
  EXPECT_EQ(ba.obs, bb.obs);
  for (float v : ba.obs) EXPECT_LE(std::fabs(v), 0.05f);
  std::set<float> distinct(ba.obs.begin(), ba.obs.end());
  EXPECT_EQ(distinct.size(), ba.obs.size());  // every environment has its own stream
  b.reset(4, bb.view());
  EXPECT_NE(ba.obs, bb.obs);
}

TEST(Pendulum, HandComputedSteps) {
  double r = 0;
  // Upright, torque 1: cost 0.001 u^2; theta_dot = 3 u dt = 0.15; theta = 0.15 dt.
  PendulumState s = pendulum_dynamics({0.0, 0.0}, 1.0, &r);
  EXPECT_NEAR(r, -0.001, 1e-12);
  EXPECT_NEAR(s.theta_dot, 0.15, 1e-12);
  EXPECT_NEAR(s.theta, 0.0075, 1e-12);
  // Horizontal, no torque: cost (pi/2)^2; gravity gives 15 dt = 0.75.
  s = pendulum_dynamics({kPi / 2, 0.0}, 0.0, &r);
  EXPECT_NEAR(r, -(kPi / 2) * (kPi / 2), 1e-12);
  EXPECT_NEAR(s.theta_dot, 0.75, 1e-12);
  EXPECT_NEAR(s.theta, kPi / 2 + 0.0375, 1e-12);
  // Torque clipped to 2 (cost uses the clipped torque), speed clipped to 8.
  s = pendulum_dynamics({kPi / 2, 7.9}, 5.0, &r);
  EXPECT_NEAR(r, -((kPi / 2) * (kPi / 2) + 0.1 * 7.9 * 7.9 + 0.001 * 4.0), 1e-12);
  EXPECT_DOUBLE_EQ(s.theta_dot, 8.0);
  EXPECT_NEAR(s.theta, kPi / 2 + 0.4, 1e-12);
  // Costs use the wrapped angle.
  pendulum_dynamics({2 * kPi + 0.5, 0.0}, 0.0, &r);
  EXPECT_NEAR(r, -0.25, 1e-12);
}

TEST(Pendulum, AngleNormalizeIsPythonModulo) {
  EXPECT_NEAR(pendulum_angle_normalize(3 * kPi / 2), -kPi / 2, 1e-12);
  EXPECT_NEAR(pendulum_angle_normalize(-3 * kPi / 2), kPi / 2, 1e-12);
  EXPECT_NEAR(pendulum_angle_normalize(kPi), -kPi, 1e-12);
  EXPECT_NEAR(pendulum_angle_normalize(0.3), 0.3, 1e-12);
}

TEST(Pendulum, NeverTerminatesTruncatesAt200) {
  Pendulum env(2);
  Buffers b(env);
  env.reset(0, b.view());
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(b.obs[3 * k] * b.obs[3 * k] + b.obs[3 * k + 1] * b.obs[3 * k + 1], 1.0, 1e-6);
    EXPECT_LE(std::fabs(b.obs[3 * k + 2]), 1.0f);
  }
  for (int t = 1; t <= 400; ++t) {
    b.continuous[0] = 2.0f;
    b.continuous[1] = -2.0f;
    env.step(b.view());
    for (int k = 0; k < 2; ++k) {
      ASSERT_EQ(b.terms[k], 0);
      ASSERT_EQ(b.truncs[k], t % 200 == 0 ? 1 : 0) << "step " << t;
      ASSERT_LE(b.rewards[k], 0.0f);
      ASSERT_GE(b.rewards[k], -(kPi * kPi + 0.1 * 64 + 0.001 * 4) - 1e-5);
    }
  }
  EXPECT_EQ(env.stats().episodes, 4);
  EXPECT_DOUBLE_EQ(env.stats().mean_length(), 200.0);
}

// Shortest path from the start to the goal in a level (BFS over open tiles), as actions.
std::vector<std::int64_t> solve(const MazeLevel& level) {
  const int side = level.side;
  std::vector<int> prev(static_cast<size_t>(side * side), -1);
  std::vector<int> how(static_cast<size_t>(side * side), -1);
  std::deque<int> q{0};
  prev[0] = 0;
  const int dr[4] = {-1, 1, 0, 0}, dc[4] = {0, 0, -1, 1};
  while (!q.empty()) {
    const int t = q.front();
    q.pop_front();
    for (int a = 0; a < 4; ++a) {
      const int r = t / side + dr[a], c = t % side + dc[a];
      if (r < 0 || r >= side || c < 0 || c >= side) continue;
      const int n = r * side + c;
      if (level.walls[n] || prev[n] != -1) continue;
      prev[n] = t;
      how[n] = a;
      q.push_back(n);
    }
  }
  std::vector<std::int64_t> actions;
  if (prev[level.goal] == -1) return actions;
  for (int t = level.goal; t != 0; t = prev[t]) actions.insert(actions.begin(), how[t]);
  return actions;
}

TEST(Maze, LevelsArePerfectMazesFixedByTheirId) {
  for (int cells : {2, 5, 8}) {
    for (std::int64_t id : {0, 1, 17, 123456}) {
      const MazeLevel level = maze_level(cells, id);
      const int side = 2 * cells - 1;
      int open = 0;
      for (auto w : level.walls) open += w == 0;
      // A spanning tree of cells^2 cells has cells^2 - 1 corridors, one tile each.
      EXPECT_EQ(open, 2 * cells * cells - 1);
      const int gr = level.goal / side, gc = level.goal % side;
      EXPECT_EQ(gr % 2, 0);
      EXPECT_EQ(gc % 2, 0);
      EXPECT_NE(level.goal, 0);
      EXPECT_FALSE(solve(level).empty()) << "goal unreachable in level " << id;
      EXPECT_EQ(maze_level(cells, id).walls, level.walls);  // deterministic
    }
  }
  int differ = 0;
  for (std::int64_t id = 1; id < 20; ++id)
    differ += maze_level(5, id).walls != maze_level(5, 0).walls;
  EXPECT_GE(differ, 18);
}

TEST(Maze, ShortestPathReachesTheGoalWallsBlock) {
  MazeOptions o;
  o.cells = 5;
  o.level_start = 42;
  o.num_levels = 1;
  o.max_episode_steps = 1000;
  Maze env(1, o);
  Buffers b(env);
  env.reset(0, b.view());
  ASSERT_EQ(env.level(0), 42);
  const MazeLevel level = maze_level(5, 42);
  const int tiles = level.side * level.side;
  for (int t = 0; t < tiles; ++t) EXPECT_EQ(b.obs[t], static_cast<float>(level.walls[t]));
  EXPECT_EQ(b.obs[tiles + 0], 1.0f);
  EXPECT_EQ(b.obs[2 * tiles + level.goal], 1.0f);
  // Up from the top-left corner is the outer wall: the agent stays put.
  b.discrete[0] = 0;
  env.step(b.view());
  EXPECT_EQ(env.agent(0), 0);
  EXPECT_EQ(b.rewards[0], 0.0f);
  const auto path = solve(level);
  for (size_t k = 0; k < path.size(); ++k) {
    b.discrete[0] = path[k];
    env.step(b.view());
    const bool last = k + 1 == path.size();
    ASSERT_EQ(b.terms[0], last ? 1 : 0) << "move " << k;
    ASSERT_EQ(b.rewards[0], last ? 1.0f : 0.0f);
  }
  EXPECT_EQ(env.stats().episodes, 1);
  EXPECT_DOUBLE_EQ(env.stats().mean_return(), 1.0);
  EXPECT_DOUBLE_EQ(env.stats().mean_length(), static_cast<double>(path.size() + 1));
  EXPECT_EQ(env.agent(0), 0);  // reset to the start of the next episode
}

TEST(Maze, TrainAndEvalLevelSetsAreDisjoint) {
  EnvConfig c;
  c.id = "maze";
  c.train_level_start = 0;
  c.train_num_levels = 10;
  c.eval_level_start = 10;
  c.eval_num_levels = 10;
  std::vector<std::string> errors;
  c.validate(errors);
  EXPECT_TRUE(errors.empty());
  auto train = make_vec_env(c, 16, LevelSet::kTrain);
  auto eval = make_vec_env(c, 16, LevelSet::kEval);
  Buffers bt(*train), be(*eval);
  train->reset(5, bt.view());
  eval->reset(5, be.view());
  auto& mt = static_cast<Maze&>(*train);
  auto& me = static_cast<Maze&>(*eval);
  for (int k = 0; k < 500; ++k) {  // random walks cross many resets
    for (int i = 0; i < 16; ++i) bt.discrete[i] = be.discrete[i] = (k * 7 + i * 3) % 4;
    train->step(bt.view());
    eval->step(be.view());
    for (int i = 0; i < 16; ++i) {
      ASSERT_LT(mt.level(i), 10);
      ASSERT_GE(me.level(i), 10);
      ASSERT_LT(me.level(i), 20);
    }
  }
  c.eval_level_start = 5;
  c.validate(errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("overlap"), std::string::npos);
}

// The vectorized contract, for every environment.
class EveryEnv : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryEnv, StepsWithoutAllocatingAndCountsEpisodes) {
  EnvConfig c;
  c.id = GetParam();
  auto env = make_vec_env(c, 8, LevelSet::kTrain);
  Buffers b(*env);
  env->reset(11, b.view());
  Rng rng(1);
  long dones = 0;
  double reward_sum = 0;
  const long before = g_allocations.load();
  for (int t = 0; t < 2000; ++t) {
    for (int i = 0; i < 8; ++i) {
      b.discrete[i] = static_cast<std::int64_t>(rng.below(std::max(1, env->spec().num_actions)));
      b.continuous[i] = static_cast<float>(rng.uniform(-3, 3));
    }
    env->step(b.view());
    for (int i = 0; i < 8; ++i) {
      dones += b.terms[i] || b.truncs[i];
      reward_sum += b.rewards[i];
      ASSERT_TRUE(std::isfinite(b.rewards[i]));
    }
    for (float v : b.obs) ASSERT_TRUE(std::isfinite(v));
  }
  EXPECT_EQ(g_allocations.load(), before) << "step() allocated";
  EXPECT_EQ(env->stats().episodes, dones);
  EXPECT_GT(dones, 0);
  EXPECT_LE(env->stats().length_sum, 2000.0 * 8);
  // Returns of finished episodes are part of all rewards handed out.
  if (GetParam() != "pendulum") {
    EXPECT_LE(env->stats().return_sum, reward_sum + 1e-6);
  }
}

TEST_P(EveryEnv, SameSeedSameTrajectory) {
  EnvConfig c;
  c.id = GetParam();
  auto a = make_vec_env(c, 4, LevelSet::kTrain);
  auto b = make_vec_env(c, 4, LevelSet::kTrain);
  Buffers ba(*a), bb(*b);
  a->reset(99, ba.view());
  b->reset(99, bb.view());
  for (int t = 0; t < 300; ++t) {
    for (int i = 0; i < 4; ++i) {
      ba.discrete[i] = bb.discrete[i] = (t + i) % std::max(1, a->spec().num_actions);
      ba.continuous[i] = bb.continuous[i] = static_cast<float>((t % 5) - 2);
    }
    a->step(ba.view());
    b->step(bb.view());
    ASSERT_EQ(ba.obs, bb.obs);
    ASSERT_EQ(ba.rewards, bb.rewards);
  }
}

TEST_P(EveryEnv, FinalObservationIsWhereTheEpisodeWouldHaveContinued) {
  // `a` truncates at 40 steps and reports final observations; `b` is the same environment with a
  // limit of 1000, so at a's truncation b's observation is the state a's episode ended in.
  EnvConfig c;
  c.id = GetParam();
  c.max_episode_steps = 40;
  auto a = make_vec_env(c, 6, LevelSet::kTrain);
  c.max_episode_steps = 1000;
  auto b = make_vec_env(c, 6, LevelSet::kTrain);
  const int dim = a->spec().obs_dim;
  Buffers ba(*a), bb(*b);
  std::vector<float> final_a(ba.obs.size()), final_b(bb.obs.size());
  VecBuffers va = ba.view(), vb = bb.view();
  va.final_observations = final_a.data();
  vb.final_observations = final_b.data();
  a->reset(5, va);
  b->reset(5, vb);
  std::vector<bool> checked(6, false);
  int truncations = 0;
  for (int t = 0; t < 40; ++t) {
    std::fill(final_a.begin(), final_a.end(), NAN);
    for (int i = 0; i < 6; ++i) {
      ba.discrete[i] = bb.discrete[i] = (t * 5 + i) % std::max(1, a->spec().num_actions);
      ba.continuous[i] = bb.continuous[i] = static_cast<float>(((t + i) % 5) - 2);
    }
    a->step(va);
    b->step(vb);
    for (int i = 0; i < 6; ++i) {
      const float* fa = final_a.data() + i * dim;
      if (!(ba.terms[i] || ba.truncs[i])) {
        ASSERT_TRUE(std::isnan(fa[0])) << "row " << i << " written though its episode goes on";
        continue;
      }
      if (checked[i]) continue;
      checked[i] = true;
      const bool truncated = ba.truncs[i] && !ba.terms[i];
      truncations += truncated;
      const float* expect = truncated ? bb.obs.data() + i * dim : final_b.data() + i * dim;
      for (int d = 0; d < dim; ++d) ASSERT_EQ(fa[d], expect[d]) << "env " << i << " dim " << d;
    }
  }
  EXPECT_GT(truncations, 0);
}

INSTANTIATE_TEST_SUITE_P(Envs, EveryEnv, ::testing::Values("cartpole", "pendulum", "maze"));

TEST(MakeEnv, UnknownIdAndBadCountAreErrors) {
  EnvConfig c;
  c.id = "atari";
  EXPECT_THROW(make_vec_env(c, 1, LevelSet::kTrain), std::invalid_argument);
  c.id = "cartpole";
  EXPECT_THROW(make_vec_env(c, 0, LevelSet::kTrain), std::invalid_argument);
  c.max_episode_steps = 50;
  EXPECT_EQ(make_vec_env(c, 1, LevelSet::kTrain)->spec().max_episode_steps, 50);
}

}  // namespace
}  // namespace scaletune::envs
