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

#include "orchestrator/config/binder.h"

namespace scaletune::search {

// Bad input to the searcher (unknown suggestion id, missing parameter, malformed state). The
// message says what was wrong; the searcher's state is unchanged.
class SearchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One searched parameter, in user ("param") units. The searcher works in "basic" units:
//   linear: b = v / scale        log: b = log_base(v) / scale        logit: b = log10(v/(1-v)) / scale
// so `scale` is how many param units (decades for log, base 10) one basic unit spans; candidates
// are drawn with a standard deviation of `carbs.initial_search_radius` basic units.
struct ParamSpec {
  std::string space = "linear";  // linear | log | logit
  double center = 0;             // where the random phase starts (param units); required
  std::optional<double> min;     // default: -inf (linear), 0 (log, logit)
  std::optional<double> max;     // default: +inf (linear, log), 1 (logit)
  double scale = 1.0;            // param units (or decades) per basic unit
  bool integer = false;          // round to a multiple of round_to (not allowed for logit)
  double round_to = 1;           // rounding factor of integer parameters
  double base = 10;              // logarithm base of log spaces

  template <class V>
  void visit(V& v) {
    v.field("space", space, "Search space: linear, log or logit.").one_of({"linear", "log", "logit"});
    v.field("center", center, "Search center in parameter units (the random phase starts here).")
        .required();
    v.field("min", min, "Lower bound (default: none for linear, 0 for log and logit).");
    v.field("max", max, "Upper bound (default: none for linear and log, 1 for logit).");
    v.field("scale", scale, "Parameter units (decades for log) per unit of search radius.")
        .above(0.0);
    v.field("integer", integer, "Round to a multiple of round_to.");
    v.field("round_to", round_to, "Rounding factor of an integer parameter.").above(0.0);
    v.field("base", base, "Logarithm base of a log space.").above(0.0);
  }
  // Bounds consistent, center strictly inside them, integer log spaces have min > 0.1, ...
  void validate(std::vector<std::string>& errors) const;
};

// The `carbs:` section: algorithm settings (defaults = the reference's CARBSParams).
struct CarbsParams {
  int num_random_samples = 4;          // random phase while fewer successes than this
  double initial_search_radius = 0.3;  // std-dev of candidates around origins (basic units)
  double exploration_bias = 1.0;       // added to the EI threshold (surrogate units)
  int num_candidates_per_dim = 100;    // candidates scored per suggestion = this * dimensions
  int resample_frequency = 5;          // resample a Pareto point every n successes; 0 = never
  std::optional<double> max_suggestion_cost;  // drop candidates predicted to cost more
  double min_pareto_cost_fraction = 0.2;      // cheapest fraction collapsed into one Pareto point
  bool conservative_pareto = true;     // noisy single results do not displace resampled ones
  bool clamp_pareto_threshold = true;  // random log-uniform cost threshold pushes up the cost axis
  bool pareto_value_always_max = false;  // ablation: compare every candidate with the best point
  std::string outstanding = "thompson";  // pending suggestions: thompson (sampled) | mean
  std::string hyperparameters = "fit";   // GP hyper-parameters: fit (MAP, L-BFGS) | fixed
  int refit_every = 4;           // refit hyper-parameters after this many new observations
  int max_gp_observations = 400;  // larger histories are modelled on a local subset (docs)

  template <class V>
  void visit(V& v) {
    v.field("num_random_samples", num_random_samples,
            "Suggest random points around the center until this many trials succeeded.")
        .min(1);
    v.field("initial_search_radius", initial_search_radius,
            "Standard deviation of candidates around Pareto points, in basic units.")
        .above(0.0);
    v.field("exploration_bias", exploration_bias,
            "Added to the expected-improvement threshold; larger explores more.");
    v.field("num_candidates_per_dim", num_candidates_per_dim,
            "Candidates scored per suggestion, per searched parameter.")
        .min(1);
    v.field("resample_frequency", resample_frequency,
            "Repeat a Pareto point after every this many successes (0: never).")
        .min(0);
    v.field("max_suggestion_cost", max_suggestion_cost,
            "Never suggest points predicted to cost more than this (null: no limit).")
        .above(0.0);
    v.field("min_pareto_cost_fraction", min_pareto_cost_fraction,
            "Fraction of the cheapest trials collapsed into one Pareto point.")
        .min(0.0)
        .max(1.0);
    v.field("conservative_pareto", conservative_pareto,
            "A single lucky result must beat a group's best sample to enter the Pareto front.");
    v.field("clamp_pareto_threshold", clamp_pareto_threshold,
            "Compare cheap candidates with the front at a random cost (climbs the cost axis).");
    v.field("pareto_value_always_max", pareto_value_always_max,
            "Ablation: compare every candidate with the most expensive Pareto point.");
    v.field("outstanding", outstanding,
            "How pending suggestions enter the model: thompson (sampled outcomes) or mean.")
        .one_of({"thompson", "mean"});
    v.field("hyperparameters", hyperparameters,
            "GP hyper-parameters: fit (marginal likelihood) or fixed (the reference's values).")
        .one_of({"fit", "fixed"});
    v.field("refit_every", refit_every,
            "Refit GP hyper-parameters after this many new observations (1: every time).")
        .min(1);
    v.field("max_gp_observations", max_gp_observations,
            "Model at most this many observations (nearest to the Pareto points).")
        .min(16);
  }
};

// A search-only config (`scaletune ask-tell`); a sweep config embeds the same keys by calling
// `visit` from its own visit, so visit declares exactly search, direction, seed and carbs.
struct SearchConfig {
  config::Named<ParamSpec> search;
  std::string direction = "minimize";
  std::int64_t seed = 0;
  CarbsParams carbs;

  template <class V>
  void visit(V& v) {
    v.field("search", search, "Searched parameters: dotted config key -> space.")
        .required()
        .nonempty();
    v.field("direction", direction, "Whether lower or higher output is better.")
        .one_of({"minimize", "maximize"});
    v.field("seed", seed, "Seed of the searcher's random numbers.");
    v.field("carbs", carbs, "Settings of the CARBS algorithm.");
  }
  // Unique names, each parameter valid (named in the message), ...
  void validate(std::vector<std::string>& errors) const;
  int sign() const { return direction == "maximize" ? 1 : -1; }
};

enum class SuggestionKind { kRandom, kBayes, kResample, kFallback };
const char* kind_name(SuggestionKind kind);  // "random", "bo", "resample", "fallback"

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
  int sign = -1;                          // +1: higher output is better, -1: lower
  double min_cost_fraction = 0.2;         // cheap bucket: costs <= this quantile form one entry
  bool conservative = true;               // see carbs.md §5
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
  std::vector<std::string> outstanding_ids() const;

  struct Impl;

 private:
  explicit Carbs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace scaletune::search
