#include "orchestrator/cli/driver.h"

#include <cstdio>
#include <cstdlib>

#include "orchestrator/config/binder.h"
#include "orchestrator/util/log.h"

namespace scaletune::cli {

int run_cli(int argc, char** argv, const std::vector<AddCommand>& adders,
            const std::function<std::string()>& version) {
  CLI::App app{
      "scaletune: cost-aware hyper-parameter search (CARBS) and scaling laws for training runs"};
  app.name("scaletune");
  GlobalOptions global;
  app.add_flag("-q,--quiet", global.quiet, "Log only warnings and errors");
  app.add_flag("-v,--verbose", global.verbose, "Log debug messages");
  if (version)
    app.set_version_flag("--version", version,
                         "Print the version and the LibTorch/MPI/HDF5/CUDA/NCCL in use, then exit");
  app.require_subcommand(1, 1);
  app.fallthrough();  // global flags may follow the subcommand

  std::vector<Command> commands;
  for (const AddCommand add : adders) commands.push_back(add(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitBadInput;
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
      return kExitBadInput;
    } catch (const UsageError& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return kExitBadInput;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return kExitError;
    }
  }
  return kExitBadInput;
}

}  // namespace scaletune::cli
