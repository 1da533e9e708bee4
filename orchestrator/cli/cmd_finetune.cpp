// scaletune finetune --config FILE [--base CHECKPOINT] [--data FILE.jsonl]
//                    [--hparams big_run.yaml|fit.json] [--set key=value]... [--out DIR]
//
// LoRA instruction fine-tuning of a base model (trainer/lora/finetune.h) with the tuned
// settings: --hparams takes the config `scaletune extrapolate --out` writes (optim.lr,
// train.batch_size, schedule keys) or a fit JSON from `scaletune fit --out` (its laws read at
// hparams.compute, default the base run's compute). The full-training lr becomes the LoRA lr by
// the rule in trainer/lora/lora_config.h (lora_lr_from_full, docs/lora.md); any --set wins over
// --hparams. Writes OUT/result.json, OUT/config.yaml (what ran), the adapter and the merged
// model; prints a one-line JSON summary. Exit codes as `scaletune train`.
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>

#include "orchestrator/cli/command.h"
#include "orchestrator/config/kinds.h"
#include "orchestrator/util/log.h"
#include "orchestrator/util/torch_plugin.h"
#include "scaling/extrapolate.h"
#include "scaling/fit.h"
#include "trainer/core/result.h"

namespace scaletune::cli {
namespace {

std::atomic<int> g_finetune_stop{0};
void request_finetune_stop(int) { g_finetune_stop.store(1); }

bool overridden(const std::vector<std::string>& overrides, const std::string& key) {
  for (const auto& o : overrides)
    if (o.rfind(key + "=", 0) == 0) return true;
  return false;
}

// The tuned settings --hparams carries, in full-training terms.
struct Tuned {
  double lr = 0;                // 0: none
  std::int64_t batch_size = 0;  // sequences; 0: none
  std::string schedule;
  double warmup_fraction = -1, min_lr_fraction = -1;
  std::string source;
};

Tuned from_run_config(const std::string& path) {
  YAML::Node y;
  try {
    y = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw UsageError("--hparams " + path + ": not a readable YAML file (" + e.what() + ")");
  }
  Tuned t;
  t.source = path;
  try {
    if (y["optim"] && y["optim"]["lr"]) t.lr = y["optim"]["lr"].as<double>();
    if (y["optim"] && y["optim"]["schedule"]) t.schedule = y["optim"]["schedule"].as<std::string>();
    if (y["optim"] && y["optim"]["warmup_fraction"])
      t.warmup_fraction = y["optim"]["warmup_fraction"].as<double>();
    if (y["optim"] && y["optim"]["min_lr_fraction"])
      t.min_lr_fraction = y["optim"]["min_lr_fraction"].as<double>();
    if (y["train"] && y["train"]["batch_size"])
      t.batch_size = y["train"]["batch_size"].as<std::int64_t>();
  } catch (const YAML::Exception& e) {
    throw UsageError("--hparams " + path + ": " + e.what());
  }
  if (t.lr <= 0 && t.batch_size <= 0)
    throw UsageError("--hparams " + path +
                     " has neither optim.lr nor train.batch_size; pass the "
                     "config `scaletune extrapolate --out` wrote, or a fit JSON");
  return t;
}

Tuned from_fit(const std::string& path, double compute, std::int64_t context) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read --hparams " + path);
  scaling::FitResult fit;
  try {
    fit = scaling::fit_from_json(nlohmann::json::parse(in));
  } catch (const std::exception& e) {
    throw UsageError("--hparams " + path + ": not a fit written by `scaletune fit` (" + e.what() +
                     ")");
  }
  scaling::ExtrapolateOptions x;
  x.compute = compute;
  x.seq_len = static_cast<int>(context);
  scaling::Prediction p;
  try {
    p = scaling::extrapolate(fit, x);
  } catch (const std::invalid_argument& e) {
    throw UsageError("--hparams " + path + ": " + e.what());
  }
  Tuned t;
  t.source = path + " at C = " + fmt::format("{:.3g}", compute);
  if (!p.lr_param.empty() && p.params.at(p.lr_param).ok()) t.lr = p.params.at(p.lr_param).value;
  if (p.batch_tokens.ok())
    t.batch_size = std::max<std::int64_t>(
        1, std::llround(p.batch_tokens.value / static_cast<double>(context)));
  if (t.lr <= 0 && t.batch_size <= 0)
    throw UsageError("--hparams " + path + " has no learning-rate or batch law to use");
  return t;
}

// Compute of the base run (its result.json), for reading a fit's laws.
double base_compute(const std::string& base) {
  namespace fs = std::filesystem;
  fs::path dir = fs::is_directory(base) ? fs::path(base) : fs::path(base).parent_path();
  const fs::path r = dir / "result.json";
  if (!fs::exists(r)) return 0;
  try {
    return trainer::read_result(r.string()).cost.flops;
  } catch (const std::exception&) {
    return 0;
  }
}

// A context for converting token batches to sequences without loading the base: the base
// config's model.context when its result.json says, else 1024 (GPT-2).
std::int64_t base_context(const std::string& base) {
  namespace fs = std::filesystem;
  fs::path dir = fs::is_directory(base) ? fs::path(base) : fs::path(base).parent_path();
  try {
    const auto r = trainer::read_result((dir / "result.json").string());
    return r.config.at("model").at("context").get<std::int64_t>();
  } catch (const std::exception&) {
    return 1024;
  }
}

std::string default_out_dir() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return std::string("runs/finetune-") + stamp;
}

}  // namespace

Command add_finetune_command(CLI::App& app) {
  struct Options {
    std::string config, base, data, hparams, out;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "finetune", "LoRA instruction fine-tuning of a base model with the tuned settings");
  sub->add_option("--config", o->config, "Fine-tuning config (YAML, task: lora)")->required();
  sub->add_option("--base", o->base,
                  "Base model: a `scaletune train` output dir or its model.safetensors / "
                  "checkpoint.pt, or a Hugging Face GPT-2 dir (sets base.path)");
  sub->add_option("--data", o->data, "Instruction JSONL (Alpaca or messages; sets data.path)");
  sub->add_option("--hparams", o->hparams,
                  "Tuned settings: the YAML `scaletune extrapolate --out` wrote, or a fit JSON");
  sub->add_option("--set", o->overrides, "Override a key, e.g. --set lora.rank=16 (repeatable)");
  sub->add_option("--out", o->out, "Output directory (default: runs/finetune-TIMESTAMP)");
  return {sub, "finetune", [o] {
            const auto doc = config::Document::load_file(o->config, o->overrides);
            config::TrainConfig bound = config::bind_train_config(doc, "lora");
            auto cfg = std::get<trainer::LoraConfig>(bound.value);
            if (!o->base.empty()) cfg.base.path = o->base;
            if (!o->data.empty()) {
              cfg.data.source = "jsonl";
              cfg.data.path = o->data;
            }
            if (cfg.base.path.empty())
              throw UsageError(
                  "no base model: pass --base (e.g. the --out of `scaletune train` "
                  "with checkpoint.safetensors: true) or set base.path");
            if (!std::filesystem::exists(cfg.base.path))
              throw UsageError("base model " + cfg.base.path + " does not exist");
            if (cfg.data.source == "jsonl" && !std::filesystem::exists(cfg.data.path))
              throw UsageError("instruction data " + cfg.data.path + " does not exist");

            // Tuned settings: --hparams first, then every --set wins.
            if (!o->hparams.empty()) {
              const bool is_json = o->hparams.size() >= 5 &&
                                   o->hparams.compare(o->hparams.size() - 5, 5, ".json") == 0;
              Tuned t;
              if (is_json) {
                const double compute =
                    cfg.hparams.compute > 0 ? cfg.hparams.compute : base_compute(cfg.base.path);
                if (compute <= 0)
                  throw UsageError("--hparams " + o->hparams +
                                   " is a fit: set hparams.compute (FLOPs at which to read its "
                                   "laws); the base has no result.json with its compute");
                t = from_fit(o->hparams, compute, base_context(cfg.base.path));
              } else {
                t = from_run_config(o->hparams);
              }
              if (t.lr > 0 && !overridden(o->overrides, "optim.lr")) {
                cfg.optim.lr = trainer::lora_lr_from_full(cfg, t.lr);
                spdlog::info("lr {:.3g} = {} x the full-training lr {:.3g} from {}", cfg.optim.lr,
                             cfg.lora.method == "full" ? 1.0 : cfg.hparams.lr_multiplier, t.lr,
                             t.source);
              }
              if (t.batch_size > 0 && !overridden(o->overrides, "train.batch_size")) {
                cfg.train.batch_size = t.batch_size;
                spdlog::info("batch size {} from {}", t.batch_size, t.source);
              }
              if (!t.schedule.empty() && !overridden(o->overrides, "optim.schedule"))
                cfg.optim.schedule = t.schedule;
              if (t.warmup_fraction >= 0 && !overridden(o->overrides, "optim.warmup_fraction"))
                cfg.optim.warmup_fraction = t.warmup_fraction;
              if (t.min_lr_fraction >= 0 && !overridden(o->overrides, "optim.min_lr_fraction"))
                cfg.optim.min_lr_fraction = t.min_lr_fraction;
            }

            const std::string out = o->out.empty() ? default_out_dir() : o->out;
            std::filesystem::create_directories(out);
            util::log_to_file(out + "/finetune.log");
            {
              std::ofstream y(out + "/config.yaml");
              y << config::to_yaml(cfg, true);
            }
            spdlog::info("finetune {} -> {}", cfg.base.path, out);
            const auto& plugin = util::torch_plugin();
            struct sigaction sa {};
            sa.sa_handler = request_finetune_stop;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGTERM, &sa, nullptr);
            sigaction(SIGUSR2, &sa, nullptr);
            trainer::dist::EnvMap env;
            if (const char* v = std::getenv("OMP_NUM_THREADS")) env["OMP_NUM_THREADS"] = v;
            trainer::lora::LoraRunEnd end =
                plugin.train_lora(trainer::lora::LoraRun{cfg, out, env, &g_finetune_stop});
            trainer::TrainResult& r = end.result;
            r.config = config::to_json(cfg);
            const std::string path = out + "/result.json";
            trainer::write_result(r, path);

            nlohmann::json s;
            s["status"] = trainer::to_string(r.status);
            if (!r.reason.empty()) s["reason"] = r.reason;
            auto metric = [&](const char* key) {
              auto it = r.metrics.find(key);
              return it != r.metrics.end() && std::isfinite(it->second) ? nlohmann::json(it->second)
                                                                        : nlohmann::json(nullptr);
            };
            for (const char* key : {"accuracy_before", "accuracy", "val_loss_before", "val_loss",
                                    "trainable_params", "trainable_fraction"})
              s[key] = metric(key);
            s["lr"] = cfg.optim.lr;
            s["result"] = path;
            for (const char* key : {"adapter", "model", "checkpoint"})
              if (r.info.count(key)) s[key] = r.info.at(key);
            std::printf("%s\n", s.dump().c_str());
            std::fflush(stdout);
            if (end.interrupted) return kExitStopped;
            return r.ok() ? kExitOk : kExitRunFailed;
          }};
}

}  // namespace scaletune::cli
