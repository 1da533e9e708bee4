// CartPole, the same environment as Gymnasium's CartPole-v1 (Barto, Sutton & Anderson 1983):
// a pole on a cart, push left (0) or right (1) with 10 N; +1 reward every step, the terminating
// step included; terminated when |x| > 2.4 or |theta| > 12 degrees, truncated after 500 steps.
// State is double precision and integrated with explicit Euler (tau = 0.02 s), as Gymnasium does;
// observations are the state cast to float32: (x, x_dot, theta, theta_dot).
#pragma once

#include <array>
#include <vector>

#include "trainer/envs/vec_env.h"

namespace scaletune::envs {

struct CartPoleState {
  double x = 0, x_dot = 0, theta = 0, theta_dot = 0;
};

struct CartPoleParams {
  static constexpr double kGravity = 9.8;
  static constexpr double kMassCart = 1.0;
  static constexpr double kMassPole = 0.1;
  static constexpr double kTotalMass = kMassCart + kMassPole;
  static constexpr double kHalfLength = 0.5;  // Gymnasium's `length` is half the pole
  static constexpr double kPoleMassLength = kMassPole * kHalfLength;
  static constexpr double kForceMag = 10.0;
  static constexpr double kTau = 0.02;
  static constexpr double kThetaThreshold = 12.0 * 2.0 * 3.14159265358979323846 / 360.0;
  static constexpr double kXThreshold = 2.4;
  static constexpr int kMaxSteps = 500;
};

// One Euler step of the dynamics (exposed for tests).
CartPoleState cartpole_dynamics(const CartPoleState& s, int action);
bool cartpole_terminated(const CartPoleState& s);

class CartPole final : public VecEnv {
 public:
  explicit CartPole(int num_envs, int max_episode_steps = CartPoleParams::kMaxSteps);
  const EnvSpec& spec() const override { return spec_; }
  void reset(std::uint64_t seed, const VecBuffers& b) override;
  void step(const VecBuffers& b) override;

  // Direct state access for tests.
  CartPoleState& state(int i) { return state_[i]; }
  int elapsed(int i) const { return elapsed_[i]; }

 private:
  void reset_one(int i, float* obs);
  EnvSpec spec_;
  std::vector<CartPoleState> state_;
  std::vector<int> elapsed_;
  std::vector<Rng> rng_;
};

}  // namespace scaletune::envs
