// The search space: param (user units) <-> basic (the internal R^d where sampling, distances and
// GP modelling happen), bounds and integer rounding, exactly as carbs.md §1 specifies.
#pragma once

#include <string>
#include <vector>

#include "orchestrator/search/carbs.h"

namespace scaletune::search {

class Space {
 public:
  explicit Space(const config::Named<ParamSpec>& params);  // params must be valid

  int dims() const { return static_cast<int>(specs_.size()); }
  const std::string& name(int i) const { return names_[i]; }
  const std::vector<std::string>& names() const { return names_; }
  const ParamSpec& spec(int i) const { return specs_[i]; }

  double basic_from_param(int i, double v) const;
  // Includes integer rounding (banker's: half to even) to a multiple of round_to.
  double param_from_basic(int i, double b) const;
  // Integer dims: round through param space and map back (a log value rounded to 0 -> -inf).
  double round_in_basic(int i, double b) const;

  // Basic-space bounds; a valid point is strictly inside on every dimension.
  double min_basic(int i) const { return min_basic_[i]; }
  double max_basic(int i) const { return max_basic_[i]; }
  bool inside(const double* basic) const;

  std::vector<double> center_basic() const;
  // 2^(bounded dims / 2): how many more samples to draw when some fall outside the bounds.
  int overgenerate_factor() const;

 private:
  std::vector<std::string> names_;
  std::vector<ParamSpec> specs_;
  std::vector<double> min_basic_, max_basic_;
};

}  // namespace scaletune::search
