// CARBS: cost-aware Pareto-region Bayesian search (arXiv 2306.08055), the public interface.
//
// What it is: an ask/tell optimizer over a box of real (optionally integer) parameters that
// models output, cost and failure with Gaussian processes and proposes points near the
// performance-cost Pareto front (docs/search.md; the algorithm is specified in carbs.md).
// What it is not: a scheduler. The caller (the sweep orchestrator, `scaletune ask-tell`, a test)
// decides when to ask, runs the trial and tells the result.
//
// Config (YAML, same top-level keys in a sweep config and an ask-tell config):
//   search:                       # ordered: dimension order is the order written
//     optim.lr: {space: log, center: 3e-4, scale: 0.5}
//     model.n_layer: {space: log, center: 6, min: 2, max: 48, integer: true}
//   direction: minimize           # minimize | maximize
//   seed: 0
//   carbs: {num_random_samples: 4, ...}
//
// Determinism: every random draw comes from the searcher's own RNG (no global state); the whole
// state, RNG included, serializes to JSON, and a reloaded searcher continues exactly as the
// uninterrupted one would. One Carbs object is safe to share between threads (calls serialize).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "orchestrator/search/search_config.h"

namespace scaletune::search {

// Bad input to the searcher (unknown suggestion id, missing parameter, malformed state). The
// message says what was wrong; the searcher's state is unchanged.
class SearchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class SuggestionKind { kRandom, kBayes, kResample, kFallback, kTrend };
// "random", "bo", "resample", "fallback", "trend"
const char* kind_name(SuggestionKind kind);

struct Suggestion {
  std::string id;                        // pass back in Observation::suggestion_id
  std::map<std::string, double> params;  // param units; integer parameters hold exact integers
  // Model predictions at the point (NaN for random and resample suggestions).
  double predicted_output = std::numeric_limits<double>::quiet_NaN();
  double predicted_cost = std::numeric_limits<double>::quiet_NaN();
  double p_success = std::numeric_limits<double>::quiet_NaN();
  SuggestionKind kind = SuggestionKind::kRandom;
  std::string fallback_reason;  // why the model was not used (kind == kFallback); also logged
};

struct Observation {
  std::string suggestion_id;  // "" for a point the caller chose
  // Parameter values; may be empty when suggestion_id is given (the suggestion's are used).
  std::map<std::string, double> params;
  double output = std::numeric_limits<double>::quiet_NaN();  // non-finite = failure
  double cost = 1.0;
  bool failed = false;  // the trial failed because of its parameters (OOM, divergence, ...)
};

// One Pareto point: a group of observations at the same parameters.
struct ParetoPoint {
  std::map<std::string, double> params;
  double output = 0;  // mean over the group
  double cost = 0;    // mean over the group
  int count = 0;      // observations in the group
};

// ---- Pareto front over plain observations (also used by `scaletune status` and scaling fits).

struct FrontOptions {
  int sign = -1;                   // +1: higher output is better, -1: lower
  double min_cost_fraction = 0.2;  // cheap bucket: costs <= this quantile form one entry
  bool conservative = true;        // see carbs.md §5
};

struct FrontGroup {
  std::vector<std::size_t> members;  // indices into the observation arrays
  double mean_output = 0;
  double mean_cost = 0;
};

// The Pareto front of observations (output_i, cost_i), grouped by `group_of[i]` (observations
// with the same id share parameters; empty: every observation is its own group). Returns the
// front's groups in increasing cost: the best of the cheap bucket first, then every costlier
// group that improves on the previous entry. Empty input gives an empty front.
std::vector<FrontGroup> pareto_front(const std::vector<double>& outputs,
                                     const std::vector<double>& costs,
                                     const std::vector<std::size_t>& group_of,
                                     const FrontOptions& options);

// ---- The searcher.

class Carbs {
 public:
  // Throws SearchError when the config is invalid (config::bind<SearchConfig> already checks).
  explicit Carbs(const SearchConfig& config);
  ~Carbs();
  Carbs(Carbs&&) noexcept;
  Carbs& operator=(Carbs&&) noexcept;
  Carbs(const Carbs&) = delete;
  Carbs& operator=(const Carbs&) = delete;

  // A new point to evaluate; remembered as outstanding until observed or forgotten. Never
  // returns a point equal to another outstanding suggestion's unless it is a deliberate resample.
  Suggestion suggest();

  // Records a result. With a suggestion id, that suggestion stops being outstanding. A
  // non-finite output or `failed` records a failure (feeds the success model only).
  // Throws SearchError (state unchanged) for an unknown id, a missing or unknown parameter name,
  // or a non-finite / non-positive cost.
  void observe(const Observation& observation);

  // Drops an outstanding suggestion whose trial failed for infrastructure reasons (node lost,
  // preempted): nothing is learned from it. Throws SearchError for an unknown id.
  void forget(const std::string& suggestion_id);

  // Adds earlier observations (e.g. another sweep's records). Parameters a record lacks are taken
  // from `added_defaults`, else from the parameter's center. Moves the search center to the best
  // success. Throws SearchError for unknown parameter names.
  void warm_start(const std::vector<Observation>& observations,
                  const std::map<std::string, double>& added_defaults = {});

  // The current (conservative if configured) Pareto front, in increasing cost.
  std::vector<ParetoPoint> pareto() const;

  // Complete state as JSON text (config, observations, outstanding suggestions, RNG, resample
  // count, fitted hyper-parameters). load_state(save_state()) continues identically.
  std::string save_state() const;
  static Carbs load_state(const std::string& json_text);  // throws SearchError

  const SearchConfig& config() const;
  std::vector<std::string> param_names() const;  // dimension order
  std::size_t num_successes() const;
  std::size_t num_failures() const;
  std::size_t num_outstanding() const;
  // The radius Bayesian candidates are drawn with now (basic units; see adaptive_radius).
  double search_radius() const;
  std::vector<std::string> outstanding_ids() const;

  struct Impl;

 private:
  explicit Carbs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace scaletune::search
