// Param <-> basic transforms of linear, log and logit spaces (carbs.md §1).
#include "orchestrator/search/space.h"

#include <cmath>
#include <limits>

namespace scaletune::search {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double log_base(double v, double base) {
  if (v == 0) return -kInf;
  return base == 10 ? std::log10(v) : std::log(v) / std::log(base);
}

// Half-to-even rounding to a multiple of `factor`, as Python's round() (std::round differs on
// exact ties; nearbyint honours the default round-to-nearest-even mode).
double round_to_multiple(double u, double factor) { return factor * std::nearbyint(u / factor); }

}  // namespace

Space::Space(const config::Named<ParamSpec>& params) {
  for (const auto& [name, spec] : params) {
    names_.push_back(name);
    specs_.push_back(spec);
  }
  for (int i = 0; i < dims(); ++i) {
    const ParamSpec& s = specs_[i];
    const bool integer = s.integer && s.space != "logit";
    // Integer bounds widen by 0.1 so the extreme integers stay reachable under strict bounds.
    const double lo = param_min(s) - (integer ? 0.1 : 0.0);
    const double hi = param_max(s) + (integer ? 0.1 : 0.0);
    min_basic_.push_back(basic_from_param(i, lo));
    max_basic_.push_back(basic_from_param(i, hi));
  }
}

double Space::basic_from_param(int i, double v) const {
  const ParamSpec& s = specs_[i];
  if (s.space == "linear") return v / s.scale;
  if (s.space == "log") return log_base(v, s.base) / s.scale;
  // logit: always base 10
  if (v == 0) return -kInf;
  if (v == 1) return kInf;
  return std::log10(v / (1 - v)) / s.scale;
}

double Space::param_from_basic(int i, double b) const {
  const ParamSpec& s = specs_[i];
  if (s.space == "logit") return 1.0 / (std::pow(10.0, -b * s.scale) + 1.0);
  const double u = s.space == "linear" ? b * s.scale : std::pow(s.base, b * s.scale);
  return s.integer ? round_to_multiple(u, s.round_to) : u;
}

double Space::round_in_basic(int i, double b) const {
  const ParamSpec& s = specs_[i];
  if (!s.integer || s.space == "logit") return b;
  return basic_from_param(i, param_from_basic(i, b));
}

bool Space::inside(const double* x) const {
  for (int i = 0; i < dims(); ++i)
    if (!(min_basic_[i] < x[i] && x[i] < max_basic_[i])) return false;
  return true;
}

std::vector<double> Space::center_basic() const {
  std::vector<double> c;
  for (int i = 0; i < dims(); ++i) c.push_back(basic_from_param(i, specs_[i].center));
  return c;
}

int Space::overgenerate_factor() const {
  int bounded = 0;
  for (const auto& s : specs_)
    bounded += (std::isfinite(param_min(s)) || std::isfinite(param_max(s))) ? 1 : 0;
  return 1 << (bounded / 2);
}

}  // namespace scaletune::search
