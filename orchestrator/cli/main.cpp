// `scaletune`: the one program, in two parts. This executable holds `train` alone, so that a
// trial process (one per trial, started by a sweep's agent) loads only what training needs.
// Every other subcommand, and --help and --version, live in libscaletune_cli.so next to it,
// loaded when named: linked here, HDF5 (which pulls in curl, Kerberos and OpenSSL), Ceres
// (SuiteSparse, BLAS) and MPI made every trial process map ~68 shared libraries and spend most
// of its ~20 ms of start-up in the dynamic loader (docs/sweep.md).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "orchestrator/cli/driver.h"
#include "orchestrator/util/process.h"
#include "scaletune_version.h"

namespace {

// The first argument that is not a flag (the global flags take no values).
std::string subcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-') return argv[i];
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace scaletune;
  if (subcommand(argc, argv) == "train") {
    return cli::run_cli(argc, argv, {cli::add_train_command}, [] {
      return std::string("scaletune ") + SCALETUNE_VERSION +
             " (`scaletune --version` also names the libraries in use)";
    });
  }
  const std::string path = util::beside_program("libscaletune_cli.so", "SCALETUNE_CLI_MODULE");
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr,
                 "error: cannot load the scaletune subcommands from %s: %s (build them with "
                 "scripts/build.sh, or point SCALETUNE_CLI_MODULE at libscaletune_cli.so)\n",
                 path.c_str(), dlerror());
    return cli::kExitError;
  }
  using Entry = int (*)(int, char**);
  auto entry = reinterpret_cast<Entry>(dlsym(handle, "scaletune_cli_main"));
  if (entry == nullptr) {
    std::fprintf(stderr, "error: %s is not a scaletune subcommand module: %s\n", path.c_str(),
                 dlerror());
    return cli::kExitError;
  }
  return entry(argc, argv);
}
