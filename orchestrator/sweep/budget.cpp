#include "orchestrator/sweep/budget.h"

#include <algorithm>
#include <sstream>

namespace scaletune::sweep {

void Budget::add(double cost, double flops, double device_seconds) {
  spent_.trials += 1;
  if (cost > 0) spent_.cost += cost;
  if (flops > 0) spent_.flops += flops;
  if (device_seconds > 0) spent_.device_seconds += device_seconds;
}

std::string Budget::exhausted(std::int64_t running, double wall_seconds,
                              const Spent& committed) const {
  std::ostringstream why;
  const double cost = spent_.cost + committed.cost;
  const double flops = spent_.flops + committed.flops;
  const double device_seconds = spent_.device_seconds + committed.device_seconds;
  auto with_committed = [&](double c) {
    if (c > 0) why << " with " << c << " predicted for the trials running";
  };
  if (limits_.max_trials > 0 && spent_.trials + running >= limits_.max_trials) {
    why << "max_trials " << limits_.max_trials << " reached";
  } else if (limits_.max_cost > 0 && cost >= limits_.max_cost) {
    why << "max_cost " << limits_.max_cost << " reached (" << spent_.cost << " spent";
    with_committed(committed.cost);
    why << ")";
  } else if (limits_.max_flops > 0 && flops >= limits_.max_flops) {
    why << "max_flops " << limits_.max_flops << " reached (" << spent_.flops << " spent";
    with_committed(committed.flops);
    why << ")";
  } else if (limits_.max_device_hours > 0 && device_seconds / 3600.0 >= limits_.max_device_hours) {
    why << "max_device_hours " << limits_.max_device_hours << " reached ("
        << spent_.device_seconds / 3600.0 << " spent";
    with_committed(committed.device_seconds / 3600.0);
    why << ")";
  } else if (limits_.max_wall_seconds > 0 && wall_seconds >= limits_.max_wall_seconds) {
    why << "max_wall_seconds " << limits_.max_wall_seconds << " reached";
  }
  return why.str();
}

std::string Budget::would_exceed(const Spent& committed, const Spent& next) const {
  std::ostringstream why;
  auto check = [&](const char* name, double limit, double spent, double c, double n, double scale) {
    if (limit <= 0 || !why.str().empty() || (spent + c + n) / scale <= limit) return;
    why << name << " " << limit << " would be exceeded: " << spent / scale << " spent + "
        << c / scale << " predicted for the trials running + " << n / scale
        << " predicted for the next one";
  };
  check("max_cost", limits_.max_cost, spent_.cost, committed.cost, next.cost, 1);
  check("max_flops", limits_.max_flops, spent_.flops, committed.flops, next.flops, 1);
  check("max_device_hours", limits_.max_device_hours, spent_.device_seconds,
        committed.device_seconds, next.device_seconds, 3600);
  return why.str();
}

double Budget::fraction_used(double wall_seconds) const {
  double f = 0;
  if (limits_.max_trials > 0)
    f = std::max(f, static_cast<double>(spent_.trials) / limits_.max_trials);
  if (limits_.max_cost > 0) f = std::max(f, spent_.cost / limits_.max_cost);
  if (limits_.max_flops > 0) f = std::max(f, spent_.flops / limits_.max_flops);
  if (limits_.max_device_hours > 0)
    f = std::max(f, spent_.device_seconds / 3600.0 / limits_.max_device_hours);
  if (limits_.max_wall_seconds > 0) f = std::max(f, wall_seconds / limits_.max_wall_seconds);
  return std::clamp(f, 0.0, 1.0);
}

}  // namespace scaletune::sweep
