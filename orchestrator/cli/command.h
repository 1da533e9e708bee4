// How subcommands plug into the `scaletune` program: each cmd_*.cpp adds its CLI11 subcommand
// and returns the function that runs it. Only these files touch argv, the environment and exit
// codes (docs/cli.md lists them).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace scaletune::cli {

// Exit codes of every subcommand.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;      // something went wrong while running (I/O, internal error)
constexpr int kExitBadInput = 2;   // bad flags or config; nothing was started
constexpr int kExitRunFailed = 3;  // a training run ended with a failure status (see its result)
constexpr int kExitStopped = 4;    // stopped early on request (signal); `--resume` continues it

// A problem with what the user asked for; the message says what to change. Exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GlobalOptions {
  bool quiet = false;
  bool verbose = false;
};

struct Command {
  CLI::App* app = nullptr;
  std::string log_prefix;    // prefix for log lines of this process
  std::function<int()> run;  // runs after parsing and logging setup; returns the exit code
};

Command add_validate_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_submit_command(CLI::App& app);
Command add_sweep_command(CLI::App& app);
Command add_status_command(CLI::App& app);
Command add_ask_tell_command(CLI::App& app);
Command add_fit_command(CLI::App& app);
Command add_extrapolate_command(CLI::App& app);
Command add_finetune_command(CLI::App& app);

}  // namespace scaletune::cli
