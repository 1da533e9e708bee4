// What a sweep may spend, and what it has spent. Every recorded trial counts, failures included
// (they cost real device time), so the budget is never exceeded by retrying failures.
//
// Cost limits (max_cost, max_flops, max_device_hours) also count what is committed: the predicted
// cost of the trials running or waiting to run. A trial starts only if the spent plus committed
// plus its own predicted cost stays within every limit, so a sweep overshoots a limit only by
// how much its predictions were too low (docs/sweep.md, "Budget").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "orchestrator/sweep/sweep_config.h"

namespace scaletune::sweep {

struct Spent {
  std::int64_t trials = 0;
  double cost = 0;
  double flops = 0;
  double device_seconds = 0;
};

class Budget {
 public:
  explicit Budget(BudgetConfig limits) : limits_(limits) {}

  void add(double cost, double flops, double device_seconds);
  // Counts trials recorded in an earlier run of this sweep (resume).
  void restore(const Spent& spent) { spent_ = spent; }
  const Spent& spent() const { return spent_; }
  const BudgetConfig& limits() const { return limits_; }

  // Why no new trial may start ("" when one may). `running` trials count against max_trials;
  // `committed` (predicted costs of running and waiting trials) against the cost limits.
  std::string exhausted(std::int64_t running, double wall_seconds,
                        const Spent& committed = {}) const;
  // Why a trial predicted to cost `next` may not start on top of `committed` ("" when it may).
  std::string would_exceed(const Spent& committed, const Spent& next) const;
  // Fraction of the tightest limit used, in [0, 1] (for progress and ETA).
  double fraction_used(double wall_seconds) const;

 private:
  BudgetConfig limits_;
  Spent spent_;
};

}  // namespace scaletune::sweep
