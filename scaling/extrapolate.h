// Extrapolation of fitted laws to a target compute: N_opt, D_opt, the expected loss and the
// optimal hyper-parameters, each with the percentile interval of its bootstrap replicates pushed
// all the way to the target (scaling-methods.md §6), a concrete transformer shape for N, and
// warnings for long extrapolations and for data the run would need but may not have.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scaling/fit.h"

namespace scaletune::scaling {

struct ExtrapolateOptions {
  double compute = 0;           // target training FLOPs (required)
  double aspect_ratio = 64;     // d_model / n_layer of the emitted shape
  int head_dim = 64;            // d_model is a multiple of it; n_head = d_model / head_dim
  double max_decades = 1.0;     // warn when the target is further beyond the largest run
  double available_tokens = 0;  // unique tokens available (0 = unknown, no check)
  int seq_len = 1024;           // tokens per sequence, when the batch law is in sequences
};

// A predicted value with its interval and the law it came from.
struct Estimate {
  double value = kNaN;
  double lo = kNaN, hi = kNaN;
  std::string law;                 // "lr near_optimal_band", "loss approach3", ...
  std::vector<std::string> flags;  // the law's flags: the estimate is unreliable when non-empty
  bool ok() const { return std::isfinite(value); }
};

// A GPT shape for N non-embedding parameters: N = 12 n_layer d_model^2 (d_ff = 4 d_model).
struct ModelShape {
  int n_layer = 0, d_model = 0, n_head = 0;
  double params = 0;  // 12 n_layer d_model^2 of the rounded shape
};

ModelShape shape_for_params(double n, double aspect_ratio, int head_dim);

struct Prediction {
  double compute = 0;
  double decades_beyond = 0;  // log10(target / largest compute in the fit)
  Estimate n, d, loss;
  std::map<std::string, Estimate> params;  // every hyper-parameter with a compute law
  std::string lr_param, batch_param;       // which params are the learning rate and batch
  bool batch_in_tokens = true;
  Estimate batch_tokens;  // the batch in tokens
  double steps = kNaN;    // D / batch_tokens
  ModelShape shape;
  std::vector<std::string> warnings;
};

// Throws std::invalid_argument when the fit has no usable law for N or the loss, or the
// options are invalid.
Prediction extrapolate(const FitResult& fit, const ExtrapolateOptions& options);

nlohmann::json to_json(const Prediction& p);

}  // namespace scaletune::scaling
