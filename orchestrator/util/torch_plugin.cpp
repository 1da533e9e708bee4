#include "orchestrator/util/torch_plugin.h"

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>

#include "orchestrator/util/process.h"

namespace scaletune::util {

std::string torch_plugin_path() {
  return beside_program("libscaletune_torch.so", "SCALETUNE_TORCH_PLUGIN");
}

bool torch_plugin_present() { return std::filesystem::exists(torch_plugin_path()); }

const trainer::TorchPlugin& torch_plugin() {
  // Loaded once per process and never unloaded (LibTorch does not support unloading).
  static const trainer::TorchPlugin* plugin = [] {
    const std::string path = torch_plugin_path();
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      throw std::runtime_error("cannot load the LibTorch trainers from " + path + ": " + dlerror() +
                               " (build them with scripts/build.sh, or point SCALETUNE_TORCH_PLUGIN"
                               " at libscaletune_torch.so)");
    }
    using Entry = const trainer::TorchPlugin* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "scaletune_torch_plugin"));
    if (!entry)
      throw std::runtime_error(path + " is not a scaletune plugin (no scaletune_torch_plugin)");
    const trainer::TorchPlugin* table = entry();
    if (table->abi != trainer::kTorchPluginAbi) {
      throw std::runtime_error(path + " was built by another scaletune version (plugin ABI " +
                               std::to_string(table->abi) + ", expected " +
                               std::to_string(trainer::kTorchPluginAbi) + "); rebuild it");
    }
    return table;
  }();
  return *plugin;
}

}  // namespace scaletune::util
