// Generalized advantage estimation (Schulman et al. 2016), exactly as CleanRL's ppo.py computes
// it, over plain row-major (T, N) float arrays so it is testable without LibTorch.
//
//   dones[t]  = 1 when the observation at step t began a new episode (the previous step ended)
//   delta_t   = r_t + gamma * V(s_{t+1}) * (1 - done_{t+1}) - V(s_t)
//   A_t       = delta_t + gamma * lambda * (1 - done_{t+1}) * A_{t+1}
//   returns_t = A_t + V(s_t)
// with V(s_T) = next_value and done_T = next_done (the state after the rollout).
#pragma once

namespace scaletune::trainer {

void compute_gae(int num_steps, int num_envs, const float* rewards, const float* values,
                 const float* dones, const float* next_value, const float* next_done, double gamma,
                 double gae_lambda, float* advantages, float* returns);

}  // namespace scaletune::trainer
