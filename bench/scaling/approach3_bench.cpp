// Benchmark: Chinchilla Approach 3 (Huber on log residuals) on the 240 Epoch points (or 240
// synthetic points when the public file is absent): the full 4,500-start grid on 2 threads, then
// 1,000 bootstrap refits (resamples of the points, each started from the full-data optimum, as
// Epoch do). Target: both together under 10 s on 2 cores. Beside it, the same computation with
// SciPy's L-BFGS-B (bench/scaling/approach3_reference.py) on a subset, scaled to the full count.
//
//   build/bench/scaling_bench [--threads 2] [--no-reference]
#include <sys/resource.h>
#include <algorithm>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "scaling/chinchilla.h"
#include "scaling/parallel.h"
#include "scaling/table.h"

using namespace scaletune::scaling;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of this process, all threads: on a shared machine wall time alone says little.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  bool reference = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--no-reference")) reference = false;
  }
  const std::string csv =
      std::string(SCALETUNE_SOURCE_DIR) + "/../shared/data/chinchilla_epoch_svg_extracted.csv";
  std::vector<double> n, d, loss;
  std::string source;
  if (std::filesystem::exists(csv)) {
    const Table t = Table::read_csv(csv);
    const auto tn = t.numbers("Model Size"), tc = t.numbers("Training FLOP"),
               tl = t.numbers("loss");
    std::vector<std::size_t> order(tl.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return tl[a] < tl[b]; });
    order.resize(order.size() - 5);  // Epoch drop the 5 highest losses
    for (auto i : order) {
      n.push_back(tn[i]);
      d.push_back(tc[i] / (6 * tn[i]));
      loss.push_back(tl[i]);
    }
    source = "Epoch's 240 Chinchilla points";
  } else {
    const LossSurface s{1.69, 406.4, 410.7, 0.34, 0.28};
    std::mt19937_64 rng(1);
    std::normal_distribution<double> eps(0, 0.01);
    for (int i = 0; i < 240; ++i) {
      const double c = 6e18 * std::pow(500.0, (i % 12) / 11.0);
      const double ni = 4e7 * std::pow(400.0, (i / 12) / 19.0);
      n.push_back(ni);
      d.push_back(c / (6 * ni));
      loss.push_back(s.loss(ni, d.back()) * std::exp(eps(rng)));
    }
    source = "240 synthetic points (public file absent)";
  }
  std::printf("scaling_bench: Approach 3 on %s, %d threads\n", source.c_str(), threads);

  Approach3Options options;
  options.threads = threads;
  const double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  const Approach3Fit fit = fit_approach3(n, d, loss, options);
  const double grid_s = seconds_since(t0);
  std::printf(
      "  grid:      %zu starts in %.2f s (%.2f ms/start/thread); E %.4f alpha %.4f beta %.4f "
      "F %.8f\n",
      fit.starts, grid_s, 1e3 * grid_s * threads / fit.starts, fit.surface.E, fit.surface.alpha,
      fit.surface.beta, fit.objective);

  const int refits = 1000;
  std::vector<double> alphas(refits);
  t0 = std::chrono::steady_clock::now();
  Approach3Options one = options;
  one.threads = 1;
  parallel_for(refits, threads, [&](std::size_t r) {
    std::mt19937_64 rng(42 + r);
    std::uniform_int_distribution<std::size_t> pick(0, n.size() - 1);
    std::vector<double> weight(n.size(), 0.0);
    for (std::size_t i = 0; i < n.size(); ++i) weight[pick(rng)] += 1;  // resample multiplicities
    alphas[r] = refine_approach3(n, d, loss, one, fit.params, weight).surface.alpha;
  });
  const double boot_s = seconds_since(t0);
  double mean = 0, sq = 0;
  for (double a : alphas) mean += a / refits;
  for (double a : alphas) sq += (a - mean) * (a - mean) / (refits - 1);
  std::printf("  bootstrap: %d refits in %.2f s (%.2f ms/refit/thread); alpha SE %.4f\n", refits,
              boot_s, 1e3 * boot_s * threads / refits, std::sqrt(sq));
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "  total:     %.2f s wall, %.2f s CPU (%.2f s per core of %d; target < 10 s on 2 "
      "cores)\n",
      grid_s + boot_s, cpu, cpu / threads, threads);

  if (!reference) return 0;
  const std::string script =
      std::string(SCALETUNE_SOURCE_DIR) + "/bench/scaling/approach3_reference.py";
  if (std::system("/usr/bin/python3 -c 'import scipy' >/dev/null 2>&1") != 0) {
    std::printf("  reference: skipped (python3-scipy not installed)\n");
    return 0;
  }
  const std::string cmd =
      "/usr/bin/python3 " + script + " " + (std::filesystem::exists(csv) ? csv : "-");
  std::fflush(stdout);
  return std::system(cmd.c_str()) == 0 ? 0 : 1;
}
