// suggest() latency against history size, d = 4 and d = 10, 8 suggestions outstanding, one core.
//
//   bench/search_latency [--sizes 10,50,...] [--rounds 9]
//
// At each size the searcher is warm-started with n observations of a synthetic problem (one
// cost-driving log parameter, the rest linear), 8 suggestions are made outstanding, and then each
// round observes the oldest outstanding suggestion and times the next suggest(): the model is
// rebuilt every call (new data), hyper-parameters are refitted every carbs.refit_every = 4
// observations, so the median is a cached-hyper-parameter call and p90/max include refits.
// In the same run it times the reference's mode (fixed hyper-parameters) for comparison; the
// Python reference (carbs.md §15) took 12.6 s at n = 200 and 21 s at n = 300 (d = 3, OpenBLAS).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <sstream>

#include "bench/search/problems.h"

namespace scaletune::bench {
namespace {

search::SearchConfig config(int d, const std::string& hyper) {
  search::SearchConfig c;
  c.search.emplace_back("steps", param("log", 1000, 10, 1e6, 1, true));
  for (int i = 1; i < d; ++i)
    c.search.emplace_back("x" + std::to_string(i), param("linear", 0, -3, 3));
  c.direction = "minimize";
  c.carbs.hyperparameters = hyper;
  c.carbs.resample_frequency = 0;  // time the Bayesian path, as the reference's timing mode
  return c;
}

double objective(const std::map<std::string, double>& p, std::mt19937_64& rng) {
  double s = 2 / std::sqrt(p.at("steps") / 10);
  for (const auto& [k, v] : p)
    if (k != "steps") s += 0.3 * (v - 0.5) * (v - 0.5);
  return s + std::normal_distribution<double>(0, 0.02)(rng);
}

// CPU time of this thread: the machine is shared, so wall time also counts other processes.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return 1e3 * static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_nsec);
}

struct Timing {
  double median = 0, p90 = 0, max = 0, wall_median = 0;
};

double pick(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

Timing measure(int d, int n, int rounds, const std::string& hyper) {
  search::Carbs carbs(config(d, hyper));
  std::mt19937_64 rng(static_cast<std::uint64_t>(n * 31 + d));
  std::normal_distribution<double> g(0, 1);
  std::vector<search::Observation> hist;
  for (int i = 0; i < n; ++i) {
    search::Observation o;
    o.params["steps"] = std::round(std::pow(10, std::clamp(3 + 0.7 * g(rng), 1.1, 5.9)));
    for (int k = 1; k < d; ++k)
      o.params["x" + std::to_string(k)] = std::clamp(0.8 * g(rng), -2.9, 2.9);
    o.output = objective(o.params, rng);
    o.cost = o.params["steps"];
    hist.push_back(o);
  }
  carbs.warm_start(hist);
  std::deque<search::Suggestion> pending;
  for (int i = 0; i < 8; ++i) pending.push_back(carbs.suggest());
  std::vector<double> ms, wall;
  for (int r = 0; r < rounds; ++r) {
    const search::Suggestion s = pending.front();
    pending.pop_front();
    search::Observation o;
    o.suggestion_id = s.id;
    o.output = objective(s.params, rng);
    o.cost = s.params.at("steps");
    carbs.observe(o);
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_ms();
    pending.push_back(carbs.suggest());
    ms.push_back(cpu_ms() - c0);
    wall.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  Timing t;
  t.median = pick(ms, 0.5);
  t.p90 = pick(ms, 0.9);
  t.max = pick(ms, 1.0);
  t.wall_median = pick(wall, 0.5);
  return t;
}

}  // namespace
}  // namespace scaletune::bench

int main(int argc, char** argv) {
  using namespace scaletune::bench;
  std::vector<int> sizes = {10, 50, 100, 200, 500, 1000, 2000};
  int rounds = 9;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) {
      rounds = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--sizes")) {
      sizes.clear();
      std::stringstream ss(argv[i + 1]);
      std::string item;
      while (std::getline(ss, item, ',')) sizes.push_back(std::atoi(item.c_str()));
    } else {
      std::fprintf(stderr, "usage: %s [--sizes 10,50,...] [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  std::printf("suggest() latency in ms, 8 outstanding, %d rounds (observe + suggest) per size\n",
              rounds);
  std::printf("fit = MAP hyper-parameters refitted every 4 observations; fixed = reference mode\n");
  std::printf("targets: median <= 50 ms at n=200 (d=10), <= 500 ms at n=2000\n\n");
  std::printf("CPU ms of the calling thread (wall median in parentheses; the machine is shared)\n");
  std::printf("%-3s %-6s | %-38s | %-38s\n", "d", "n", "fit: median / p90 / max (wall)",
              "fixed: median / p90 / max (wall)");
  for (int d : {4, 10}) {
    for (int n : sizes) {
      const Timing f = measure(d, n, rounds, "fit");
      const Timing x = measure(d, n, rounds, "fixed");
      std::printf("%-3d %-6d | %7.1f / %7.1f / %7.1f (%7.1f) | %7.1f / %7.1f / %7.1f (%7.1f)\n", d,
                  n, f.median, f.p90, f.max, f.wall_median, x.median, x.p90, x.max, x.wall_median);
      std::fflush(stdout);
    }
  }
  return 0;
}
