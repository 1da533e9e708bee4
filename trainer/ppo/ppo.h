// The PPO trainer (`task: ppo`): CleanRL's ppo.py / ppo_continuous_action.py as one explicit C++
// loop over the torch-free environments of trainer/envs: rollout, GAE, flatten, minibatch epochs.
// Data parallel: every rank steps its own environments and the gradients are averaged across
// ranks (trainer/dist/comm.h) before clipping and the Adam step, so every rank holds the same
// weights; the observation and reward normalisers are shared once per rollout through the same
// communicator (allreduce_running_stats). What it is not: recurrent or convolutional policies,
// off-policy replay.
//
// Torch-free header: callers (the plugin table, tests) need no LibTorch include.
#pragma once

#include <vector>

#include "trainer/core/result.h"
#include "trainer/dist/dist_env.h"
#include "trainer/ppo/ppo_config.h"
#include "trainer/ppo/running_stats.h"

namespace scaletune::trainer {

namespace dist {
class Communicator;
}

// Runs one PPO training run and returns its result (config left empty: the caller stores the
// resolved config). Failures caused by the settings (NaN losses, an unavailable device, a run
// shorter than one rollout) come back as a status with a reason, not as exceptions.
// `comm` null or of size 1: a single process. `local_rank` picks the CUDA device.
TrainResult train_ppo(const PpoConfig& config, dist::Communicator* comm = nullptr,
                      int local_rank = 0);

// What `scaletune train` hands the plugin for `task: ppo` (trainer/core/plugin_api.h).
struct PpoRun {
  PpoConfig config;
  dist::EnvMap env;  // launcher variables (dist::dist_env_variables())
};
struct PpoRunEnd {
  TrainResult result;
  int rank = 0;  // only rank 0 writes result.json
};
// Joins the world the launcher describes (a single process without one) and runs train_ppo.
// Never throws: a malformed launcher environment or a failed rendezvous is a failed result.
PpoRunEnd run_ppo(const PpoRun& run);

// The loss terms of one minibatch, computed by the same code the trainer runs (exposed for tests).
struct PpoLossInputs {
  std::vector<float> new_logprob, old_logprob, advantages, new_value, old_value, returns, entropy;
  double clip_coef = 0.2;
  bool clip_vloss = true;
  bool norm_adv = true;
};
struct PpoLossTerms {
  double pg_loss = 0, v_loss = 0, entropy_loss = 0, approx_kl = 0, old_approx_kl = 0, clipfrac = 0;
};
PpoLossTerms ppo_loss_terms(const PpoLossInputs& in);

// Data-parallel normalisers (what train_ppo runs once per rollout, exposed for tests): every rank
// passes, per statistic, the statistics all ranks share and the ones of the samples it saw since
// the last call. Every rank's fresh part is folded into `shared` in rank order, so all ranks end
// with bit-identical statistics equal (up to rounding) to those of the union of all ranks'
// samples; `fresh` is emptied. One all-reduce for all pairs; collective: every rank must call it
// with the same dims. `cuda_device` >= 0: the buffer goes through that CUDA device (NCCL).
struct StatsPair {
  RunningMeanStd* shared;
  RunningMeanStd* fresh;
};
void allreduce_running_stats(dist::Communicator* comm, const std::vector<StatsPair>& stats,
                             int cuda_device = -1);

}  // namespace scaletune::trainer
