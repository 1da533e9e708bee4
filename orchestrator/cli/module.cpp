// libscaletune_cli.so: every subcommand of `scaletune`, with the libraries they need (HDF5, MPI,
// Ceres, ...). The executable (main.cpp) loads it for anything but `train`.
#include <hdf5.h>
#include <mpi.h>

#include <string>

#include "orchestrator/cli/driver.h"
#include "orchestrator/util/torch_plugin.h"
#include "scaletune_version.h"

namespace scaletune::cli {
namespace {

std::string version_text() {
  std::string text = std::string("scaletune ") + SCALETUNE_VERSION + "\n";
  try {
    const auto info = util::torch_plugin().runtime_info();
    text += "LibTorch " + info.torch_version +
            (info.cuda_built ? " (CUDA build)" : " (CPU build)") +
            "; CUDA devices available: " + std::to_string(info.cuda_devices) + "\n";
    text += std::string("c10d process groups: NCCL ") + (info.nccl_built ? "yes" : "no") +
            ", Gloo " + (info.gloo_built ? "yes" : "no") + "\n";
    text += "LibTorch parallelism: " + info.parallel_info + "\n";
  } catch (const std::exception& e) {
    text += std::string("LibTorch: not available (") + e.what() + ")\n";
  }
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);  // allowed before MPI_Init
  std::string mpi_text(mpi, static_cast<std::size_t>(len));
  text += "MPI: " + mpi_text.substr(0, mpi_text.find(',')) + "\n";
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  text +=
      "HDF5 " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
  return text;
}

}  // namespace
}  // namespace scaletune::cli

extern "C" int scaletune_cli_main(int argc, char** argv) {
  using namespace scaletune::cli;
  // In the order of a user's story: --help lists them so.
  return run_cli(argc, argv,
                 {add_validate_command, add_train_command, add_sweep_command, add_status_command,
                  add_ask_tell_command, add_fit_command, add_extrapolate_command,
                  add_finetune_command, add_submit_command},
                 version_text);
}
