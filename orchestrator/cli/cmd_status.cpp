// scaletune status FILE.h5
//
// Prints a sweep's state from its records file: trials done/running/failed, budget used and the
// Pareto front. Safe while the sweep is writing (it reads a consistent snapshot).
#include <cstdio>
#include <memory>

#include "orchestrator/cli/command.h"
#include "orchestrator/store/records.h"
#include "orchestrator/sweep/status.h"

namespace scaletune::cli {

Command add_status_command(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "status", "Show a sweep's trials, budget used and Pareto front (also while it runs)");
  sub->add_option("records", *file, "Records file of the sweep (records.h5)")->required();
  return {sub, "status", [file] {
            store::LoadOptions options;
            options.curves = false;
            store::Records records;
            try {
              records = store::load(*file, options);
            } catch (const store::StoreError& e) {
              throw UsageError(e.what());
            }
            std::fputs(sweep::format_status(records).c_str(), stdout);
            return kExitOk;
          }};
}

}  // namespace scaletune::cli
