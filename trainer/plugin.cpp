// libscaletune_torch.so: the table of LibTorch entry points (trainer/core/plugin_api.h).
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <sstream>
#include <string>

#include "trainer/core/plugin_api.h"
#include "trainer/lm/train_lm.h"
#include "trainer/lora/finetune.h"
#include "trainer/ppo/ppo.h"

namespace scaletune::trainer {
namespace {

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
#ifdef SCALETUNE_WITH_CUDA
  info.cuda_built = true;
#endif
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
#ifdef USE_C10D_NCCL
  info.nccl_built = true;
#endif
#ifdef USE_C10D_GLOO
  info.gloo_built = true;
#endif
  // get_parallel_info() is a multi-line report; keep the thread count and the backends.
  info.parallel_info = "intra-op threads " + std::to_string(at::get_num_threads());
  std::istringstream lines(at::get_parallel_info());
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("OpenMP", 0) == 0 || line.rfind("MKL", 0) == 0 ||
        line.rfind("std::thread", 0) == 0)
      info.parallel_info += "; " + line;
  }
  return info;
}

}  // namespace
}  // namespace scaletune::trainer

extern "C" const scaletune::trainer::TorchPlugin* scaletune_torch_plugin() {
  static const scaletune::trainer::TorchPlugin plugin = [] {
    scaletune::trainer::TorchPlugin p;
    p.runtime_info = &scaletune::trainer::runtime_info;
    p.train_lm = &scaletune::trainer::lm::train_lm;
    p.train_ppo = &scaletune::trainer::run_ppo;
    p.train_lora = &scaletune::trainer::lora::train_lora;
    return p;
  }();
  return &plugin;
}
