// The entry points of the LibTorch trainers, shipped as the plugin libscaletune_torch.so.
//
// Why a plugin: loading LibTorch costs ~0.6 s and ~160 MB per process. The `scaletune` program
// (orchestrator, agents, status, fit, synthetic trials) never pays that; only subcommands that
// train with LibTorch load the plugin (orchestrator/util/torch_plugin.h). Tests link the trainer
// libraries directly instead.
//
// Torch-free: only plain structs cross this boundary. Both sides are built by the same build, so
// C++ types are safe to pass; `abi` guards against a plugin from another build.
#pragma once

#include <string>

#include "trainer/lm/train_lm.h"
#include "trainer/lora/finetune.h"
#include "trainer/ppo/ppo.h"

namespace scaletune::trainer {

// Bump when TorchPlugin's layout or any struct it passes changes.
constexpr int kTorchPluginAbi = 4;

struct RuntimeInfo {
  std::string torch_version;  // e.g. "1.13.1"
  bool cuda_built = false;    // LibTorch was built with CUDA
  bool cuda_available = false;
  int cuda_devices = 0;
  bool nccl_built = false;    // c10d NCCL process group compiled in
  bool gloo_built = false;    // c10d Gloo process group compiled in
  std::string parallel_info;  // LibTorch's thread/BLAS summary (first line)
};

struct TorchPlugin {
  int abi = kTorchPluginAbi;
  RuntimeInfo (*runtime_info)() = nullptr;
  // One GPT language-model run (trainer/lm/train_lm.h); never throws for the run's own problems.
  lm::LmRunEnd (*train_lm)(const lm::LmRun& run) = nullptr;
  // One PPO run (trainer/ppo/ppo.h); never throws for the run's own problems.
  PpoRunEnd (*train_ppo)(const PpoRun& run) = nullptr;
  // One LoRA (or full) instruction fine-tuning run (trainer/lora/finetune.h); never throws for
  // the run's own problems.
  lora::LoraRunEnd (*train_lora)(const lora::LoraRun& run) = nullptr;
};

}  // namespace scaletune::trainer

// Defined by the plugin; returns a table that lives as long as the process.
extern "C" const scaletune::trainer::TorchPlugin* scaletune_torch_plugin();
