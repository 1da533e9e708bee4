// train_lora: one instruction fine-tuning run (LoRA or full) on one device. Setup, evaluation of
// the base, the loop, evaluation after, merge and export, the result: docs/lora.md.
//
// Torch-free interface: the plugin (trainer/core/plugin_api.h) passes exactly these structs.
#pragma once

#include <atomic>
#include <string>

#include "trainer/core/result.h"
#include "trainer/dist/dist_env.h"
#include "trainer/lora/lora_config.h"

namespace scaletune::trainer::lora {

struct LoraRun {
  LoraConfig config;
  std::string out_dir;  // adapter.safetensors, model.safetensors, model.pt go here
  dist::EnvMap env;     // OMP_NUM_THREADS
  const std::atomic<int>* stop = nullptr;  // non-zero: stop after the current step (partial)
};

struct LoraRunEnd {
  TrainResult result;
  bool interrupted = false;
};

// Never throws for problems of the run itself: they become result.status failed/diverged/oom.
// Metrics: val_loss (the objective) and accuracy after, val_loss_before / accuracy_before,
// accuracy.<task> per built-in task, trainable_params, trainable_fraction, params_total.
LoraRunEnd train_lora(const LoraRun& run);

}  // namespace scaletune::trainer::lora
