// train_lm: one GPT language-model training run, data-parallel over the ranks the launcher
// started (trainer/dist/dist_env.h). Setup, loop, evaluation, result: docs/lm-trainer.md.
//
// Torch-free interface: the plugin (trainer/core/plugin_api.h) passes exactly these structs.
#pragma once

#include <atomic>
#include <string>

#include "trainer/core/result.h"
#include "trainer/dist/dist_env.h"
#include "trainer/lm/lm_config.h"

namespace scaletune::trainer::lm {

struct LmRun {
  LmConfig config;
  std::string out_dir;  // checkpoint.pt and model.safetensors go here (rank 0 writes)
  bool resume = false;  // continue from out_dir/checkpoint.pt when it exists
  dist::EnvMap env;     // launcher variables (dist_env_variables()) and OMP_NUM_THREADS
  const std::atomic<int>* stop = nullptr;  // non-zero: checkpoint and stop (SIGTERM/SIGUSR2)
};

struct LmRunEnd {
  TrainResult result;
  bool interrupted = false;  // stopped on request after checkpointing; result is partial
  int rank = 0;
};

// Never throws for problems of the run itself: they become result.status failed/diverged/oom.
LmRunEnd train_lm(const LmRun& run);

}  // namespace scaletune::trainer::lm
