// Peak memory of LoRA vs full fine-tuning of the same GPT, each measured in its own process (a
// process's peak RSS never goes down): a reference process that only loads the model and
// evaluates it, one that trains rank-8 adapters, one that trains every weight. On CUDA the peak
// of the caching allocator is reported instead of RSS.
//
//   build/bench/lora_bench [--layers 6] [--d-model 384] [--steps 5] [--batch 16]
//
// Full fine-tuning holds gradients and two AdamW moments for every weight (12 extra bytes per
// parameter); LoRA holds them for the adapters only. The figures print next to that estimate.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "trainer/lora/finetune.h"
#include "trainer/lora/lora.h"

using namespace scaletune::trainer;

namespace {

struct Args {
  std::int64_t layers = 6, d_model = 384, steps = 5, batch = 16;
  std::string child, base;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--layers")
      a.layers = std::stoll(v);
    else if (k == "--d-model")
      a.d_model = std::stoll(v);
    else if (k == "--steps")
      a.steps = std::stoll(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--child")
      a.child = v;
    else if (k == "--base")
      a.base = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

int run_child(const Args& a) {
  LoraConfig c;
  c.threads = 2;
  c.base.path = a.base;
  c.lora.method = a.child == "full" ? "full" : "lora";
  c.lora.rank = 8;
  c.lora.dropout = 0.0;
  c.data.prompt_template = "short";
  c.data.builtin.examples = 400;
  c.train.batch_size = a.batch;
  c.train.steps = a.child == "reference" ? 0 : a.steps;
  c.eval.examples = 0;
  c.eval.before = false;
  c.output.adapter = c.output.merged = false;
  c.log_every = 1000;
  const auto end = lora::train_lora({c, a.base + ".out-" + a.child, {}, nullptr});
  const auto& r = end.result;
  nlohmann::json j;
  j["status"] = to_string(r.status);
  j["reason"] = r.reason;
  j["peak_memory_bytes"] =
      r.metrics.count("peak_memory_bytes") ? r.metrics.at("peak_memory_bytes") : 0.0;
  j["trainable_params"] =
      r.metrics.count("trainable_params") ? r.metrics.at("trainable_params") : 0.0;
  j["params_total"] = r.metrics.count("params_total") ? r.metrics.at("params_total") : 0.0;
  j["device"] = r.info.count("device") ? r.info.at("device") : "";
  std::printf("%s\n", j.dump().c_str());
  return r.ok() ? 0 : 1;
}

nlohmann::json spawn(const std::string& self, const Args& a, const std::string& mode) {
  const std::string cmd = "'" + self + "' --child " + mode + " --base '" + a.base + "' --steps " +
                          std::to_string(a.steps) + " --batch " + std::to_string(a.batch) +
                          " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p && std::fgets(buf, sizeof(buf), p)) out += buf;
  if (!p || pclose(p) != 0 || out.empty()) {
    std::fprintf(stderr, "child %s failed: %s\n", mode.c_str(), out.c_str());
    std::exit(1);
  }
  return nlohmann::json::parse(out.substr(out.rfind('{')));
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (!a.child.empty()) return run_child(a);

  // The base: a randomly initialised byte-level GPT, exported like `scaletune train` does.
  const std::string dir = std::string(SCALETUNE_BINARY_DIR) + "/bench/lora_bench_tmp";
  std::filesystem::create_directories(dir);
  lora::BaseModel base;
  base.shape.n_layer = a.layers;
  base.shape.d_model = a.d_model;
  base.shape.n_head = std::max<std::int64_t>(1, a.d_model / 64);
  base.shape.d_ff = 4 * a.d_model;
  base.shape.context = 128;
  base.shape.vocab = 256;
  base.model = lm::Gpt(base.shape, 0.0);
  a.base = dir + "/model.safetensors";
  lora::export_safetensors(a.base, base.model, base);

  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const auto ref = spawn(self, a, "reference");
  const auto lo = spawn(self, a, "lora");
  const auto full = spawn(self, a, "full");
  const double mib = 1024.0 * 1024.0;
  const double n = full["params_total"].get<double>();
  const double n_lora = lo["trainable_params"].get<double>();
  const double ref_mb = ref["peak_memory_bytes"].get<double>() / mib;
  const double lora_mb = lo["peak_memory_bytes"].get<double>() / mib;
  const double full_mb = full["peak_memory_bytes"].get<double>() / mib;
  std::printf("lora_bench: GPT %lld layers x %lld, %.2fM params, batch %lld, %lld steps, %s\n",
              static_cast<long long>(a.layers), static_cast<long long>(a.d_model), n / 1e6,
              static_cast<long long>(a.batch), static_cast<long long>(a.steps),
              full["device"].get<std::string>().c_str());
  std::printf("peak memory  reference (load + evaluate): %8.1f MiB\n", ref_mb);
  std::printf("peak memory  LoRA r=8 (%.3f%% trainable): %8.1f MiB  (+%.1f MiB over reference)\n",
              100.0 * n_lora / n, lora_mb, lora_mb - ref_mb);
  std::printf("peak memory  full fine-tuning:            %8.1f MiB  (+%.1f MiB over reference)\n",
              full_mb, full_mb - ref_mb);
  std::printf(
      "full - LoRA: %.1f MiB measured; gradients + AdamW moments of the frozen weights "
      "estimate 12 B x %.2fM = %.1f MiB\n",
      full_mb - lora_mb, (n - n_lora) / 1e6, 12.0 * (n - n_lora) / mib);
  return 0;
}
