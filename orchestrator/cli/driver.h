// What both halves of the `scaletune` program share (main.cpp, module.cpp): the global flags,
// the parse, the logging setup and the mapping of errors to exit codes (command.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "orchestrator/cli/command.h"

namespace scaletune::cli {

using AddCommand = Command (*)(CLI::App&);

// Parses argv against the subcommands `commands` add (listed by --help in this order) and runs
// the one named. `version` makes --version's text; empty: no --version flag. Returns the exit
// code.
int run_cli(int argc, char** argv, const std::vector<AddCommand>& commands,
            const std::function<std::string()>& version);

}  // namespace scaletune::cli
