// `scaletune fit --records`: a records file written by the store's writer (as a sweep would)
// with trials over the synthetic surface, failed and running trials mixed in, is fitted.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "orchestrator/store/records.h"
#include "tests/support/process.h"

namespace scaletune::test {
namespace {

TEST(FitRecords, FitsFinishedTrialsOfASweep) {
  const std::string dir = temp_dir("fit_records");
  const std::string path = dir + "/records.h5";
  store::SweepMeta meta;
  meta.objective = "val_loss";
  meta.cost_metric = "flops";
  meta.params = {"optim.lr", "n_params"};
  meta.metrics = {"val_loss"};
  {
    auto writer = store::RecordsWriter::create(path, meta);
    std::int64_t id = 0;
    for (int k = 0; k < 6; ++k) {
      const double c = 1e17 * std::pow(10.0, 0.5 * k);
      const double lr_star = 0.3118 * std::pow(c, -0.125);
      for (double f : {0.5, 0.7071, 1.0, 1.4142, 2.0}) {
        store::TrialRecord t;
        t.trial_id = id++;
        t.status = store::TrialStatus::kOk;
        const double n = 0.1 * std::pow(c, 0.5);
        t.params = {{"optim.lr", lr_star * f}, {"n_params", n}};
        t.flops = c;
        t.tokens = c / (6 * n);
        t.objective = 2 + 30 * std::pow(c, -0.07) + 0.1 * std::pow(std::log10(f), 2);
        t.metrics = {{"val_loss", t.objective}};
        writer.append_trial(t);
      }
    }
    store::TrialRecord failed;
    failed.trial_id = id++;
    failed.status = store::TrialStatus::kFailed;
    failed.failure_kind = "diverged";
    failed.params = {{"optim.lr", 1.0}, {"n_params", 1e7}};
    writer.append_trial(failed);
    writer.close();
  }
  const auto r = run_command(scaletune_bin() + " fit --records " + path +
                             " --law power,frontier --bootstrap 50 --out " + dir + "/fit.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(read_file(dir + "/fit.json"));
  EXPECT_EQ(j["summary"]["runs"], 30);  // the failed trial is left out
  bool found = false;
  for (const auto& law : j["laws"]) {
    if (law["y"] == "optim.lr" && law["method"] == "near_optimal_band") {
      found = true;
      EXPECT_NEAR(law["coefficients"]["p"].get<double>(), -0.125, 1e-6);
    }
    if (law["y"] == "N" && law["method"] == "pareto_front") {
      EXPECT_NEAR(law["coefficients"]["p"].get<double>(), 0.5, 1e-9);
    }
  }
  EXPECT_TRUE(found) << j["laws"].dump().substr(0, 2000);
  // A file that is not a records file: exit 2 with the store's message.
  const auto bad = run_command(scaletune_bin() + " fit --records " + dir + "/fit.json");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_FALSE(bad.err.empty());
}

}  // namespace
}  // namespace scaletune::test
