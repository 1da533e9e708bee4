// `scaletune`: the one program. Parses the command line, sets up logging, runs one subcommand,
// and turns errors into messages and exit codes (orchestrator/cli/command.h).
#include <hdf5.h>
#include <mpi.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "orchestrator/cli/command.h"
#include "orchestrator/config/binder.h"
#include "orchestrator/util/log.h"
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

int main(int argc, char** argv) {
  using namespace scaletune;
  CLI::App app{
      "scaletune: cost-aware hyper-parameter search (CARBS) and scaling laws for training runs"};
  app.name("scaletune");
  cli::GlobalOptions global;
  app.add_flag("-q,--quiet", global.quiet, "Log only warnings and errors");
  app.add_flag("-v,--verbose", global.verbose, "Log debug messages");
  app.set_version_flag(
      "--version", [] { return cli::version_text(); },
      "Print the version and the LibTorch/MPI/HDF5/CUDA/NCCL in use, then exit");
  app.require_subcommand(1, 1);
  app.fallthrough();  // global flags may follow the subcommand

  std::vector<cli::Command> commands = {
      // In the order of a user's story: --help lists them so.
      cli::add_validate_command(app),    cli::add_train_command(app),
      cli::add_sweep_command(app),       cli::add_status_command(app),
      cli::add_ask_tell_command(app),    cli::add_fit_command(app),
      cli::add_extrapolate_command(app), cli::add_finetune_command(app),
      cli::add_submit_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : cli::kExitBadInput;
  }

  for (auto& command : commands) {
    if (!command.app->parsed()) continue;
    util::LogOptions log;
    log.prefix = command.log_prefix;
    // A trial started by a sweep's agent names itself after its trial and rank.
    const char* trial = std::getenv("SCALETUNE_TRIAL_ID");
    if (trial != nullptr && command.log_prefix == "train") {
      const char* rank = std::getenv("RANK");
      log.prefix = std::string("trial ") + trial + " rank " + (rank != nullptr ? rank : "0");
    }
    log.verbosity = global.quiet     ? util::Verbosity::kQuiet
                    : global.verbose ? util::Verbosity::kVerbose
                                     : util::Verbosity::kNormal;
    util::setup_logging(log);
    try {
      return command.run();
    } catch (const config::ConfigError& e) {
      std::fprintf(stderr, "error: invalid config:\n");
      for (const auto& p : e.problems()) std::fprintf(stderr, "  %s\n", p.str().c_str());
      return cli::kExitBadInput;
    } catch (const cli::UsageError& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return cli::kExitBadInput;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return cli::kExitError;
    }
  }
  return cli::kExitBadInput;
}
