// CartPole-v1 dynamics and the vectorized loop (see cartpole.h).
#include "trainer/envs/cartpole.h"

#include <cassert>
#include <cmath>

namespace scaletune::envs {

CartPoleState cartpole_dynamics(const CartPoleState& s, int action) {
  using P = CartPoleParams;
  const double force = action == 1 ? P::kForceMag : -P::kForceMag;
  const double cos_t = std::cos(s.theta);
  const double sin_t = std::sin(s.theta);
  // Florian 2007, "Correct equations for the dynamics of the cart-pole system" (frictionless).
  const double temp =
      (force + P::kPoleMassLength * s.theta_dot * s.theta_dot * sin_t) / P::kTotalMass;
  const double theta_acc =
      (P::kGravity * sin_t - cos_t * temp) /
      (P::kHalfLength * (4.0 / 3.0 - P::kMassPole * cos_t * cos_t / P::kTotalMass));
  const double x_acc = temp - P::kPoleMassLength * theta_acc * cos_t / P::kTotalMass;
  CartPoleState n;
  n.x = s.x + P::kTau * s.x_dot;
  n.x_dot = s.x_dot + P::kTau * x_acc;
  n.theta = s.theta + P::kTau * s.theta_dot;
  n.theta_dot = s.theta_dot + P::kTau * theta_acc;
  return n;
}

bool cartpole_terminated(const CartPoleState& s) {
  using P = CartPoleParams;
  return s.x < -P::kXThreshold || s.x > P::kXThreshold || s.theta < -P::kThetaThreshold ||
         s.theta > P::kThetaThreshold;
}

namespace {
void write_obs(const CartPoleState& s, float* obs) {
  obs[0] = static_cast<float>(s.x);
  obs[1] = static_cast<float>(s.x_dot);
  obs[2] = static_cast<float>(s.theta);
  obs[3] = static_cast<float>(s.theta_dot);
}
}  // namespace

CartPole::CartPole(int num_envs, int max_episode_steps)
    : VecEnv(num_envs), state_(num_envs), elapsed_(num_envs, 0), rng_(num_envs) {
  spec_.name = "cartpole";
  spec_.obs_dim = 4;
  spec_.discrete = true;
  spec_.num_actions = 2;
  spec_.max_episode_steps = max_episode_steps;
}

void CartPole::reset_one(int i, float* obs) {
  Rng& r = rng_[i];
  // Gymnasium: every state variable uniform in [-0.05, 0.05).
  state_[i] = {r.uniform(-0.05, 0.05), r.uniform(-0.05, 0.05), r.uniform(-0.05, 0.05),
               r.uniform(-0.05, 0.05)};
  elapsed_[i] = 0;
  write_obs(state_[i], obs);
}

void CartPole::reset(std::uint64_t seed, const VecBuffers& b) {
  clear_episodes();
  for (int i = 0; i < num_envs_; ++i) {
    rng_[i] = Rng(derive_seed(seed, static_cast<std::uint64_t>(i)));
    reset_one(i, b.observations + 4 * i);
  }
}

void CartPole::step(const VecBuffers& b) {
  assert(b.discrete_actions && "CartPole needs discrete_actions");
  for (int i = 0; i < num_envs_; ++i) {
    const std::int64_t a = b.discrete_actions[i];
    assert((a == 0 || a == 1) && "CartPole actions are 0 or 1");
    state_[i] = cartpole_dynamics(state_[i], static_cast<int>(a));
    elapsed_[i] += 1;
    const bool terminated = cartpole_terminated(state_[i]);
    const bool truncated = elapsed_[i] >= spec_.max_episode_steps;
    b.rewards[i] = 1.0f;
    b.terminations[i] = terminated;
    b.truncations[i] = truncated;
    record(i, 1.0f, terminated || truncated);
    if (terminated || truncated) {
      if (b.final_observations) write_obs(state_[i], b.final_observations + 4 * i);
      reset_one(i, b.observations + 4 * i);
    } else {
      write_obs(state_[i], b.observations + 4 * i);
    }
  }
}

}  // namespace scaletune::envs
