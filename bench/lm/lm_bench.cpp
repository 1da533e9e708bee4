// Throughput of the GPT trainer: `scaletune train` (task lm) against the same model, batch,
// threads and steps in Python PyTorch (bench/lm/nanogpt_bench.py, Debian's python3-torch, the
// same LibTorch underneath), run one after the other at 1 and 2 threads. Prints tokens/s of
// both, the ratio (target >= 1.0x) and the peak RSS of each process, and CPU ms per step: the
// process CPU time of the run minus that of a 2-step run, over the steps in between (startup,
// Python's import of torch, evaluation cancel out). On a shared machine the CPU figure is the
// steadier one: wall time counts the minutes other processes held the core. Then two ranks of ours
// (Gloo over a FileStore, 1 thread each, the same global batch) with the gradient all-reduce
// overlapped with backward (dist.overlap true) and after it (false), interleaved, as ms per
// step side by side, with the load average at each measurement.
//
//   build/bench/lm_bench [--steps 50] [--python /usr/bin/python3] [--size tiny|small]
//                        [--preload /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3]
//                        [--bucket_mb 0.25] [--repeats 2] [--threads 1|2]
//
// --bucket_mb: the overlap rows' bucket cap; the 0.46M-parameter tiny GPT (1.8 MB of
// gradients) fits one 25 MB bucket, where there is nothing to overlap.
// --preload runs ours with LD_PRELOAD=PATH. Why: when the `scaletune` executable links ATLAS's
// libf77blas (Ceres' BLAS), LibTorch in the dlopen'ed plugin binds sgemm_ to ATLAS instead of
// OpenBLAS and trains ~2x slower; preloading OpenBLAS shows the trainer's own speed.
//
// The machine is shared: run it when nothing else is compiling, and read figures as a ratio
// measured in the same minute, not as absolute speeds.
#include <sys/resource.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

struct Shape {
  int n_layer, d_model, n_head, context, batch, micro;
};

std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;)
    out.append(buf.data(), n);
  pclose(pipe);
  return out;
}

// CPU seconds (user + system) of all waited-for child processes so far.
double children_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * t.tv_usec; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// Runs `command(steps)` for `steps` and for 2 steps; CPU ms per step in between.
template <class Command>
double cpu_ms_per_step(const Command& command, int steps, std::string* output) {
  double t0 = children_cpu_seconds();
  *output = capture(command(steps));
  const double full = children_cpu_seconds() - t0;
  t0 = children_cpu_seconds();
  capture(command(2));
  const double two = children_cpu_seconds() - t0;
  return 1000.0 * (full - two) / std::max(1, steps - 2);
}

std::string load_average() { return capture("cut -d' ' -f1-3 /proc/loadavg | tr -d '\\n'"); }

nlohmann::json last_json_line(const std::string& text) {
  std::istringstream lines(text);
  nlohmann::json j;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') j = nlohmann::json::parse(line, nullptr, false);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 50, repeats = 2, only_threads = 0;
  std::string python = "/usr/bin/python3", size = "tiny", preload, bucket_mb = "0.25";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
    if (flag == "--python") python = argv[i + 1];
    if (flag == "--size") size = argv[i + 1];
    if (flag == "--preload") preload = argv[i + 1];
    if (flag == "--bucket_mb") bucket_mb = argv[i + 1];
    if (flag == "--repeats") repeats = std::atoi(argv[i + 1]);
    if (flag == "--threads") only_threads = std::atoi(argv[i + 1]);
  }
  // tiny: the 0.46M-parameter GPT of docs/platform.md, where per-step overhead shows; small: 3.4M.
  const Shape s = size == "small" ? Shape{4, 256, 8, 256, 8, 8} : Shape{2, 128, 4, 128, 16, 16};
  const std::string bin = SCALETUNE_BINARY_DIR, src = SCALETUNE_SOURCE_DIR;
  const std::string out = bin + "/bench/lm_bench_run";
  std::printf(
      "lm_bench: GPT n_layer %d d_model %d n_head %d context %d, batch %d x %d tokens, "
      "%d steps (load: %s)\n",
      s.n_layer, s.d_model, s.n_head, s.context, s.batch, s.context, steps, load_average().c_str());
  if (!preload.empty()) std::printf("ours with LD_PRELOAD=%s\n", preload.c_str());
  std::printf("%-8s %11s %13s %6s %11s %13s %6s %8s %10s\n", "threads", "ours tok/s",
              "python tok/s", "ratio", "ours CPU ms", "python CPU ms", "ratio", "ours RSS",
              "python RSS");
  auto ours_command = [&](int threads, int micro, const std::string& extra, int run_steps) {
    const double tokens = static_cast<double>(run_steps) * s.batch * s.context;
    std::ostringstream ours;
    if (!preload.empty()) ours << "LD_PRELOAD=" << preload << " ";
    ours << bin << "/scaletune -q train --config " << src << "/configs/lm_tiny.yaml --out " << out
         << " --set threads=" << threads << " --set model.n_layer=" << s.n_layer
         << " --set model.d_model=" << s.d_model << " --set model.n_head=" << s.n_head
         << " --set model.context=" << s.context << " --set data.synthetic.vocab=256"
         << " --set train.batch_size=" << s.batch << " --set train.micro_batch=" << micro
         << " --set train.tokens=" << tokens << " --set eval.tokens=" << s.context
         << " --set eval.every=0 --set log_every=1000000 " << extra << " 2>/dev/null";
    return ours.str();
  };
  for (int threads : {1, 2}) {
    if (only_threads > 0 && threads != only_threads) continue;
    std::string ignored, py_output;
    const std::string full_out = out + "_full";
    std::filesystem::remove_all(full_out);
    const double cpu_ours = cpu_ms_per_step(
        [&](int n) {
          std::filesystem::remove_all(out);
          // the full run's result.json is kept aside before the 2-step run replaces it
          return ours_command(threads, s.micro, "", n) +
                 (n == steps ? "; mv " + out + " " + full_out : "");
        },
        steps, &ignored);
    const auto result =
        nlohmann::json::parse(std::ifstream(full_out + "/result.json"), nullptr, false);
    const double cpu_py = cpu_ms_per_step(
        [&](int n) {
          std::ostringstream py;
          py << "OMP_NUM_THREADS=" << threads << " " << python << " " << src
             << "/bench/lm/nanogpt_bench.py --n_layer " << s.n_layer << " --d_model " << s.d_model
             << " --n_head " << s.n_head << " --context " << s.context << " --vocab 256 --batch "
             << s.batch << " --micro " << s.micro << " --steps " << n << " --threads " << threads;
          return py.str();
        },
        steps, &py_output);
    const auto ref = last_json_line(py_output);
    if (result.is_discarded() || !result.contains("metrics") || ref.is_null()) {
      std::printf("%-8d failed: ours %s, python %s\n", threads,
                  result.is_discarded() ? "no result.json" : result.value("reason", "?").c_str(),
                  ref.is_null() ? "no output" : "ok");
      continue;
    }
    const double a = result["metrics"]["tokens_per_second"].get<double>();
    const double b = ref["tokens_per_second"].get<double>();
    std::printf("%-8d %11.0f %13.0f %5.2fx %11.1f %13.1f %5.2fx %5.0f MB %7.0f MB\n", threads, a, b,
                a / b, cpu_ours, cpu_py, cpu_py / cpu_ours,
                result["metrics"]["peak_rss_bytes"].get<double>() / 1e6,
                ref["peak_rss_bytes"].get<double>() / 1e6);
  }

  // Two ranks, 1 thread each: each rank does half of the global batch in one micro-batch.
  std::printf(
      "\n2 ranks (Gloo, FileStore, 1 thread each), global batch %d, buckets <= %s MB: "
      "ms per step\n",
      s.batch, bucket_mb.c_str());
  std::printf("%-7s %9s %12s %12s %8s  %s\n", "repeat", "buckets", "overlap on", "overlap off",
              "off/on", "load (1, 5, 15 min) at on / off");
  for (int rep = 1; rep <= repeats; ++rep) {
    double ms[2] = {0, 0};
    std::string load[2];
    int buckets = 0;
    for (int overlap : {1, 0}) {
      std::filesystem::remove_all(out);
      std::filesystem::create_directories(out);
      const std::string env = "WORLD_SIZE=2 SCALETUNE_STORE_FILE=" + out + "/store ";
      const std::string one =
          ours_command(1, s.batch / 2,
                       "--set dist.overlap=" + std::string(overlap ? "true" : "false") +
                           " --set dist.bucket_mb=" + bucket_mb,
                       steps);
      capture("sh -c '" + env + "RANK=1 " + one + " & " + env + "RANK=0 " + one + "; wait'");
      const auto result =
          nlohmann::json::parse(std::ifstream(out + "/result.json"), nullptr, false);
      load[overlap] = load_average();
      if (result.is_discarded() || !result.contains("metrics")) continue;
      ms[overlap] =
          1000.0 * s.batch * s.context / result["metrics"]["tokens_per_second"].get<double>();
      const std::string log = capture("grep -o '[0-9]* bucket(s)' " + out + "/train.log");
      buckets = std::atoi(log.c_str());
    }
    if (ms[0] <= 0 || ms[1] <= 0) {
      std::printf("%-7d failed (see %s/train*.log)\n", rep, out.c_str());
      continue;
    }
    std::printf("%-7d %9d %12.1f %12.1f %7.2fx  %s / %s\n", rep, buckets, ms[1], ms[0],
                ms[0] / ms[1], load[1].c_str(), load[0].c_str());
  }
  return 0;
}
