// The HTML report of `scaletune fit --report DIR` / `scaletune extrapolate --report DIR`: one
// self-contained page (inline SVG and CSS, no scripts, no network) with loss vs compute and the
// Pareto front, every hyper-parameter law on log-log axes with its bootstrap band and the
// extrapolated point, the IsoFLOP parabolas, residuals, and a table of every law and its flags.
#pragma once

#include <string>

#include "scaling/extrapolate.h"
#include "scaling/fit.h"

namespace scaletune::scaling {

// The page as a string; `prediction` (optional) adds the extrapolated points.
std::string render_report(const FitResult& fit, const Prediction* prediction = nullptr);

// Writes DIR/index.html (creating DIR) and returns its path. Throws std::runtime_error when the
// directory or file cannot be written.
std::string write_report(const std::string& dir, const FitResult& fit,
                         const Prediction* prediction = nullptr);

}  // namespace scaletune::scaling
