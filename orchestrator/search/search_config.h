// The search config structs: the `search:`, `direction:`, `seed:` and `carbs:` keys shared by
// ask-tell configs and sweep configs. Header-only (no library to link), so the config kinds and
// the sweep config can bind and validate them.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "orchestrator/config/binder.h"

namespace scaletune::search {

// One searched parameter, in user ("param") units. The searcher works in "basic" units:
//   linear: b = v / scale        log: b = log_base(v) / scale        logit: b = log10(v/(1-v)) /
//   scale
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
    v.field("space", space, "Search space: linear, log or logit.")
        .one_of({"linear", "log", "logit"});
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
  inline void validate(std::vector<std::string>& errors) const;
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
  bool conservative_pareto = true;            // noisy single results do not displace resampled ones
  bool clamp_pareto_threshold = true;  // random log-uniform cost threshold pushes up the cost axis
  bool pareto_value_always_max = false;  // ablation: compare every candidate with the best point
  // Fraction of Bayesian suggestions scored against the front at their own predicted cost only
  // (no random threshold), so the cheap end of the front is refined too; 0: the reference.
  double own_cost_fraction = 0.0;
  bool pending_origins = false;  // outstanding Bayesian suggestions are origins too
  // Trust-region style radius (not in the reference): doubled after `radius_grow_after`
  // Bayesian results in a row improved the front, halved after `radius_shrink_after` in a row
  // did not, within [min, max] x initial_search_radius.
  bool adaptive_radius = true;
  int radius_grow_after = 2;
  int radius_shrink_after = 5;
  double max_radius_factor = 4.0;
  double min_radius_factor = 0.25;
  // Trend steps (not in the reference): once the random phase is over, step one search radius
  // from the best point along the outputs' linear trend (at constant cost) until two steps in a
  // row fail to beat the best result, at most this many times; 0: the reference.
  int trend_steps = 20;
  std::string outstanding = "thompson";  // pending suggestions: thompson (sampled) | mean
  std::string hyperparameters = "fit";   // GP hyper-parameters: fit (MAP, L-BFGS) | fixed
  int refit_every = 4;                   // refit hyper-parameters after this many new observations
  int max_gp_observations = 400;         // larger histories are modelled on a local subset (docs)

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
    v.field("own_cost_fraction", own_cost_fraction,
            "Fraction of Bayesian suggestions compared with the front at their own predicted "
            "cost, without the random threshold (refines the cheap end of the front).")
        .min(0.0)
        .max(1.0);
    v.field("pending_origins", pending_origins,
            "Also search around outstanding Bayesian suggestions (parallel workers climb the "
            "front instead of all starting from the observed one).");
    v.field("adaptive_radius", adaptive_radius,
            "Double the search radius after a run of front improvements, halve it after a run "
            "without (false: the reference's fixed radius).");
    v.field("radius_grow_after", radius_grow_after,
            "Bayesian results in a row that improve the front before the radius doubles.")
        .min(1);
    v.field("radius_shrink_after", radius_shrink_after,
            "Bayesian results in a row that do not improve the front before the radius halves.")
        .min(1);
    v.field("max_radius_factor", max_radius_factor,
            "Largest radius, as a multiple of initial_search_radius (a power of 2 is reached).")
        .min(1.0);
    v.field("min_radius_factor", min_radius_factor,
            "Smallest radius, as a multiple of initial_search_radius.")
        .above(0.0)
        .max(1.0);
    v.field("trend_steps", trend_steps,
            "After the random phase, step from the best point along the outputs' linear trend at "
            "constant cost until two steps in a row do not beat it, at most this many times (0: "
            "never; walks off a misplaced center quickly).")
        .min(0);
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
  // Unique parameter names (each ParamSpec checks itself).
  inline void validate(std::vector<std::string>& errors) const;
  int sign() const { return direction == "maximize" ? 1 : -1; }
};

// Param-space bounds of a spec with defaults filled in (before the integer widening by 0.1).
inline double param_min(const ParamSpec& s) {
  if (s.min) return *s.min;
  return s.space == "linear" ? -std::numeric_limits<double>::infinity() : 0.0;
}
inline double param_max(const ParamSpec& s) {
  if (s.max) return *s.max;
  return s.space == "logit" ? 1.0 : std::numeric_limits<double>::infinity();
}

namespace detail {
inline std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
}  // namespace detail

inline void ParamSpec::validate(std::vector<std::string>& errors) const {
  const double lo = param_min(*this), hi = param_max(*this);
  if (!(lo < hi))
    errors.push_back("min (" + detail::num(lo) + ") must be below max (" + detail::num(hi) + ")");
  if (space == "log" && lo < 0)
    errors.push_back("a log space needs min >= 0, got " + detail::num(lo));
  if (space == "log" && (base <= 0 || base == 1))
    errors.push_back("base must be > 0 and != 1, got " + detail::num(base));
  if (space == "logit" && (lo < 0 || hi > 1))
    errors.push_back("a logit space lives in [0, 1]; got min " + detail::num(lo) + ", max " +
                     detail::num(hi));
  if (space == "logit" && integer)
    errors.push_back("integer has no effect in a logit space; remove it or use space: log");
  if (integer && space == "log" && !(lo - 0.1 > 0))
    errors.push_back("an integer log space needs min > 0.1 (its bound is min - 0.1); set min: 1");
  if (!(center > lo && center < hi))
    errors.push_back("center " + detail::num(center) + " must lie strictly inside (" +
                     detail::num(lo) + ", " + detail::num(hi) + ")");
  if (integer && std::nearbyint(center / round_to) * round_to != center)
    errors.push_back("center " + detail::num(center) +
                     " of an integer parameter must be a multiple of " + "round_to (" +
                     detail::num(round_to) + ")");
}

inline void SearchConfig::validate(std::vector<std::string>& errors) const {
  std::set<std::string> seen;
  for (const auto& [name, spec] : search) {
    if (name.empty()) errors.push_back("search: a parameter has an empty name");
    if (!seen.insert(name).second) errors.push_back("search: parameter '" + name + "' is repeated");
  }
}

}  // namespace scaletune::search
