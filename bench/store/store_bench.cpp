// Speed of the records file: durable appends of trial rows, curve points and texts, and loading
// the result, each printed next to a reference measured in the same run on the same disk:
// the bare HDF5 cost of one extend + write + H5Fflush of a one-double row (our appends do that
// twice, plus the row's strings).
//
//   build/bench/store_bench [DIR]     (default: a temporary directory under build/)
#include <hdf5.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "orchestrator/store/records.h"

namespace st = scaletune::store;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Stats {
  double total_s = 0, cpu_s = 0, p50_us = 0, p99_us = 0, max_us = 0;
};

// Runs `op(i)` n times, timing each call.
template <typename Op>
Stats time_each(int n, Op op) {
  std::vector<double> us(n);
  const std::clock_t c0 = std::clock();  // process CPU time: wall time on a shared machine
  const auto t0 = Clock::now();          // includes waiting for other processes' compiles
  for (int i = 0; i < n; ++i) {
    const auto t = Clock::now();
    op(i);
    us[i] = std::chrono::duration<double, std::micro>(Clock::now() - t).count();
  }
  Stats s;
  s.total_s = seconds_since(t0);
  s.cpu_s = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  std::sort(us.begin(), us.end());
  s.p50_us = us[n / 2];
  s.p99_us = us[n * 99 / 100];
  s.max_us = us.back();
  return s;
}

void print(const char* what, int n, const Stats& s) {
  std::printf("%-44s %6d in %6.3f s (cpu %6.3f s) %8.0f /s  p50 %6.1f us  p99 %7.1f us\n", what, n,
              s.total_s, s.cpu_s, n / s.total_s, s.p50_us, s.p99_us);
}

// Reference: the bare HDF5 cost of appending one double to an extendible dataset and flushing.
Stats raw_hdf5_append(const std::string& path, int n, bool flush) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = 64;
  hid_t space = H5Screate_simple(1, &zero, &unlimited);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &chunk);
  hid_t d = H5Dcreate2(file, "x", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  const auto s = time_each(n, [&](int i) {
    const hsize_t start = static_cast<hsize_t>(i), one = 1, end = start + 1;
    H5Dset_extent(d, &end);
    hid_t fs = H5Dget_space(d);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, nullptr, &one, nullptr);
    hid_t ms = H5Screate_simple(1, &one, nullptr);
    const double v = i;
    H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &v);
    H5Sclose(ms);
    H5Sclose(fs);
    if (flush) H5Fflush(file, H5F_SCOPE_GLOBAL);
  });
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);
  return s;
}

st::TrialRecord trial(int i, const st::SweepMeta& meta) {
  st::TrialRecord t;
  t.trial_id = i / 2;
  t.status = i % 2 ? st::TrialStatus::kOk : st::TrialStatus::kRunning;
  for (std::size_t p = 0; p < meta.params.size(); ++p) t.params[meta.params[p]] = 1e-3 * i + p;
  t.objective = 3.0 / (1 + i);
  t.cost = t.flops = 1e12 * i;
  t.host = "node-17";
  t.log_path = "trials/" + std::to_string(i / 2) + "/log.txt";
  t.metrics = {{"val_loss", t.objective}, {"train_loss", t.objective}, {"tok_per_s", 4e4}};
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir =
      argc > 1 ? std::filesystem::path(argv[1])
               : std::filesystem::path(SCALETUNE_BINARY_DIR) / "bench" / "store_bench_tmp";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  constexpr int kN = 10000;
  std::printf("records file benchmark in %s (HDF5 %d.%d.%d)\n", dir.c_str(), H5_VERS_MAJOR,
              H5_VERS_MINOR, H5_VERS_RELEASE);

  print("reference: raw append of 1 double, no flush", kN,
        raw_hdf5_append((dir / "raw_noflush.h5").string(), kN, false));
  const Stats raw = raw_hdf5_append((dir / "raw_flush.h5").string(), kN, true);
  print("reference: raw append of 1 double + H5Fflush", kN, raw);

  st::SweepMeta meta;
  meta.direction = "minimize";
  meta.objective = "val_loss";
  meta.cost_metric = "flops";
  for (int p = 0; p < 12; ++p) meta.params.push_back("param" + std::to_string(p));
  meta.metrics = {"val_loss", "train_loss"};
  const std::string path = (dir / "records.h5").string();
  auto w = st::RecordsWriter::create(path, meta);
  const Stats trials = time_each(kN, [&](int i) { w.append_trial(trial(i, meta)); });
  print("append_trial (12 params, durable each)", kN, trials);
  std::printf("  -> %.1fx the raw flushed append in cpu time (ours: 2 flushes + 40 columns)\n",
              trials.cpu_s / std::max(raw.cpu_s, 1e-9));
  // Failed trials whose reason carries a traceback: too long for its cell (schema 3: /overflow).
  const Stats long_trials = time_each(kN / 10, [&](int i) {
    st::TrialRecord t = trial(kN + i, meta);
    t.status = st::TrialStatus::kFailed;
    t.reason = std::string(2000, 'r');
    w.append_trial(t);
  });
  print("append_trial, 2 KB reason (durable each)", kN / 10, long_trials);

  scaletune::trainer::CurvePoint point;
  point.tokens = 1e6;
  point.train_loss = 2.5;
  const Stats points = time_each(kN, [&](int i) {
    point.step = i;
    w.append_curve(i / 100, 0, {point});
  });
  print("append_curve (1 point per call, durable)", kN, points);
  std::vector<scaletune::trainer::CurvePoint> batch(100, point);
  const Stats batches = time_each(kN / 100, [&](int i) { w.append_curve(1000 + i, 0, batch); });
  std::printf("%-44s %7d points in %6.3f s  %9.0f points/s\n", "append_curve (100 points per call)",
              kN, batches.total_s, kN / batches.total_s);

  const std::string state(100000, 's');
  const Stats texts = time_each(
      1000, [&](int i) { w.put_text("search_state", state.substr(0, 50000 + 50 * (i % 1000))); });
  print("put_text (50-100 KB search state)", 1000, texts);
  w.close();
  std::printf("file size after all of the above: %.1f MB\n",
              std::filesystem::file_size(path) / 1e6);

  const auto t0 = Clock::now();
  const auto r = st::load(path);
  std::printf("load: %zu trial rows, %zu curve points, %zu texts in %.3f s\n", r.trials.size(),
              r.curves.size(), r.texts.size(), seconds_since(t0));
  const auto t1 = Clock::now();
  const auto r2 = st::load(path, {false});
  std::printf("load without curves: %zu trial rows in %.3f s\n", r2.trials.size(),
              seconds_since(t1));
  std::printf("target: %d durable trial appends in under a few seconds: %.2f s (cpu %.2f s)\n", kN,
              trials.total_s, trials.cpu_s);
  std::filesystem::remove_all(dir);
  return 0;
}
