// scaletune train --config FILE [--set key=value]... [--out DIR] [--resume]
//
// Runs one training run and writes DIR/result.json (trainer/core/result.h). This is exactly what
// a sweep's agents run for every trial. Exit code 0 when the run succeeded, 3 when it ended with
// a failure status (result.json says why), 4 when it checkpointed on SIGTERM/SIGUSR2 (run it
// again with --resume), 1/2 for errors before a result exists.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>

#include "orchestrator/cli/command.h"
#include "orchestrator/config/kinds.h"
#include "orchestrator/util/log.h"
#include "orchestrator/util/torch_plugin.h"
#include "trainer/core/result.h"
#include "trainer/dist/dist_env.h"
#include "trainer/synthetic/synthetic.h"

namespace scaletune::cli {
namespace {

// A trainer that checkpointed because it was asked to stop (orchestrator/sweep/outcome.h).
constexpr int kExitInterrupted = 4;

// Set by SIGTERM/SIGUSR2 (Slurm preemption, a sweep stopping its trials); the LM trainer
// checkpoints at the end of the current step and returns.
std::atomic<int> g_stop_requested{0};
void request_stop(int) { g_stop_requested.store(1); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
}

// The launcher variables the distributed trainers read (trainer/dist/dist_env.h).
trainer::dist::EnvMap launcher_env() {
  trainer::dist::EnvMap env;
  for (const auto& name : trainer::dist::dist_env_variables())
    if (const char* v = std::getenv(name.c_str())) env[name] = v;
  return env;
}

std::string default_out_dir(const std::string& task) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/train-" + task + "-" + stamp;
}

// One machine-readable line on stdout: what a user or a script needs to know about the run.
void print_summary(const trainer::TrainResult& r, const std::string& result_path) {
  nlohmann::json s;
  s["status"] = trainer::to_string(r.status);
  if (!r.reason.empty()) s["reason"] = r.reason;
  const double objective = r.objective_value();
  s[r.objective.empty() ? "objective" : r.objective] =
      std::isfinite(objective) ? nlohmann::json(objective) : nlohmann::json(nullptr);
  s["flops"] = r.cost.flops;
  s["tokens"] = r.cost.tokens;
  s["wall_seconds"] = r.cost.wall_seconds;
  s["result"] = result_path;
  std::printf("%s\n", s.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

Command add_train_command(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    std::string out;
    bool resume = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("train", "Run one training run and write OUT/result.json");
  sub->add_option("--config", opts->config, "Training config (YAML) with a `task:` key")
      ->required();
  sub->add_option("--set", opts->overrides,
                  "Override a key, e.g. --set optim.lr=3e-4 (repeatable)");
  sub->add_option("--out", opts->out, "Output directory (default: runs/train-TASK-TIMESTAMP)");
  sub->add_flag("--resume", opts->resume,
                "Continue from OUT/checkpoint.pt when it exists (lm), bit-for-bit");
  return {sub, "train", [opts] {
            const auto doc = config::Document::load_file(opts->config, opts->overrides);
            const config::TrainConfig cfg = config::bind_train_config(doc);
            const std::string out = opts->out.empty() ? default_out_dir(cfg.task()) : opts->out;
            std::filesystem::create_directories(out);
            const trainer::dist::EnvMap env = launcher_env();
            int rank = 0;
            try {
              rank = trainer::dist::parse_dist_env(env).rank;
            } catch (const std::invalid_argument& e) {
              throw UsageError(e.what());
            }
            // Every rank of a data-parallel run shares OUT; only rank 0 writes result.json.
            util::log_to_file(
                out + (rank == 0 ? "/train.log" : "/train.rank" + std::to_string(rank) + ".log"));
            spdlog::info("task {} -> {}", cfg.task(), out);

            trainer::TrainResult result;
            if (const auto* synthetic = std::get_if<trainer::SyntheticConfig>(&cfg.value)) {
              result = trainer::run_synthetic(*synthetic);
              // Every rank simulates the same run; writing result.json is rank 0's job.
              if (rank != 0) return result.ok() ? kExitOk : kExitRunFailed;
            } else if (const auto* lm = std::get_if<trainer::LmConfig>(&cfg.value)) {
              const auto& plugin = util::torch_plugin();
              install_stop_handlers();
              trainer::lm::LmRun run{*lm, out, opts->resume, env, &g_stop_requested};
              trainer::lm::LmRunEnd end = plugin.train_lm(run);
              if (end.interrupted) {
                spdlog::info("{}", end.result.reason);
                return kExitInterrupted;
              }
              if (end.rank != 0) return end.result.ok() ? kExitOk : kExitRunFailed;
              result = std::move(end.result);
            } else if (const auto* lora = std::get_if<trainer::LoraConfig>(&cfg.value)) {
              install_stop_handlers();
              trainer::lora::LoraRunEnd end = util::torch_plugin().train_lora(
                  trainer::lora::LoraRun{*lora, out, env, &g_stop_requested});
              result = std::move(end.result);
            } else if (const auto* ppo = std::get_if<trainer::PpoConfig>(&cfg.value)) {
              trainer::PpoRunEnd end = util::torch_plugin().train_ppo(trainer::PpoRun{*ppo, env});
              if (end.rank != 0) return end.result.ok() ? kExitOk : kExitRunFailed;
              result = std::move(end.result);
            }
            result.config = cfg.to_json();
            const std::string path = out + "/result.json";
            trainer::write_result(result, path);
            print_summary(result, path);
            return result.ok() ? kExitOk : kExitRunFailed;
          }};
}

}  // namespace scaletune::cli
