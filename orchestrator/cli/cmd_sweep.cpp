// scaletune sweep --config FILE [--set key=value]... [--records FILE.h5] [--resume]
//
// Runs a whole sweep (docs/sweep.md). Without mpirun/srun one process runs the orchestrator and
// a local agent; under MPI rank 0 is the orchestrator (plus an agent unless
// resources.trials_on_rank0 is false) and every other rank an agent.
//
// Exit codes: 0 the budget is spent; 4 stopped early by SIGINT/SIGTERM/the warning signal (run
// again with --resume, e.g. after a Slurm requeue); 2 bad config or flags, nothing started;
// 1 an error while running (the records stay valid; --resume continues).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>

#include "orchestrator/cli/command.h"
#include "orchestrator/config/binder.h"
#include "orchestrator/store/records.h"
#include "orchestrator/sweep/agent_loop.h"
#include "orchestrator/sweep/local_agent.h"
#include "orchestrator/sweep/mpi_transport.h"
#include "orchestrator/sweep/orchestrator.h"
#include "orchestrator/sweep/records_store.h"
#include "orchestrator/sweep/slots.h"
#include "orchestrator/sweep/sweep_plan.h"
#include "orchestrator/util/log.h"
#include "scaling/fit.h"

namespace scaletune::cli {
namespace {

namespace fs = std::filesystem;

// Signal handlers may only touch lock-free atomics.
std::atomic<int> g_stop_requests{0};
std::atomic<bool> g_agent_abort{false};

extern "C" void on_stop_signal(int) { g_stop_requests.fetch_add(1); }
extern "C" void on_agent_signal(int) { g_agent_abort.store(true); }

int signal_number(const std::string& name) {
  if (name == "SIGUSR2") return SIGUSR2;
  if (name == "SIGTERM") return SIGTERM;
  if (name == "SIGINT") return SIGINT;
  if (name == "SIGHUP") return SIGHUP;
  if (name == "SIGXCPU") return SIGXCPU;
  if (name == "SIGURG") return SIGURG;
  return SIGUSR2;
}

void install(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(sig, &sa, nullptr);
}

// Under mpirun or srun (with PMI) this process is one rank of several.
bool under_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (const char* v = std::getenv(n)) return std::atoi(v);
  return fallback;
}

std::string self_exe() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("scaletune") : p.string();
}

sweep::AgentOptions agent_options(const sweep::SweepConfig& config) {
  sweep::HostInfo host = sweep::probe_host();
  if (const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES")) host.cuda_visible_devices = cvd;
  host.local_rank = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}, 0);
  host.local_size =
      env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}, 1);
  if (host.local_rank >= host.local_size) host.local_size = host.local_rank + 1;
  sweep::AgentOptions o;
  o.host = host.hostname.empty() ? "localhost" : host.hostname;
  o.slots = sweep::plan_slots(config.resources, host);  // throws invalid_argument
  o.self_exe = self_exe();
  return o;
}

// The scaling-law hook: power laws of every parameter along the front, as JSON text.
std::string refit(const sweep::SweepConfig& config, const std::vector<sweep::TrialRow>& rows) {
  std::vector<double> compute, loss;
  std::map<std::string, std::vector<double>> params;
  for (const auto& r : rows) {
    const double c = std::isfinite(r.flops) && r.flops > 0 ? r.flops : r.cost;
    if (r.status != "ok" || !std::isfinite(c) || !std::isfinite(r.objective)) continue;
    compute.push_back(c);
    loss.push_back(config.search.direction == "maximize" ? -r.objective : r.objective);
    for (const auto& [name, spec] : config.search.search)
      params[name].push_back(r.params.count(name) ? r.params.at(name) : scaling::kNaN);
  }
  if (compute.size() < 3) return "";
  const auto fit = scaling::refit_laws(compute, loss, params, 100);
  for (const auto& law : fit.laws) {
    auto k = law.coef.find("k");
    auto p = law.coef.find("p");
    if (law.form == "power" && k != law.coef.end() && p != law.coef.end())
      spdlog::info("scaling law ({}): {} = {:.4g} * C^{:.4f}{}", law.method, law.y, k->second,
                   p->second, law.flagged() ? " (flagged)" : "");
  }
  return scaling::to_json(fit).dump();
}

struct Options {
  std::string config;
  std::vector<std::string> overrides;
  std::string records;
  bool resume = false;
};

int run_agent_rank(const sweep::SweepConfig& config) {
  install(SIGTERM, on_agent_signal);
  // Ctrl-C and the warning signal are the orchestrator's to act on.
  signal(SIGINT, SIG_IGN);
  signal(signal_number(config.warning_signal), SIG_IGN);
  sweep::MpiTransport transport;
  sweep::AgentOptions options;
  try {
    options = agent_options(config);
  } catch (const std::invalid_argument& e) {
    spdlog::error("{}; this agent offers no slots", e.what());
  }
  sweep::Agent agent(options, [&](const nlohmann::json& m) { transport.send(0, m); });
  sweep::run_agent(transport, agent, g_agent_abort, 0);
  transport.flush();
  return kExitOk;
}

int run_orchestrator(const Options& opts, const sweep::SweepConfig& config,
                     const std::string& config_yaml, sweep::MpiTransport* mpi) {
  const std::string out_dir = config.out_dir.empty() ? "runs/sweep-" + config.name : config.out_dir;
  const std::string path = opts.records.empty() ? out_dir + "/records.h5" : opts.records;
  // The local agent's slots are known now: refuse an impossible device count before the
  // records file exists (other ranks' slots are checked once they report, before any trial).
  const bool local_agent = !mpi || config.resources.trials_on_rank0;
  std::optional<sweep::AgentOptions> local_options;
  if (local_agent) {
    try {
      local_options = agent_options(config);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("resources: ") + e.what());
    }
    if (!mpi) {
      const std::string fit = sweep::check_allocation(
          config.resources, {static_cast<int>(local_options->slots.size())});
      if (!fit.empty()) throw config::ConfigError({{opts.config, "resources", fit}});
    }
  }
  const bool exists = fs::exists(path);
  if (exists && !opts.resume)
    throw UsageError(path +
                     " already exists; pass --resume to continue that sweep, or choose another "
                     "file with --records");
  if (!exists && opts.resume)
    throw UsageError("--resume: " + path + " does not exist (start the sweep without --resume)");

  // The searcher and the records, from the file when resuming.
  std::optional<sweep::StoreRecords> records;
  std::optional<search::Carbs> carbs;
  if (opts.resume) {
    auto resumed = store::RecordsWriter::open_existing(path);
    const std::string space = sweep::sweep_meta(config, config_yaml).search_space_json;
    if (resumed.records.meta.search_space_json != space)
      throw UsageError(path +
                       " was recorded with a different search space; resume it with the "
                       "config it was started with (the stored one is in its metadata)");
    std::vector<sweep::TrialRow> rows;
    for (const auto& r : resumed.records.trials) rows.push_back(sweep::to_row(r));
    if (auto state = resumed.records.text(sweep::kSearchStateKey)) {
      carbs.emplace(search::Carbs::load_state(*state));
    }
    records.emplace(std::move(resumed.writer), std::move(rows));
  } else {
    records.emplace(store::RecordsWriter::create(path, sweep::sweep_meta(config, config_yaml)),
                    std::vector<sweep::TrialRow>{});
  }
  if (!carbs) carbs.emplace(config.search);
  sweep::CarbsSearcher searcher(std::move(*carbs));
  util::log_to_file(out_dir + "/sweep.log");
  spdlog::info("sweep {}: trainer {}, records {}{}", config.name, config.trainer, path,
               opts.resume ? " (resumed)" : "");

  // Where the agents are: a local one in this process, and the other MPI ranks.
  std::atomic<bool> local_abort{false};
  sweep::LocalHub hub(2);
  std::unique_ptr<sweep::Transport> local_end;
  std::unique_ptr<sweep::MergedTransport> merged;
  sweep::Transport* transport = nullptr;
  sweep::OrchestratorOptions o;
  if (!mpi) {
    local_end = hub.endpoint(0);
    transport = local_end.get();
    o.agent_ranks = {1};
  } else {
    for (int r = 1; r < mpi->size(); ++r) o.agent_ranks.push_back(r);
    if (local_agent) {
      merged = std::make_unique<sweep::MergedTransport>(*mpi, hub.endpoint(0));
      o.agent_ranks.push_back(merged->local_rank());
      transport = merged.get();
    } else {
      transport = mpi;
    }
  }
  if (o.agent_ranks.empty())
    throw UsageError("no agents: run with more MPI ranks or set resources.trials_on_rank0: true");
  std::unique_ptr<sweep::LocalAgent> agent;
  if (local_agent)
    agent = std::make_unique<sweep::LocalAgent>(*local_options, hub.endpoint(1), local_abort);

  o.trials_dir = out_dir + "/trials";
  o.resume = opts.resume;
  o.terminal = isatty(STDERR_FILENO) != 0;
  if (config.scaling.refit_every > 0)
    o.refit = [&config](const std::vector<sweep::TrialRow>& rows) { return refit(config, rows); };

  sweep::SweepEnd end = sweep::SweepEnd::kCompleted;
  try {
    sweep::Orchestrator orchestrator(config, searcher, *records, *transport, o);
    end = orchestrator.run(g_stop_requests);
  } catch (const config::ConfigError&) {
    local_abort = true;
    // The allocation cannot hold a trial: nothing ran, so leave no records file behind.
    if (!opts.resume) {
      records->writer().close();
      fs::remove(path);
      fs::remove(path + ".lock");
    }
    throw;
  } catch (...) {
    local_abort = true;  // the local agent stops its trials and ends
    throw;
  }
  records->writer().close();
  if (end == sweep::SweepEnd::kStopped) {
    std::fprintf(stderr,
                 "sweep %s stopped early; continue it with: scaletune sweep --config %s "
                 "--records %s --resume\n",
                 config.name.c_str(), opts.config.c_str(), path.c_str());
    return kExitStopped;
  }
  std::printf("%s\n", nlohmann::json({{"records", path}, {"status", "completed"}}).dump().c_str());
  return kExitOk;
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "sweep",
      "Run a CARBS sweep: suggest, run trials on the agents, record, until the budget "
      "is spent");
  sub->add_option("--config", opts->config, "Sweep config (YAML) with `trainer:` and `search:`")
      ->required();
  sub->add_option("--set", opts->overrides,
                  "Override a key, e.g. --set budget.max_trials=50 (repeatable)");
  sub->add_option("--records", opts->records,
                  "Records file (default: OUT_DIR/records.h5, OUT_DIR from the config)");
  sub->add_flag("--resume", opts->resume,
                "Continue the sweep recorded in the records file (after a stop or a crash)");
  return {sub, "orchestrator", [opts] {
            // Every rank checks the config before MPI starts, so a bad one fails everywhere
            // with the same message and nothing is launched.
            const auto doc = config::Document::load_file(opts->config, opts->overrides);
            const sweep::SweepConfig config = sweep::load_sweep_config(doc);
            const std::string config_yaml = config::to_yaml(config);
            if (!under_mpi()) {
              install(SIGINT, on_stop_signal);
              install(SIGTERM, on_stop_signal);
              install(signal_number(config.warning_signal), on_stop_signal);
              return run_orchestrator(*opts, config, config_yaml, nullptr);
            }
            sweep::MpiSession session(nullptr, nullptr);
            if (session.rank() != 0) {
              util::LogOptions log;
              log.prefix = "agent " + std::to_string(session.rank());
              util::setup_logging(log);
              return run_agent_rank(config);
            }
            install(SIGINT, on_stop_signal);
            install(SIGTERM, on_stop_signal);
            install(signal_number(config.warning_signal), on_stop_signal);
            sweep::MpiTransport transport;
            try {
              const int code = run_orchestrator(*opts, config, config_yaml, &transport);
              transport.flush();
              return code;
            } catch (...) {
              // Release the agent ranks (they end once told), so mpirun does not hang.
              for (int r = 1; r < session.size(); ++r)
                transport.send(r, sweep::encode(sweep::Shutdown{SIGTERM, 5}));
              transport.flush();
              throw;
            }
          }};
}

}  // namespace scaletune::cli
