// Pendulum, the same environment as Gymnasium's Pendulum-v1: swing a pendulum up and keep it
// upright with a torque in [-2, 2]. Observation (cos theta, sin theta, theta_dot); reward
// -(normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2); never terminates, truncated after 200
// steps. Start state: theta uniform in [-pi, pi), theta_dot uniform in [-1, 1).
#pragma once

#include <vector>

#include "trainer/envs/vec_env.h"

namespace scaletune::envs {

struct PendulumState {
  double theta = 0, theta_dot = 0;
};

struct PendulumParams {
  static constexpr double kMaxSpeed = 8.0;
  static constexpr double kMaxTorque = 2.0;
  static constexpr double kDt = 0.05;
  static constexpr double kGravity = 10.0;
  static constexpr double kMass = 1.0;
  static constexpr double kLength = 1.0;
  static constexpr int kMaxSteps = 200;
};

// Angle wrapped into [-pi, pi) like Gymnasium's angle_normalize (Python's modulo).
double pendulum_angle_normalize(double x);
// One step: the new state and the reward of taking torque `u` (clipped to the bound) in `s`.
PendulumState pendulum_dynamics(const PendulumState& s, double u, double* reward);

class Pendulum final : public VecEnv {
 public:
  explicit Pendulum(int num_envs, int max_episode_steps = PendulumParams::kMaxSteps);
  const EnvSpec& spec() const override { return spec_; }
  void reset(std::uint64_t seed, const VecBuffers& b) override;
  void step(const VecBuffers& b) override;

  PendulumState& state(int i) { return state_[i]; }

 private:
  void reset_one(int i, float* obs);
  EnvSpec spec_;
  std::vector<PendulumState> state_;
  std::vector<int> elapsed_;
  std::vector<Rng> rng_;
};

}  // namespace scaletune::envs
