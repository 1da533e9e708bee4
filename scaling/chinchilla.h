// The three Chinchilla approaches to the compute-optimal allocation (Hoffmann et al. 2022, as
// replicated by Besiroglu et al. 2024; scaling-methods.md §1-§3):
//   1  envelope of loss-vs-compute learning curves (or the Pareto front of final points),
//   2  IsoFLOP parabolas in ln N per compute budget, then power laws of the vertices,
//   3  the parametric surface L(N, D) = E + A/N^alpha + B/D^beta fitted by Huber loss on log
//      residuals (sum objective, or the Huber likelihood with a free scale) from a multi-start
//      L-BFGS grid.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "scaling/power_law.h"

namespace scaletune::scaling {

// L(N, D) = E + A N^-alpha + B D^-beta and the allocation it implies under C = 6 N D.
struct LossSurface {
  double E = 0, A = 0, B = 0, alpha = 0, beta = 0;

  double loss(double n, double d) const;
  // Exponents of N_opt = G (C/6)^a and D_opt = G^-1 (C/6)^b: a = beta/(alpha+beta), b = 1 - a.
  double a() const { return beta / (alpha + beta); }
  double b() const { return alpha / (alpha + beta); }
  double G() const;
  double n_opt(double compute) const;
  double d_opt(double compute) const;
  double loss_opt(double compute) const;
};

// Grid of starting points (scaling-methods.md §3.3): every combination is one L-BFGS start.
struct Approach3Grid {
  std::vector<double> alpha = {0, 0.5, 1, 1.5, 2};
  std::vector<double> beta = {0, 0.5, 1, 1.5, 2};
  std::vector<double> e = {-1, -0.5, 0, 0.5, 1};   // ln E
  std::vector<double> a = {0, 5, 10, 15, 20, 25};  // ln A
  std::vector<double> b = {0, 5, 10, 15, 20, 25};  // ln B
  std::size_t size() const { return alpha.size() * beta.size() * e.size() * a.size() * b.size(); }
};

struct Approach3Options {
  double delta = 1e-3;      // Huber threshold on log residuals
  bool likelihood = false;  // false: minimise sum of Huber; true: Huber likelihood, free scale
  Approach3Grid grid;
  int threads = 2;
  int max_iterations = 2000;
  // Tight tolerances on purpose: the objective is ~1e-3 and flat along (B, beta); loose ones stop
  // early (Epoch's diagnosis of the original fit).
  double function_tolerance = 1e-15;
  double gradient_tolerance = 1e-12;
  double parameter_tolerance = 1e-12;
};

struct Approach3Fit {
  bool ok = false;
  std::string error;
  LossSurface surface;
  double objective = 0;    // the minimised objective (Huber sum, or negative log-likelihood)
  double log_scale = 0;    // ln sigma of the likelihood variant (0 for the sum objective)
  std::size_t starts = 0;  // starts run
  std::size_t converged = 0;
  // Unconstrained parameters at the optimum: (ln A, ln B, ln E, alpha, beta[, ln sigma]).
  std::array<double, 6> params{};
  std::vector<double> residuals;  // ln L_i - ln L_hat_i
};

// Fits from every start of the grid and keeps the lowest objective. `weight` (optional, one per
// point) multiplies each point's term: bootstrap resamples pass multiplicities instead of copies.
Approach3Fit fit_approach3(const std::vector<double>& n, const std::vector<double>& d,
                           const std::vector<double>& loss, const Approach3Options& options,
                           const std::vector<double>& weight = {});

// One L-BFGS run from `start` (same layout as Approach3Fit::params); used by the bootstrap, which
// starts every resample from the full-data optimum (as Epoch do).
Approach3Fit refine_approach3(const std::vector<double>& n, const std::vector<double>& d,
                              const std::vector<double>& loss, const Approach3Options& options,
                              const std::array<double, 6>& start,
                              const std::vector<double>& weight = {});

// ---- Approach 2 -------------------------------------------------------------------------------

struct IsoFlopOptions {
  std::vector<double> budgets;   // empty: budgets are found by clustering the compute values
  double snap_tolerance = 0.10;  // a run joins a budget when |C / budget - 1| <= this
  double bucket_gap = 0.25;      // clustering gap when budgets are not given (compute_buckets)
  int min_points = 4;            // parabolas need >= 3; 4 is the sensible minimum
  int nearest = 0;               // > 0: fit only that many points nearest the empirical argmin
};

// One budget's parabola L = c2 x^2 + c1 x + c0 with x = ln N.
struct IsoFlopCurve {
  double compute = 0;  // the budget
  bool ok = false;
  std::string error;                // e.g. "3 points (needs 4)", "curvature <= 0: no minimum"
  std::vector<std::size_t> points;  // indices into the inputs
  double c2 = 0, c1 = 0, c0 = 0;
  double n_opt = 0;  // e^{x*}, x* = -c1 / (2 c2)
  double d_opt = 0;  // compute / (6 n_opt)
  double loss_opt = 0;
  bool vertex_inside = false;  // the vertex lies within the sampled ln N range
};

struct IsoFlopFit {
  std::vector<IsoFlopCurve> curves;  // one per budget, increasing compute
  PowerLawFit n_law;                 // N_opt = k C^a over the usable curves
  PowerLawFit d_law;                 // D_opt = k C^b
  int usable = 0;
};

IsoFlopFit fit_isoflops(const std::vector<double>& compute, const std::vector<double>& n,
                        const std::vector<double>& loss, const IsoFlopOptions& options);

// ---- Approach 1 -------------------------------------------------------------------------------

// A learning curve of one run: compute consumed so far and (smoothed) loss at each checkpoint.
struct Curve {
  double n = 0;                 // model size of the run
  std::vector<double> compute;  // increasing
  std::vector<double> loss;
};

// One point of the envelope: at compute C the best run has loss L, size N, tokens D = C / (6N).
struct EnvelopePoint {
  double compute = 0, loss = 0, n = 0, d = 0;
  std::size_t curve = 0;  // index of the run that is best here
};

// The lower envelope of the curves on `grid_points` log-spaced compute values (ln loss
// interpolated linearly in ln C inside each run's own range).
std::vector<EnvelopePoint> envelope(const std::vector<Curve>& curves, int grid_points = 1500);

}  // namespace scaletune::scaling
