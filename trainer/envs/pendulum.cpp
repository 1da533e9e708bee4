// Pendulum-v1 dynamics and the vectorized loop (see pendulum.h).
#include "trainer/envs/pendulum.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace scaletune::envs {

namespace {
constexpr double kPi = 3.14159265358979323846;

void write_obs(const PendulumState& s, float* obs) {
  obs[0] = static_cast<float>(std::cos(s.theta));
  obs[1] = static_cast<float>(std::sin(s.theta));
  obs[2] = static_cast<float>(s.theta_dot);
}
}  // namespace

double pendulum_angle_normalize(double x) {
  // Python: ((x + pi) % (2 pi)) - pi, where % takes the sign of the divisor.
  double m = std::fmod(x + kPi, 2.0 * kPi);
  if (m < 0) m += 2.0 * kPi;
  return m - kPi;
}

PendulumState pendulum_dynamics(const PendulumState& s, double u, double* reward) {
  using P = PendulumParams;
  u = std::clamp(u, -P::kMaxTorque, P::kMaxTorque);
  const double th = pendulum_angle_normalize(s.theta);
  *reward = -(th * th + 0.1 * s.theta_dot * s.theta_dot + 0.001 * u * u);
  double theta_dot = s.theta_dot + (3.0 * P::kGravity / (2.0 * P::kLength) * std::sin(s.theta) +
                                    3.0 / (P::kMass * P::kLength * P::kLength) * u) *
                                       P::kDt;
  theta_dot = std::clamp(theta_dot, -P::kMaxSpeed, P::kMaxSpeed);
  return {s.theta + theta_dot * P::kDt, theta_dot};
}

Pendulum::Pendulum(int num_envs, int max_episode_steps)
    : VecEnv(num_envs), state_(num_envs), elapsed_(num_envs, 0), rng_(num_envs) {
  spec_.name = "pendulum";
  spec_.obs_dim = 3;
  spec_.discrete = false;
  spec_.action_dim = 1;
  spec_.action_low = -static_cast<float>(PendulumParams::kMaxTorque);
  spec_.action_high = static_cast<float>(PendulumParams::kMaxTorque);
  spec_.max_episode_steps = max_episode_steps;
}

void Pendulum::reset_one(int i, float* obs) {
  state_[i] = {rng_[i].uniform(-kPi, kPi), rng_[i].uniform(-1.0, 1.0)};
  elapsed_[i] = 0;
  write_obs(state_[i], obs);
}

void Pendulum::reset(std::uint64_t seed, const VecBuffers& b) {
  clear_episodes();
  for (int i = 0; i < num_envs_; ++i) {
    rng_[i] = Rng(derive_seed(seed, static_cast<std::uint64_t>(i)));
    reset_one(i, b.observations + 3 * i);
  }
}

void Pendulum::step(const VecBuffers& b) {
  assert(b.continuous_actions && "Pendulum needs continuous_actions");
  for (int i = 0; i < num_envs_; ++i) {
    double reward = 0.0;
    state_[i] = pendulum_dynamics(state_[i], b.continuous_actions[i], &reward);
    elapsed_[i] += 1;
    const bool truncated = elapsed_[i] >= spec_.max_episode_steps;
    b.rewards[i] = static_cast<float>(reward);
    b.terminations[i] = 0;
    b.truncations[i] = truncated;
    record(i, static_cast<float>(reward), truncated);
    if (truncated) {
      if (b.final_observations) write_obs(state_[i], b.final_observations + 3 * i);
      reset_one(i, b.observations + 3 * i);
    } else {
      write_obs(state_[i], b.observations + 3 * i);
    }
  }
}

}  // namespace scaletune::envs
