// Runs the real `scaletune` program: help, version, validate and train.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace scaletune::test {
namespace {

const std::string kConfigs = std::string(SCALETUNE_SOURCE_DIR) + "/configs";

TEST(Cli, HelpListsSubcommands) {
  const auto r = run_command(scaletune_bin() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("validate"), std::string::npos);
  EXPECT_NE(r.out.find("train"), std::string::npos);
}

TEST(Cli, NoSubcommandIsAUsageError) {
  const auto r = run_command(scaletune_bin());
  EXPECT_EQ(r.exit_code, 2);
}

TEST(Cli, VersionReportsLibraries) {
  const auto r = run_command(scaletune_bin() + " --version");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("scaletune "), std::string::npos);
  EXPECT_NE(r.out.find("LibTorch 1."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MPI: Open MPI"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HDF5 1."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NCCL"), std::string::npos) << r.out;
}

TEST(Cli, ValidatePrintsResolvedConfig) {
  const auto r =
      run_command(scaletune_bin() + " validate " + kConfigs + "/synthetic.yaml --set lr=5e-3");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("lr: 0.005"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("diverge_factor: 10.0"), std::string::npos)
      << r.out;  // defaults are filled in
}

// Every shipped example config is valid for this build (catches drift between configs and code).
TEST(Cli, EveryShippedConfigValidates) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".yaml") continue;
    const auto r = run_command(scaletune_bin() + " -q validate " + entry.path().string());
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << r.err;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Cli, ValidateRejectsBadConfigsWithLocation) {
  const std::string dir = temp_dir("cli_validate");
  std::ofstream(dir + "/bad.yaml") << "task: synthetic\nlr: fast\nn_parms: 5\n";
  const auto r = run_command(scaletune_bin() + " validate " + dir + "/bad.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.yaml:2:5: lr: expected a number, got 'fast'"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad.yaml:3:1: n_parms: unknown key; did you mean 'n_params'?"),
            std::string::npos)
      << r.err;
}

TEST(Cli, ValidateRejectsUnknownTask) {
  const std::string dir = temp_dir("cli_task");
  std::ofstream(dir + "/t.yaml") << "task: synthetc\n";
  const auto r = run_command(scaletune_bin() + " validate " + dir + "/t.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean 'synthetic'"), std::string::npos) << r.err;
}

TEST(Cli, TrainSyntheticWritesResult) {
  const std::string dir = temp_dir("cli_train");
  const auto r = run_command(scaletune_bin() + " train --config " + kConfigs +
                             "/synthetic.yaml --set seed=5 --out " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["status"], "ok");
  EXPECT_GT(summary["val_loss"].get<double>(), 1.69);
  const auto result = nlohmann::json::parse(read_file(dir + "/result.json"));
  EXPECT_EQ(result["config"]["seed"], 5);  // the resolved config is stored with the result
  EXPECT_EQ(result["curve"]["step"].size(), 16u);
  EXPECT_NE(read_file(dir + "/train.log").find("task synthetic"), std::string::npos);
}

// The ranks of a multi-device synthetic trial share OUT: only rank 0 may write result.json (all
// ranks writing one temporary file interleaved their JSON, which failed a sweep test under load).
TEST(Cli, TrainSyntheticOtherRanksLeaveResultToRankZero) {
  const std::string dir = temp_dir("cli_train_rank1");
  const auto r =
      run_command("RANK=1 WORLD_SIZE=2 SCALETUNE_STORE_FILE=" + dir + "/store " + scaletune_bin() +
                  " train --config " + kConfigs + "/synthetic.yaml --out " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/result.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/train.rank1.log"));
}

// A trial process is `scaletune train`: it must not load what only the orchestrator needs (HDF5
// with curl/Kerberos/OpenSSL, MPI, Ceres), which made its start-up 3x slower (main.cpp).
TEST(Cli, TrainLoadsNeitherHdf5NorMpiNorCeres) {
  const std::string dir = temp_dir("cli_train_libs");
  const auto r = run_command("LD_DEBUG=libs " + scaletune_bin() + " train --config " + kConfigs +
                             "/synthetic.yaml --out " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("libyaml-cpp"), std::string::npos) << "LD_DEBUG output missing";
  for (const char* lib : {"libhdf5", "libmpi", "libceres", "libscaletune_cli"})
    EXPECT_EQ(r.err.find(lib), std::string::npos) << lib << " was loaded";
  // ... while the other subcommands load the module that has them.
  const auto v =
      run_command("LD_DEBUG=libs " + scaletune_bin() + " validate " + kConfigs + "/synthetic.yaml");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.err.find("libscaletune_cli.so"), std::string::npos);
}

TEST(Cli, MissingSubcommandModuleSaysWhatToDo) {
  const std::string dir = temp_dir("cli_no_module");
  const auto r = run_command("SCALETUNE_CLI_MODULE=" + dir + "/missing.so " + scaletune_bin() +
                             " status " + dir + "/records.h5");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot load the scaletune subcommands from " + dir + "/missing.so"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("SCALETUNE_CLI_MODULE"), std::string::npos) << r.err;
  // `train` does not need it.
  const auto t = run_command("SCALETUNE_CLI_MODULE=" + dir + "/missing.so " + scaletune_bin() +
                             " train --config " + kConfigs + "/synthetic.yaml --out " + dir);
  EXPECT_EQ(t.exit_code, 0) << t.err;
}

TEST(Cli, TrainFailureStatusExitsThree) {
  const std::string dir = temp_dir("cli_train_fail");
  const auto r = run_command(scaletune_bin() + " train --config " + kConfigs +
                             "/synthetic.yaml --set lr=10 --out " + dir);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["status"], "diverged");
}

}  // namespace
}  // namespace scaletune::test
