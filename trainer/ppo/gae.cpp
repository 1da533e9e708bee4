// GAE over (T, N) arrays (see gae.h).
#include "trainer/ppo/gae.h"

namespace scaletune::trainer {

void compute_gae(int num_steps, int num_envs, const float* rewards, const float* values,
                 const float* dones, const float* next_value, const float* next_done, double gamma,
                 double gae_lambda, float* advantages, float* returns) {
  for (int i = 0; i < num_envs; ++i) {
    double last = 0.0;  // A_{t+1}
    for (int t = num_steps - 1; t >= 0; --t) {
      const int k = t * num_envs + i;
      const bool last_step = t == num_steps - 1;
      const double next_nonterminal = 1.0 - (last_step ? next_done[i] : dones[k + num_envs]);
      const double next_v = last_step ? next_value[i] : values[k + num_envs];
      const double delta = rewards[k] + gamma * next_v * next_nonterminal - values[k];
      last = delta + gamma * gae_lambda * next_nonterminal * last;
      advantages[k] = static_cast<float>(last);
      returns[k] = static_cast<float>(last + values[k]);
    }
  }
}

}  // namespace scaletune::trainer
