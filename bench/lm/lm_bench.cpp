// Throughput of the GPT trainer: `scaletune train` (task lm) against the same model, batch,
// threads and steps in Python PyTorch (bench/lm/nanogpt_bench.py, Debian's python3-torch, the
// same LibTorch underneath), run one after the other at 1 and 2 threads. Prints tokens/s of
// both, the ratio (target >= 1.0x) and the peak RSS of each process.
//
//   build/bench/lm_bench [--steps 50] [--python /usr/bin/python3] [--size tiny|small]
//                        [--preload /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3]
//
// --preload runs ours with LD_PRELOAD=PATH. Why: when the `scaletune` executable links ATLAS's
// libf77blas (Ceres' BLAS), LibTorch in the dlopen'ed plugin binds sgemm_ to ATLAS instead of
// OpenBLAS and trains ~2x slower; preloading OpenBLAS shows the trainer's own speed.
//
// The machine is shared: run it when nothing else is compiling, and read figures as a ratio
// measured in the same minute, not as absolute speeds.
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

nlohmann::json last_json_line(const std::string& text) {
  std::istringstream lines(text);
  nlohmann::json j;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') j = nlohmann::json::parse(line, nullptr, false);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 50;
  std::string python = "/usr/bin/python3", size = "tiny", preload;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
    if (flag == "--python") python = argv[i + 1];
    if (flag == "--size") size = argv[i + 1];
    if (flag == "--preload") preload = argv[i + 1];
  }
  // tiny: the 0.46M-parameter GPT of docs/platform.md, where per-step overhead shows; small: 3.4M.
  const Shape s = size == "small" ? Shape{4, 256, 8, 256, 8, 8} : Shape{2, 128, 4, 128, 16, 16};
  const std::string bin = SCALETUNE_BINARY_DIR, src = SCALETUNE_SOURCE_DIR;
  const std::string out = bin + "/bench/lm_bench_run";
  std::printf(
      "lm_bench: GPT n_layer %d d_model %d n_head %d context %d, batch %d x %d tokens, "
      "%d steps (load: %s)\n",
      s.n_layer, s.d_model, s.n_head, s.context, s.batch, s.context, steps,
      capture("cut -d' ' -f1-3 /proc/loadavg | tr -d '\\n'").c_str());
  if (!preload.empty()) std::printf("ours with LD_PRELOAD=%s\n", preload.c_str());
  std::printf("%-8s %14s %14s %7s %14s %14s\n", "threads", "ours tok/s", "python tok/s", "ratio",
              "ours RSS MB", "python RSS MB");
  for (int threads : {1, 2}) {
    std::filesystem::remove_all(out);
    const double tokens = static_cast<double>(steps) * s.batch * s.context;
    std::ostringstream ours;
    if (!preload.empty()) ours << "LD_PRELOAD=" << preload << " ";
    ours << bin << "/scaletune -q train --config " << src << "/configs/lm_tiny.yaml --out " << out
         << " --set threads=" << threads << " --set model.n_layer=" << s.n_layer
         << " --set model.d_model=" << s.d_model << " --set model.n_head=" << s.n_head
         << " --set model.context=" << s.context << " --set data.synthetic.vocab=256"
         << " --set train.batch_size=" << s.batch << " --set train.micro_batch=" << s.micro
         << " --set train.tokens=" << tokens << " --set eval.tokens=" << s.context
         << " --set eval.every=0 --set log_every=1000000 2>/dev/null";
    capture(ours.str());
    const auto result = nlohmann::json::parse(std::ifstream(out + "/result.json"), nullptr, false);
    std::ostringstream py;
    py << "OMP_NUM_THREADS=" << threads << " " << python << " " << src
       << "/bench/lm/nanogpt_bench.py --n_layer " << s.n_layer << " --d_model " << s.d_model
       << " --n_head " << s.n_head << " --context " << s.context << " --vocab 256 --batch "
       << s.batch << " --micro " << s.micro << " --steps " << steps << " --threads " << threads;
    const auto ref = last_json_line(capture(py.str()));
    if (result.is_discarded() || !result.contains("metrics") || ref.is_null()) {
      std::printf("%-8d failed: ours %s, python %s\n", threads,
                  result.is_discarded() ? "no result.json" : result.value("reason", "?").c_str(),
                  ref.is_null() ? "no output" : "ok");
      continue;
    }
    const double a = result["metrics"]["tokens_per_second"].get<double>();
    const double b = ref["tokens_per_second"].get<double>();
    std::printf("%-8d %14.0f %14.0f %6.2fx %14.1f %14.1f\n", threads, a, b, a / b,
                result["metrics"]["peak_rss_bytes"].get<double>() / 1e6,
                ref["peak_rss_bytes"].get<double>() / 1e6);
  }
  return 0;
}
