// The fitting pipeline behind `scaletune fit`: from runs (compute, loss, N, D, hyper-parameters,
// optional learning curves) to every scaling law with bootstrap-over-runs intervals, a
// leave-one-scale-out check and flags for laws the data do not determine (docs/scaling.md).
//
// Every law, whatever its form, is one `Law` record: named coefficients, their bootstrap
// replicates and percentile intervals, the points it was fitted on and its residuals. That record
// is also the JSON schema of fit.json, which `extrapolate` and the report read back.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scaling/chinchilla.h"

namespace scaletune::scaling {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One training run. `compute` and `loss` are required; N and D enable the Chinchilla fits
// (either may be derived from C = 6 N D). `params` holds the run's numeric hyper-parameters.
struct Run {
  std::string id;
  double compute = kNaN;  // training FLOPs
  double loss = kNaN;     // final objective, lower is better
  double n = kNaN;        // parameters
  double d = kNaN;        // training tokens
  std::map<std::string, double> params;
  Curve curve;  // optional checkpoints (compute so far, loss) for Approach 1
};

struct Dataset {
  std::string source;  // "file.csv", "records.h5", "sweep"
  std::vector<Run> runs;
};

// Builds a dataset from plain arrays (one entry per run), for callers such as the sweep
// orchestrator. `n`/`d` may be empty; `params` maps a name to one value per run.
Dataset dataset_from_arrays(const std::vector<double>& compute, const std::vector<double>& loss,
                            const std::map<std::string, std::vector<double>>& params,
                            const std::vector<double>& n = {}, const std::vector<double>& d = {});

struct FitOptions {
  // Which families to fit; empty = every one the data allow. Names: power (hyper-parameters,
  // N and D vs compute on the Pareto front and the near-optimal band), two_variable,
  // approach1, approach2, approach3, approach3_likelihood, frontier.
  std::vector<std::string> laws;
  double band_fraction = 0.0025;  // near-optimal band: loss <= (1 + f) * best in the bucket
  double bucket_gap = 0.25;       // compute scales: new bucket where C jumps by > 25 %
  std::vector<double> budgets;    // IsoFLOP budgets; empty = buckets found from the data
  double snap_tolerance = 0.10;   // a run joins a budget within +-10 % of its compute
  int isoflop_min_points = 4;
  int bootstrap = 1000;  // resamples of whole runs (0 = no intervals)
  std::uint64_t seed = 42;
  double level = 0.95;  // central percentile interval
  int threads = 2;
  Approach3Options approach3;  // delta, grid, tolerances (threads set from `threads`)
  // Flags: a law is flagged when it has fewer distinct compute scales than this,
  int min_scales = 3;
  // its exponent's interval is wider than max(relative * |p|, absolute),
  double max_relative_width = 0.5;
  double max_absolute_width = 0.05;
  // or leaving out the largest scale mispredicts it by more than this (relative).
  double max_loso_error = 0.25;
};

// A fitted law. Forms and their coefficients (in `coef`, ordered by `names`):
//   power          y = k * C^p                      k, p
//   two_variable   y = k * N^p * D^q                k, p, q
//   loss_surface   L = E + A/N^alpha + B/D^beta     E, A, B, alpha, beta (+ derived a, b, G)
//   loss_frontier  L = E + k * C^-gamma             E, k, gamma
struct Law {
  std::string y;  // fitted quantity: a hyper-parameter name, "N", "D" or "loss"
  std::string form;
  std::string method;  // pareto_front, near_optimal_band, approach1, approach2, approach3, ...
  std::vector<std::string> names;
  std::map<std::string, double> coef;
  std::map<std::string, std::vector<double>> replicates;  // bootstrap values per coefficient
  std::map<std::string, std::pair<double, double>> interval;
  std::map<std::string, std::vector<double>> points;  // columns: C (or N, D) and y
  std::vector<double> residuals;                      // ln y - ln y_hat per point
  double r2 = kNaN;
  double objective = kNaN;  // approach 3 only
  int scales = 0;           // distinct compute scales among the points
  nlohmann::json loso;      // {left_out_compute, points, relative_error} or {skipped: why}
  nlohmann::json extra;     // method-specific details (IsoFLOP curves, start counts, ...)
  std::vector<std::string> flags;

  std::string key() const { return y + " " + form + " " + method; }
  bool flagged() const { return !flags.empty(); }
  // Evaluates the law at compute C with the given coefficients (defaults: the fit). For
  // two_variable laws N and D must be given; loss_surface returns L_opt(C) for y = "loss",
  // N_opt(C) for "N" and D_opt(C) for "D".
  double at(double compute, const std::map<std::string, double>& c, double n = kNaN,
            double d = kNaN, const std::string& quantity = "") const;
  double at(double compute) const { return at(compute, coef); }
  // The law's value at C for every bootstrap replicate (NaN where the replicate failed).
  std::vector<double> replicate_values(double compute, const std::string& quantity = "") const;
};

struct FitResult {
  std::string source;
  FitOptions options;
  std::vector<Run> runs;           // the runs used (after dropping unusable ones)
  std::vector<std::size_t> front;  // Pareto-front run indices
  std::vector<std::size_t> band;   // near-optimal band run indices
  std::vector<int> bucket;         // compute scale per run
  std::vector<Law> laws;
  std::vector<std::string> warnings;  // dropped runs, skipped laws and why
  int bootstrap_done = 0;
  double min_compute = kNaN, max_compute = kNaN;
  double max_tokens_seen = kNaN;  // largest D of any run

  // The first law of `y` fitted by `method` (power laws come before two-variable ones), or of
  // the given form.
  const Law* find(const std::string& y, const std::string& method,
                  const std::string& form = "") const;
};

// Fits everything. Throws std::invalid_argument when the dataset cannot be fitted at all (no
// usable runs, fewer than 2 compute scales); individual laws that fail become warnings.
FitResult fit_laws(const Dataset& data, const FitOptions& options);

// What the sweep orchestrator calls every k observations: plain arrays in, laws out, with a
// small bootstrap (intervals firm up as the front extends) and only the power laws and the
// loss frontier by default. Never throws on data; too little data gives laws with flags or
// an empty result with a warning.
FitResult refit_laws(const std::vector<double>& compute, const std::vector<double>& loss,
                     const std::map<std::string, std::vector<double>>& params, int bootstrap = 200,
                     std::uint64_t seed = 42);

nlohmann::json to_json(const FitResult& fit);
nlohmann::json to_json(const Law& law);
// Reads fit.json back; throws std::invalid_argument naming the missing or malformed key.
FitResult fit_from_json(const nlohmann::json& j);

}  // namespace scaletune::scaling
