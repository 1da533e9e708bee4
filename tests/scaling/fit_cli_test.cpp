// `scaletune fit` and `scaletune extrapolate` run as a user would: the public Chinchilla points
// (skipped when absent), a planted sweep from CSV through fit.json to a training config that
// `scaletune validate` accepts, and the errors for bad input (exit code 2 with a message that
// says what to change).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/support/process.h"

namespace scaletune::test {
namespace {

const std::string kEpochCsv =
    std::string(SCALETUNE_SOURCE_DIR) + "/../shared/data/chinchilla_epoch_svg_extracted.csv";

// A sweep over the synthetic trainer's surface written as CSV, with a run column and the
// hyper-parameters under their trainer names.
std::string write_planted_csv(const std::string& dir) {
  const double E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28;
  const double G = std::pow(alpha * A / (beta * B), 1 / (alpha + beta));
  std::mt19937_64 rng(8);
  std::normal_distribution<double> eps(0, 0.01);
  const std::string path = dir + "/sweep.csv";
  std::ofstream out(path);
  out << "trial,\"Training FLOP\",params,val_loss,lr,batch_tokens\n";
  int id = 0;
  for (int k = 0; k < 10; ++k) {
    const double c = 1e17 * std::pow(10.0, 0.5 * k);
    const double n_star = G * std::pow(c / 6, beta / (alpha + beta));
    for (double fn : {0.25, 0.5, 1.0, 2.0, 4.0})
      for (double flr : {0.5, 0.7071, 0.8409, 1.0, 1.1892, 1.4142, 2.0}) {
        const double n = n_star * fn, d = c / (6 * n);
        const double lr_star = 0.3118 * std::pow(c, -0.125);
        const double lr = lr_star * flr * std::exp(eps(rng));
        const double batch = 0.292 * std::pow(c, 0.3271) * std::exp(eps(rng));
        const double loss = E + A / std::pow(n, alpha) + B / std::pow(d, beta) +
                            0.1 * std::pow(std::log10(lr / lr_star), 2);
        out << "t" << id++ << "," << c << "," << n << "," << loss << "," << lr << "," << batch
            << "\n";
      }
  }
  return path;
}

const std::string kPlantedCols =
    " --col C=\"Training FLOP\" --col N=params --col loss=val_loss --col run=trial"
    " --col lr=lr --col batch_tokens=batch_tokens";

TEST(FitCli, EpochChinchillaApproach3) {
  if (!std::filesystem::exists(kEpochCsv)) GTEST_SKIP() << "no " << kEpochCsv;
  const std::string dir = temp_dir("fit_cli_epoch");
  const auto r = run_command(scaletune_bin() + " -q fit --csv " + kEpochCsv +
                             " --col N=\"Model Size\" --col C=\"Training FLOP\" --col loss=loss"
                             " --drop-highest 5 --law approach3 --bootstrap 40 --out " +
                             dir + "/fit.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(read_file(dir + "/fit.json"));
  EXPECT_EQ(j["summary"]["runs"], 240);
  const nlohmann::json* law = nullptr;
  for (const auto& l : j["laws"])
    if (l["method"] == "approach3") law = &l;
  ASSERT_TRUE(law);
  EXPECT_NEAR((*law)["coefficients"]["E"].get<double>(), 1.8172, 5e-4);
  EXPECT_NEAR((*law)["coefficients"]["alpha"].get<double>(), 0.3473, 5e-4);
  EXPECT_NEAR((*law)["coefficients"]["beta"].get<double>(), 0.3672, 5e-4);
  EXPECT_EQ((*law)["bootstrap"]["alpha"].size(), 40u);
  EXPECT_EQ((*law)["points"]["N"].size(), 240u);
  EXPECT_EQ((*law)["residuals"].size(), 240u);
  EXPECT_EQ((*law)["details"]["starts"], 4500);
  // The summary table on stdout lists the law.
  EXPECT_NE(r.out.find("approach3"), std::string::npos) << r.out;
}

TEST(FitCli, CsvToFitToTrainingConfig) {
  const std::string dir = temp_dir("fit_cli_planted");
  const std::string csv = write_planted_csv(dir);
  auto r = run_command(scaletune_bin() + " -q fit --csv " + csv + kPlantedCols +
                       " --law power,frontier,approach2 --bootstrap 100 --out " + dir +
                       "/fit.json --report " + dir + "/report");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir + "/report/index.html"));
  const auto fit = nlohmann::json::parse(read_file(dir + "/fit.json"));
  bool found = false;
  for (const auto& law : fit["laws"]) {
    if (law["y"] == "lr" && law["method"] == "near_optimal_band" && law["form"] == "power") {
      found = true;
      EXPECT_NEAR(law["coefficients"]["p"].get<double>(), -0.125, 0.01);
      EXPECT_TRUE(law["determined"].get<bool>()) << law["flags"].dump();
    }
  }
  EXPECT_TRUE(found);

  for (const std::string task : {"lm", "synthetic"}) {
    const std::string yaml = dir + "/big_" + task + ".yaml";
    r = run_command(scaletune_bin() + " -q extrapolate --fit " + dir +
                    "/fit.json --compute 1e21 --seq-len 512 --task " + task + " --out " + yaml +
                    " --report " + dir + "/report_x");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto p = nlohmann::json::parse(r.out);
    const double lr = p["params"]["lr"]["value"].get<double>();
    EXPECT_NEAR(lr / (0.3118 * std::pow(1e21, -0.125)), 1, 0.05);
    EXPECT_LT(p["params"]["lr"]["interval"][0].get<double>(), lr);
    EXPECT_GT(p["params"]["lr"]["interval"][1].get<double>(), lr);
    EXPECT_EQ(p["lr_param"], "lr");
    EXPECT_EQ(p["batch_param"], "batch_tokens");
    const int d_model = p["shape"]["d_model"], n_head = p["shape"]["n_head"];
    EXPECT_EQ(d_model, 64 * n_head);
    EXPECT_NEAR(p["steps"].get<double>(),
                std::ceil(p["D"]["value"].get<double>() / p["batch_tokens"]["value"].get<double>()),
                1);
    const std::string text = read_file(yaml);
    EXPECT_NE(text.find("task: " + task), std::string::npos) << text;
    // Round trip: the emitted config is a valid training config of that trainer.
    const auto v = run_command(scaletune_bin() + " validate " + yaml);
    EXPECT_EQ(v.exit_code, 0) << text << v.err;
    if (task == "lm") {
      EXPECT_NE(v.out.find("d_model: " + std::to_string(d_model)), std::string::npos) << v.out;
      EXPECT_NE(v.out.find("context: 512"), std::string::npos) << v.out;
    }
  }
  // Far beyond the data: warned on stderr, still a prediction.
  r = run_command(scaletune_bin() + " extrapolate --fit " + dir +
                  "/fit.json --compute 1e25 --available-tokens 1e9");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("decades beyond the largest run"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exceeds the 1e+09 available"), std::string::npos) << r.err;
}

TEST(FitCli, BadInputIsExitTwoWithAReason) {
  const std::string dir = temp_dir("fit_cli_errors");
  const std::string csv = write_planted_csv(dir);
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"--csv " + csv + " --col N=nope --col C=\"Training FLOP\" --col loss=val_loss",
       "no column 'nope' (columns: 'trial', 'Training FLOP'"},
      {"--csv " + csv + " --col N", "expected NAME=COLUMN"},
      {"--csv " + csv + " --col C=\"Training FLOP\"", "no loss column; map one with --col loss="},
      {"--csv " + csv + " --col loss=val_loss", "needs compute"},
      {"--csv " + csv + kPlantedCols + " --law approach9", "is not a law family"},
      {"--csv " + dir + "/missing.csv --col loss=x", "cannot read CSV file"},
      {"--csv " + csv + " --col C=trial --col loss=val_loss", "expected a number, got 't0'"},
      {"", "fit needs --csv FILE or --records FILE.h5"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(scaletune_bin() + " fit " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
  // Too few points: one compute scale.
  std::ofstream(dir + "/one.csv") << "C,loss,lr\n1e18,3.0,1e-3\n1.02e18,2.9,2e-3\n";
  auto r = run_command(scaletune_bin() + " fit --csv " + dir + "/one.csv");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("2 or more compute scales"), std::string::npos) << r.err;
  std::ofstream(dir + "/single.csv") << "C,loss\n1e18,3.0\n";
  r = run_command(scaletune_bin() + " fit --csv " + dir + "/single.csv");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs at least 2 runs"), std::string::npos) << r.err;
  // Extrapolate from something that is not a fit.
  std::ofstream(dir + "/notfit.json") << "{\"a\": 1}";
  r = run_command(scaletune_bin() + " extrapolate --fit " + dir + "/notfit.json --compute 1e21");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a scaletune fit file"), std::string::npos) << r.err;
  r = run_command(scaletune_bin() + " extrapolate --fit " + dir + "/none.json --compute 1e21");
  EXPECT_EQ(r.exit_code, 2);
  r = run_command(scaletune_bin() + " extrapolate --fit " + dir + "/notfit.json --compute -3");
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace scaletune::test
