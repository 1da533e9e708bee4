// The sweep orchestrator: asks the searcher for settings, places trials on the agents' slots,
// records every attempt's end, teaches the searcher, and fills freed slots at once (no
// generation barrier), until the budget is spent or it is asked to stop.
//
// It talks to agents only through messages (transport.h), to the search through `Searcher` and
// to the records file through `SweepRecords`, so tests can run it against fakes.
//
// Crash safety, in the order things happen:
//   suggest -> save the searcher state -> append a `running` row -> launch
//   trial ends -> append its final row -> observe (or forget) -> ... -> the next suggestion saves
//   the state again.
// A restarted orchestrator (`resume`) replays what a kill may have cut short: outstanding
// suggestions whose trial has a final row are observed (or forgotten), those whose last row is
// running, interrupted or a retryable infrastructure failure are re-queued, and those never
// recorded are forgotten. So the latest rows hold every trial exactly once.
//
// Cost per event on the hot path: O(log running) bookkeeping and one O(1) append; nothing is
// O(total trials) except the searcher itself (suggest, save_state; docs/sweep.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "orchestrator/search/carbs.h"
#include "orchestrator/sweep/budget.h"
#include "orchestrator/sweep/outcome.h"
#include "orchestrator/sweep/placement.h"
#include "orchestrator/sweep/progress.h"
#include "orchestrator/sweep/sweep_config.h"
#include "orchestrator/sweep/transport.h"
#include "orchestrator/sweep/trial_config.h"
#include "trainer/core/result.h"

namespace scaletune::sweep {

// One row of the records' trials table: an attempt of a trial starting (`running`) or ending.
// The last row of a trial id is the one that counts (store::Records::latest_trials).
struct TrialRow {
  std::int64_t trial = 0;
  std::string suggestion_id;
  int attempt = 0;           // 0 for the first run; +1 per retry or resume
  std::string status;        // running | ok | failed | infra_failed | interrupted
  std::string failure_kind;  // see outcome.h; "" when ok
  std::string reason;
  ParamValues params;
  double objective = trainer::kNaN;
  double cost = trainer::kNaN;  // the sweep's cost metric
  double flops = trainer::kNaN;
  double flops_6n = trainer::kNaN;
  double tokens = trainer::kNaN;
  double device_seconds = trainer::kNaN;
  double wall_seconds = trainer::kNaN;
  int devices = 1;
  std::string host;                   // host of rank 0
  std::vector<std::string> slots;     // "host/cuda:0" per rank, rank 0 first (records: `slots`)
  double start_unix = trainer::kNaN;  // seconds since the epoch
  double end_unix = trainer::kNaN;
  std::string dir;
  std::string log_path;
  std::vector<trainer::CurvePoint> curve;
  std::map<std::string, double> metrics;

  bool final() const { return status == "ok" || status == "failed" || status == "infra_failed"; }
};

// What the orchestrator needs from the records file. Every call is durable on return.
class SweepRecords {
 public:
  virtual ~SweepRecords() = default;
  virtual void append(const TrialRow& row) = 0;  // with its curve, if any
  virtual void put_text(const std::string& key, const std::string& text) = 0;
  virtual std::vector<TrialRow> rows() = 0;  // every row so far, in the order written (resume)
};

// Texts the orchestrator keeps in the records file.
inline constexpr const char* kSearchStateKey = "search_state";
inline constexpr const char* kScalingKey = "scaling_fit";

// What the orchestrator needs from the search (search::Carbs in a sweep; fakes in tests).
class Searcher {
 public:
  virtual ~Searcher() = default;
  virtual search::Suggestion suggest() = 0;
  virtual void observe(const search::Observation& observation) = 0;
  virtual void forget(const std::string& suggestion_id) = 0;
  virtual std::vector<std::string> outstanding_ids() const = 0;
  virtual std::string save_state() const = 0;
};

class CarbsSearcher : public Searcher {
 public:
  explicit CarbsSearcher(search::Carbs carbs) : carbs_(std::move(carbs)) {}
  search::Suggestion suggest() override { return carbs_.suggest(); }
  void observe(const search::Observation& o) override { carbs_.observe(o); }
  void forget(const std::string& id) override { carbs_.forget(id); }
  std::vector<std::string> outstanding_ids() const override { return carbs_.outstanding_ids(); }
  std::string save_state() const override { return carbs_.save_state(); }
  search::Carbs& carbs() { return carbs_; }

 private:
  search::Carbs carbs_;
};

// Why the orchestrator returned.
enum class SweepEnd {
  kCompleted,  // the budget is spent and every trial has ended
  kStopped,    // stopped early by a signal; `resume` continues it
};

struct OrchestratorOptions {
  std::string trials_dir;        // trial directories are created below it
  std::vector<int> agent_ranks;  // transport ranks of the agents to wait for
  double hello_timeout_seconds = 120;
  bool terminal = false;  // progress redrawn in place (else log lines)
  bool resume = false;
  // Called every `config.scaling.refit_every` observations with the final rows so far; returns
  // a JSON text stored under kScalingKey (empty: nothing stored). Optional.
  std::function<std::string(const std::vector<TrialRow>&)> refit;
  // Test hook: called after every recorded trial.
  std::function<void(const TrialRow&)> on_record;
};

class Orchestrator {
 public:
  Orchestrator(const SweepConfig& config, Searcher& searcher, SweepRecords& records,
               Transport& transport, OrchestratorOptions options);

  // Runs the sweep. `stop_requests` counts stop signals: the first stops suggesting and applies
  // resources.on_stop to running trials; a second one kills them. Throws config::ConfigError
  // when the allocation can never hold a trial (agents are shut down first), and
  // std::runtime_error when agents do not report in time.
  SweepEnd run(const std::atomic<int>& stop_requests);

  const Budget& budget() const { return budget_; }

 private:
  struct Part {
    int agent = 0;  // index into agents_
    std::vector<RankPlacement> ranks;
    bool launched = false;
    bool ended = false;
    std::optional<TrialEnded> end;
  };
  struct Pending {  // a trial waiting for slots
    std::int64_t trial = 0;
    std::string suggestion_id;
    ParamValues params;
    int attempt = 0;   // attempts started so far (each has its own id in messages)
    int failures = 0;  // infrastructure failures so far (retries used)
    int devices = 1;
    std::set<std::pair<int, int>> avoid;  // (agent, slot) of earlier failed attempts
    bool has_row = false;                 // a row of this trial exists (else: never started)
    Spent predicted;  // predicted cost, FLOPs and device-seconds (budget.h); `trials` unused
  };
  struct Running {
    Pending p;
    LaunchTrial launch;
    std::vector<Part> parts;
    double start_unix = 0;
    std::string launch_failure;
    bool stop_sent = false;
    bool peers_stopped = false;
  };

  void await_agents();
  void handle(const Envelope& e);
  void on_launched(const Launched& m);
  void on_launch_failed(int from, const LaunchFailed& m);
  void on_ended(int from, const TrialEnded& m);
  void finish_attempt(std::int64_t trial);
  bool try_start(Pending& p);
  bool fill_slots();
  // What a trial will cost (budget.h): its trainer's estimate, the searcher's prediction, or the
  // mean of the recorded trials.
  Spent predict(const YAML::Node& trial_config, int devices, double searcher_cost) const;
  Spent committed() const;  // predicted for the trials running and waiting: O(running)
  std::vector<std::string> slot_names(const std::vector<Part>& parts) const;
  TrialRow row_for(const Running& r, const Classification& c, const TrialEnded& rank0) const;
  void record(const Running& r, const Classification& c, const TrialEnded& rank0);
  void count(const TrialRow& row);
  void save_state();
  void restore();
  void stop_running(bool kill);
  int agent_index(int rank) const;
  ProgressState progress_state() const;
  double elapsed() const;

  const SweepConfig& config_;
  Searcher& searcher_;
  SweepRecords& records_;
  Transport& transport_;
  OrchestratorOptions options_;
  Budget budget_;
  Progress progress_;
  std::vector<AgentSlots> agents_;
  std::map<int, int> agent_of_rank_;
  std::set<std::string> shared_hosts_;  // hosts with more than one agent (slot names)
  std::map<std::int64_t, Running> running_;
  std::deque<Pending> pending_;
  std::int64_t next_trial_ = 0;
  int backfill_asks_ = 0;        // suggestions made while the current head of pending_ waits
  std::string budget_blocked_;   // why the last suggestion was refused; cleared when one ends
  double recorded_devices_ = 0;  // devices of the recorded trials (device-seconds per device)
  bool state_dirty_ = false;
  bool stopping_ = false;
  bool killing_ = false;
  std::int64_t failed_ = 0;
  std::int64_t observations_since_refit_ = 0;
  std::map<int, double> best_by_decade_;
  std::chrono::steady_clock::time_point started_;
  double resumed_wall_seconds_ = 0;
  std::vector<TrialRow> rows_for_refit_;
  // Time spent in the searcher (suggest, save_state), reported at the end: the rest of the
  // orchestrator's time per trial is its own overhead (bench/sweep).
  double suggest_seconds_ = 0;
  double save_seconds_ = 0;
  std::int64_t suggestions_ = 0;
};

}  // namespace scaletune::sweep
