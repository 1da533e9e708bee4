// The orchestrator against in-process agents (LocalHub, real child processes), a fake searcher
// and in-memory records: completion, failure kinds, retries, gangs across agents, stop + resume.
#include "orchestrator/sweep/orchestrator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "orchestrator/config/binder.h"
#include "orchestrator/sweep/local_agent.h"
#include "orchestrator/sweep/sweep_plan.h"
#include "tests/support/process.h"
#include "trainer/core/flops.h"

namespace scaletune::sweep {
namespace {

namespace fs = std::filesystem;

// Suggests x = 1/20, 2/20, ... (ids s0, s1, ...); checks ids like Carbs does.
class FakeSearcher : public Searcher {
 public:
  search::Suggestion suggest() override {
    search::Suggestion s;
    s.id = "s" + std::to_string(next_);
    const double x = next_ < static_cast<int>(xs_.size())
                         ? xs_[static_cast<std::size_t>(next_)]
                         : static_cast<double>(1 + next_ % 19) / 20.0;
    s.params = {{"x", x}};
    if (cost_per_x_ > 0) s.predicted_cost = cost_per_x_ * x;
    ++next_;
    outstanding_.insert(s.id);
    return s;
  }
  void observe(const search::Observation& o) override {
    if (!outstanding_.erase(o.suggestion_id))
      throw search::SearchError("unknown suggestion " + o.suggestion_id);
    observed_[o.suggestion_id] = o;
  }
  void forget(const std::string& id) override {
    if (!outstanding_.erase(id)) throw search::SearchError("unknown suggestion " + id);
    forgotten_.insert(id);
  }
  std::vector<std::string> outstanding_ids() const override {
    return {outstanding_.begin(), outstanding_.end()};
  }
  std::string save_state() const override {
    nlohmann::json j = {{"next", next_}, {"outstanding", outstanding_}};
    for (const auto& [id, o] : observed_) j["observed"][id] = o.failed;
    return j.dump();
  }
  static FakeSearcher load(const std::string& text) {
    FakeSearcher f;
    const auto j = nlohmann::json::parse(text);
    f.next_ = j["next"];
    for (const auto& id : j["outstanding"]) f.outstanding_.insert(id.get<std::string>());
    if (j.contains("observed"))
      for (const auto& [id, failed] : j["observed"].items()) {
        search::Observation o;
        o.suggestion_id = id;
        o.failed = failed;
        f.observed_[id] = o;
      }
    return f;
  }

  int next_ = 0;
  std::vector<double> xs_;  // the first suggestions' x (then 1/20, 2/20, ...)
  double cost_per_x_ = 0;   // > 0: predicted_cost = cost_per_x_ * x
  std::set<std::string> outstanding_;
  std::map<std::string, search::Observation> observed_;
  std::set<std::string> forgotten_;
};

class MemoryRecords : public SweepRecords {
 public:
  void append(const TrialRow& row) override { rows_.push_back(row); }
  void put_text(const std::string& key, const std::string& text) override { texts_[key] = text; }
  std::vector<TrialRow> rows() override { return rows_; }

  std::map<std::int64_t, TrialRow> latest() const {
    std::map<std::int64_t, TrialRow> out;
    for (const auto& r : rows_) out[r.trial] = r;
    return out;
  }
  std::vector<TrialRow> rows_;
  std::map<std::string, std::string> texts_;
};

class OrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("scaletune-orch-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_.name = "test";
    config_.trainer = "command";
    config_.command.pass_arguments = false;
    search::ParamSpec x;
    x.center = 0.5;
    x.min = 0.0;
    x.max = 1.0;
    config_.search.search = {{"x", x}};
    config_.budget.max_trials = 6;
    config_.resources.timeout_seconds = 30;
    config_.resources.stop_grace_seconds = 2;
    config_.log_interval_seconds = 1000;
  }

  // A shell script as the trainer; it sees the parameter as $SCALETUNE_PARAM_X.
  void script(const std::string& text) { config_.command.argv = {"/bin/sh", "-c", text}; }

  // Runs a sweep on `agents` local agents with `slots` CPU slots each.
  SweepEnd run(int agents, int slots, const std::atomic<int>& stops, bool resume = false,
               std::function<void(const TrialRow&)> on_record = {}) {
    LocalHub hub(agents + 1);
    auto orchestrator_end = hub.endpoint(0);
    std::vector<std::unique_ptr<LocalAgent>> local;
    OrchestratorOptions o;
    o.trials_dir = (dir_ / "trials").string();
    o.resume = resume;
    o.on_record = std::move(on_record);
    for (int a = 1; a <= agents; ++a) {
      AgentOptions ao;
      ao.host = "agent" + std::to_string(a);
      for (int s = 0; s < slots; ++s) ao.slots.push_back({s, "cpu", -1});
      ao.self_exe = "/bin/sh";
      ao.timeout_grace_seconds = 0.5;
      ao.failure_grace_seconds = 0.5;
      local.push_back(std::make_unique<LocalAgent>(ao, hub.endpoint(a), never_));
      o.agent_ranks.push_back(a);
    }
    Orchestrator orchestrator(config_, searcher_, records_, *orchestrator_end, o);
    return orchestrator.run(stops);
  }

  fs::path dir_;
  SweepConfig config_;
  FakeSearcher searcher_;
  MemoryRecords records_;
  std::atomic<bool> never_{false};
};

const char* kOkScript =
    "printf '{\"objective\": %s, \"cost\": 2}' \"$SCALETUNE_PARAM_X\" > result.json";

TEST_F(OrchestratorTest, CompletesThePlannedTrialsAcrossAgents) {
  script(kOkScript);
  std::atomic<int> stops{0};
  EXPECT_EQ(run(2, 2, stops), SweepEnd::kCompleted);
  const auto latest = records_.latest();
  ASSERT_EQ(latest.size(), 6u);
  std::set<std::string> hosts;
  for (const auto& [id, row] : latest) {
    EXPECT_EQ(row.status, "ok") << row.reason;
    EXPECT_DOUBLE_EQ(row.objective, row.params.at("x"));
    EXPECT_DOUBLE_EQ(row.cost, 2.0);
    EXPECT_TRUE(fs::exists(row.log_path)) << row.log_path;
    hosts.insert(row.host);
  }
  EXPECT_EQ(hosts.size(), 2u);  // both agents ran trials
  // Each trial: one running row, one final row.
  EXPECT_EQ(records_.rows_.size(), 12u);
  EXPECT_EQ(searcher_.observed_.size(), 6u);
  EXPECT_TRUE(searcher_.outstanding_.empty());
  EXPECT_TRUE(records_.texts_.count(kSearchStateKey));
}

TEST_F(OrchestratorTest, FailuresAreClassifiedAndTheSweepCompletes) {
  // Trials 0..3 by the parameter: x=0.05 crashes, 0.10 hangs, 0.15 reports NaN, 0.20 diverges.
  script(
      "case $SCALETUNE_PARAM_X in "
      "0.05) kill -SEGV $$ ;; "
      "0.1) sleep 60 ;; "
      "0.15) echo '{\"objective\": null, \"cost\": 1}' > result.json ;; "
      "0.2) echo '{\"status\": \"diverged\", \"reason\": \"loss is nan\", \"cost\": 1}' > "
      "result.json ;; "
      "*) echo '{\"objective\": 1, \"cost\": 1}' > result.json ;; esac");
  config_.resources.timeout_seconds = 0.5;
  config_.budget.max_trials = 5;
  std::atomic<int> stops{0};
  EXPECT_EQ(run(1, 3, stops), SweepEnd::kCompleted);
  const auto latest = records_.latest();
  ASSERT_EQ(latest.size(), 5u);
  std::map<std::string, std::string> kind_by_x;
  for (const auto& [id, row] : latest) {
    EXPECT_NE(row.status, "infra_failed");
    kind_by_x[format_number(row.params.at("x"))] = row.failure_kind;
  }
  EXPECT_EQ(kind_by_x["0.05"], "crash");
  EXPECT_EQ(kind_by_x["0.1"], "timeout");
  EXPECT_EQ(kind_by_x["0.15"], "nan");
  EXPECT_EQ(kind_by_x["0.2"], "diverged");
  EXPECT_EQ(kind_by_x["0.25"], "");
  // Hyper-parameter failures are observed as failures.
  int failed = 0;
  for (const auto& [id, o] : searcher_.observed_) failed += o.failed ? 1 : 0;
  EXPECT_EQ(failed, 4);
}

TEST_F(OrchestratorTest, InfrastructureFailuresAreRetriedElsewhereAndNeverObserved) {
  // The first attempt of every trial is killed from outside; the retry succeeds.
  script("if [ ! -e first ]; then touch first; kill -KILL $$; fi; " + std::string(kOkScript));
  config_.budget.max_trials = 3;
  std::atomic<int> stops{0};
  EXPECT_EQ(run(2, 1, stops), SweepEnd::kCompleted);
  const auto latest = records_.latest();
  ASSERT_EQ(latest.size(), 3u);
  int infra_rows = 0;
  for (const auto& r : records_.rows_) infra_rows += r.status == "infra_failed" ? 1 : 0;
  EXPECT_EQ(infra_rows, 3);
  for (const auto& [id, row] : latest) {
    EXPECT_EQ(row.status, "ok");
    EXPECT_EQ(row.attempt, 1);
  }
  // The retry ran on the other agent's slot.
  for (std::int64_t t = 0; t < 3; ++t) {
    std::string first_host, final_host;
    for (const auto& r : records_.rows_)
      if (r.trial == t && r.status == "infra_failed") first_host = r.host;
    final_host = latest.at(t).host;
    EXPECT_NE(first_host, final_host) << "trial " << t;
  }
  EXPECT_EQ(searcher_.observed_.size(), 3u);
  EXPECT_TRUE(searcher_.forgotten_.empty());
}

TEST_F(OrchestratorTest, RetriesRunOutIntoAnInfrastructureFailure) {
  script("kill -KILL $$");
  config_.budget.max_trials = 1;
  config_.resources.max_retries = 2;
  std::atomic<int> stops{0};
  EXPECT_EQ(run(1, 1, stops), SweepEnd::kCompleted);
  const auto latest = records_.latest();
  ASSERT_EQ(latest.size(), 1u);
  EXPECT_EQ(latest.at(0).status, "infra_failed");
  EXPECT_EQ(latest.at(0).attempt, 2);
  EXPECT_EQ(searcher_.forgotten_.size(), 1u);
  EXPECT_TRUE(searcher_.observed_.empty());
}

TEST_F(OrchestratorTest, GangSpansAgentsWithOneRendezvous) {
  script(
      "echo \"$RANK $WORLD_SIZE $MASTER_ADDR:$MASTER_PORT\" > rank$RANK.txt; "
      "if [ \"$RANK\" = 0 ]; then " +
      std::string(kOkScript) + "; fi");
  config_.resources.devices_per_trial = 2;
  config_.budget.max_trials = 2;
  std::atomic<int> stops{0};
  EXPECT_EQ(run(2, 1, stops), SweepEnd::kCompleted);
  const auto latest = records_.latest();
  ASSERT_EQ(latest.size(), 2u);
  for (const auto& [id, row] : latest) {
    EXPECT_EQ(row.status, "ok") << row.reason;
    EXPECT_EQ(row.devices, 2);
    ASSERT_EQ(row.slots.size(), 2u);
    EXPECT_NE(row.slots[0], row.slots[1]);
    const std::string r0 = test::read_file((fs::path(row.dir) / "rank0.txt").string());
    const std::string r1 = test::read_file((fs::path(row.dir) / "rank1.txt").string());
    EXPECT_EQ(r0.substr(0, 4), "0 2 ");
    EXPECT_EQ(r1.substr(0, 4), "1 2 ");
    EXPECT_EQ(r0.substr(4), r1.substr(4));  // same master address and port
  }
}

TEST_F(OrchestratorTest, ImpossibleResourcesAreRefusedBeforeAnyTrial) {
  script(kOkScript);
  config_.resources.devices_per_trial = 3;
  std::atomic<int> stops{0};
  try {
    run(2, 1, stops);
    FAIL() << "expected a ConfigError";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("at most 2"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(records_.rows_.empty());
}

TEST_F(OrchestratorTest, StopThenResumeRunsEveryTrialExactlyOnce) {
  // Trial 0 takes 0.1 s, trial 1 0.4 s: trial 1 is running when trial 0 ends.
  script("case $SCALETUNE_PARAM_X in 0.05) sleep 0.1 ;; *) sleep 0.4 ;; esac; " +
         std::string(kOkScript));
  config_.budget.max_trials = 8;
  config_.resources.on_stop = "kill";
  std::atomic<int> stops{0};
  // Stop after the first recorded trial.
  EXPECT_EQ(run(1, 2, stops, false,
                [&](const TrialRow&) {
                  int done = 0;
                  for (const auto& r : records_.rows_) done += r.final() ? 1 : 0;
                  if (done >= 1) stops = 1;
                }),
            SweepEnd::kStopped);
  const auto first = records_.latest();
  int interrupted = 0, ok = 0;
  for (const auto& [id, row] : first) {
    interrupted += row.status == "interrupted" ? 1 : 0;
    ok += row.status == "ok" ? 1 : 0;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(interrupted, 1);

  // A new orchestrator from the saved state and the records.
  searcher_ = FakeSearcher::load(records_.texts_.at(kSearchStateKey));
  std::atomic<int> no_stop{0};
  EXPECT_EQ(run(1, 2, no_stop, true), SweepEnd::kCompleted);
  const auto latest = records_.latest();
  ASSERT_EQ(latest.size(), 8u);
  std::int64_t expected = 0;
  for (const auto& [id, row] : latest) {
    EXPECT_EQ(id, expected++);
    EXPECT_EQ(row.status, "ok");
  }
  std::map<std::int64_t, int> finals;
  for (const auto& r : records_.rows_) finals[r.trial] += r.final() ? 1 : 0;
  for (const auto& [id, n] : finals) EXPECT_EQ(n, 1) << "trial " << id;
  EXPECT_TRUE(searcher_.outstanding_.empty());
}

TEST_F(OrchestratorTest, ResumeReplaysResultsRecordedBeforeTheStateWasSaved) {
  // As if killed right after appending trial 0's final row: the saved state still has s0 (and
  // s1, which never started) outstanding.
  script(kOkScript);
  config_.budget.max_trials = 3;
  searcher_.suggest();
  searcher_.suggest();
  TrialRow row;
  row.trial = 0;
  row.suggestion_id = "s0";
  row.status = "ok";
  row.objective = 0.05;
  row.cost = 2;
  row.params = {{"x", 0.05}};
  records_.append(row);
  std::atomic<int> stops{0};
  EXPECT_EQ(run(1, 1, stops, true), SweepEnd::kCompleted);
  EXPECT_EQ(records_.latest().size(), 3u);
  EXPECT_TRUE(searcher_.observed_.count("s0"));
  EXPECT_TRUE(searcher_.forgotten_.count("s1"));
  EXPECT_TRUE(searcher_.outstanding_.empty());
}

// Trials 0 and 1 hold 2 of 3 slots for a second; trial 2 needs all 3 (devices = ceil(x / 0.1)).
// Returns the latest rows after a sweep of 6 trials with `backfill` asks while trial 2 waits.
class BackfillTest : public OrchestratorTest {
 protected:
  std::map<std::int64_t, TrialRow> sweep(int backfill) {
    script("case $SCALETUNE_PARAM_X in 0.05) sleep 1 ;; esac; " + std::string(kOkScript));
    searcher_.xs_ = {0.05, 0.05, 0.3, 0.06, 0.07, 0.08};
    config_.resources.devices_rule.key = "x";
    config_.resources.devices_rule.per_device = 0.1;
    config_.resources.devices_rule.max = 3;
    config_.resources.backfill = backfill;
    config_.budget.max_trials = 6;
    std::atomic<int> stops{0};
    EXPECT_EQ(run(1, 3, stops), SweepEnd::kCompleted);
    auto latest = records_.latest();
    EXPECT_EQ(latest.size(), 6u);
    for (const auto& [id, row] : latest) {
      EXPECT_EQ(row.status, "ok") << row.reason;
      EXPECT_EQ(row.slots.size(), static_cast<std::size_t>(row.devices));
    }
    EXPECT_EQ(latest.at(2).devices, 3);
    return latest;
  }
};

TEST_F(BackfillTest, SmallTrialsFillIdleSlotsWhileTheBigOneWaitsAndCannotStarveIt) {
  const auto latest = sweep(2);
  // Trial 3 ran on the slot that trials 0 and 1 left idle, before the big trial 2 started.
  EXPECT_LT(latest.at(3).start_unix, latest.at(2).start_unix);
  // At most `backfill` (2) later trials overtook it; then the freed slots waited for it.
  int overtook = 0;
  for (const auto& [id, row] : latest)
    overtook += id > 2 && row.start_unix < latest.at(2).start_unix;
  EXPECT_GE(overtook, 1);
  EXPECT_LE(overtook, 2);
  EXPECT_GE(latest.at(2).start_unix, std::max(latest.at(0).end_unix, latest.at(1).end_unix) - 0.05);
}

TEST_F(BackfillTest, WithoutBackfillIdleSlotsWaitForTheBigTrial) {
  const auto latest = sweep(0);
  for (const auto& [id, row] : latest)
    if (id > 2) {
      EXPECT_GE(row.start_unix, latest.at(2).start_unix) << "trial " << id;
    }
}

// Costs are known ahead here (the searcher predicts 10 x, the script reports 10 x): a trial that
// would take the recorded plus running trials over max_cost is not started, so the sweep ends
// within the budget instead of overshooting it by the trials started before the last one ended.
TEST_F(OrchestratorTest, CostBudgetCountsThePredictedCostOfRunningTrials) {
  script(
      "awk -v x=\"$SCALETUNE_PARAM_X\" 'BEGIN { printf \"{\\\"objective\\\": %s, \\\"cost\\\": "
      "%.17g}\", x, 10 * x }' > result.json");
  searcher_.cost_per_x_ = 10;  // x = 0.05, 0.10, 0.15, ...: costs 0.5, 1, 1.5, 2, 2.5, ...
  config_.budget.max_trials = 0;
  config_.budget.max_cost = 4;
  std::atomic<int> stops{0};
  EXPECT_EQ(run(1, 2, stops), SweepEnd::kCompleted);
  double total = 0;
  for (const auto& [id, row] : records_.latest()) {
    EXPECT_EQ(row.status, "ok") << row.reason;
    total += row.cost;
  }
  EXPECT_LE(total, 4.0 + 1e-9);
  EXPECT_GE(total, 3.0 - 1e-9);  // trials 0-2 fit (0.5 + 1 + 1.5); trial 3 (2) would not
  EXPECT_EQ(records_.latest().size(), 3u);
  // The refused suggestions were forgotten, never recorded; none is left outstanding.
  EXPECT_FALSE(searcher_.forgotten_.empty());
  for (const auto& id : searcher_.forgotten_)
    for (const auto& r : records_.rows_) EXPECT_NE(r.suggestion_id, id);
  EXPECT_TRUE(searcher_.outstanding_.empty());
}

TEST(CostBudget, CommittedCostsCountAgainstTheLimits) {
  BudgetConfig limits;
  limits.max_cost = 10;
  limits.max_device_hours = 1;
  Budget b(limits);
  b.add(4, 0, 1800);
  Spent committed;
  committed.cost = 5;
  EXPECT_EQ(b.exhausted(0, 0, committed), "");
  Spent next;
  next.cost = 1;
  EXPECT_EQ(b.would_exceed(committed, next), "");  // 4 + 5 + 1 = 10: exactly the limit
  next.cost = 1.5;
  EXPECT_NE(b.would_exceed(committed, next).find("max_cost 10 would be exceeded"),
            std::string::npos);
  committed.cost = 6;
  EXPECT_NE(b.exhausted(0, 0, committed).find("max_cost 10 reached"), std::string::npos);
  committed = {};
  next = {};
  next.device_seconds = 1801;  // 0.5 h spent + 0.50028 h > 1 h
  EXPECT_NE(b.would_exceed(committed, next).find("max_device_hours"), std::string::npos);
}

TEST(DevicesRule, FromAConfigKeyOrTheLmEstimates) {
  ResourcesConfig r;
  r.devices_rule.key = "n_params";
  r.devices_rule.per_device = 1e7;
  r.devices_rule.max = 4;
  YAML::Node cfg = YAML::Load("{task: synthetic, n_params: 2.5e7}");
  EXPECT_EQ(devices_for(r, cfg), 3);
  cfg["n_params"] = 1e9;
  EXPECT_EQ(devices_for(r, cfg), 4);  // capped
  cfg["n_params"] = 1;
  EXPECT_EQ(devices_for(r, cfg), 1);

  const YAML::Node lm = YAML::Load(
      "{task: lm, model: {n_layer: 2, d_model: 32, n_head: 4, context: 32}, "
      "data: {source: synthetic, synthetic: {vocab: 64}}, train: {tokens: 1.0e5}}");
  trainer::LmShape shape;
  shape.n_layer = 2;
  shape.d_model = 32;
  shape.n_head = 4;
  shape.d_ff = 128;
  shape.context = 32;
  shape.vocab = 64;
  const double params = static_cast<double>(trainer::lm_param_count(shape).total);
  r.devices_rule.key = "params";
  r.devices_rule.per_device = params / 2;  // exactly two devices' worth
  EXPECT_EQ(devices_for(r, lm), 2);
  r.devices_rule.per_device = params / 2.5;
  EXPECT_EQ(devices_for(r, lm), 3);
  EXPECT_THROW(devices_for(r, cfg), std::invalid_argument);  // not an lm config
  r.devices_rule.key = "model.nope";
  EXPECT_THROW(devices_for(r, lm), std::invalid_argument);
}

}  // namespace
}  // namespace scaletune::sweep
