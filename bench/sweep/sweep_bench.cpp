// Sweep orchestration benchmark (issue 5):
//   1. throughput: trials recorded per second with zero-length synthetic trials, 1 orchestrator
//      + 3 agents under `mpirun -np 4 --oversubscribe --bind-to none`; reference: the same number
//      of `scaletune train` processes started back to back by one shell (process start-up alone);
//   2. slot utilisation with 2-second trials (target >= 98%);
//   3. how CARBS suggest latency, searcher state saves and HDF5 appends scale to 2,000 trials.
//   Each sweep also reports the CPU its event loops used while trials ran (orchestrator and
//   agents; the searcher's own time is shown apart), since a polling loop steals cores from trials.
//   The embedded throughput runs at several sweep sizes (--embedded-trials), since the searcher's
//   share per trial grows with the observations while the orchestration's should not.
// Usage: sweep_bench [--trials 2000] [--skip-mpi] [--skip-scaling] [--repeat 1]
//                    [--embedded-trials 100,1000]
//                    [--scaletune PATH (another build of the program, e.g. to compare versions)]
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "orchestrator/search/carbs.h"
#include "orchestrator/store/records.h"
#include "trainer/synthetic/synthetic.h"

namespace {

namespace fs = std::filesystem;
using namespace scaletune;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string g_bin = std::string(SCALETUNE_BINARY_DIR) + "/scaletune";
std::string bin() { return g_bin; }

std::string sweep_config(const std::string& dir, int trials, double seconds, int slots,
                         bool rank0) {
  return "name: bench\ntrainer: synthetic\ntrain: {seconds: " + std::to_string(seconds) +
         ", noise: 0.01}\n"
         "search:\n"
         "  lr: {space: log, center: 1.0e-3, scale: 0.5}\n"
         "  tokens: {space: log, center: 2.0e8, min: 1.0e7, max: 1.0e10, scale: 0.5}\n"
         "carbs: {num_random_samples: 8}\n"
         "budget: {max_trials: " +
         std::to_string(trials) + "}\nresources: {devices: cpu, slots: " + std::to_string(slots) +
         ", trials_on_rank0: " + (rank0 ? "true" : "false") + "}\nout_dir: " + dir + "\n";
}

struct LoopCpu {  // "... loop CPU 0.029 s over 8.64 s ..." lines of the orchestrator and agents
  double cpu = 0, wall = 0;
  int loops = 0;
};

struct SweepRun {
  double wall = 0;
  double suggestions = 0;
  double search_seconds = 0;       // suggest + save_state, as the orchestrator measured them
  double loop_search_seconds = 0;  // ... of which during the orchestrator's main loop
  LoopCpu orchestrator, agents;
  store::Records records;
};

bool parse_loop_cpu(const std::string& line, LoopCpu& into) {
  const auto at = line.find("loop CPU ");
  if (at == std::string::npos) return false;
  const auto over = line.find(" s over ", at);
  if (over == std::string::npos) return false;
  into.cpu += std::atof(line.substr(at + 9).c_str());
  into.wall += std::atof(line.substr(over + 8).c_str());
  into.loops += 1;
  return true;
}

// `trials`: when > 0, also the loops' CPU per trial outside the searcher, which (unlike slot
// idle time) does not count a slot's wait while the orchestrator serves other slots.
void print_cpu(const SweepRun& r, std::size_t trials = 0) {
  if (r.orchestrator.loops == 0) {
    std::printf("  CPU of the event loops: not reported by this build\n");
    return;
  }
  std::printf(
      "  CPU while trials ran: orchestrator %.3f s over %.2f s = %.2f%% of a core (the "
      "searcher %.3f s of it, wall)",
      r.orchestrator.cpu, r.orchestrator.wall, 100 * r.orchestrator.cpu / r.orchestrator.wall,
      r.loop_search_seconds);
  if (r.agents.loops > 0)
    std::printf("; %d agent(s) %.2f%% of a core each", r.agents.loops,
                100 * r.agents.cpu / r.agents.wall);
  std::printf("\n");
  if (trials > 0)
    std::printf(
        "  orchestration CPU per trial: orchestrator %.2f ms beyond the searcher (timed in wall "
        "time, so under contention this is low), agents %.2f ms "
        "(launch, reap, result, messages)\n",
        1e3 * (r.orchestrator.cpu - r.loop_search_seconds) / static_cast<double>(trials),
        1e3 * r.agents.cpu / static_cast<double>(trials));
  if (trials > 0 && r.orchestrator.cpu > 0) {
    // The orchestrator serves every slot in turn, so with several slots the "orchestration
    // itself" above also counts a slot's wait while it serves the others; this says which of
    // its two parts (search, the rest) bounds the throughput.
    const double n = static_cast<double>(trials);
    const double search = r.loop_search_seconds / n,
                 rest = (r.orchestrator.cpu - r.loop_search_seconds) / n;
    std::printf(
        "  orchestrator busy per trial: searcher %.2f ms + the rest %.2f ms (%.0f%% search); "
        "alone it would allow %.0f trials/s\n",
        1e3 * search, 1e3 * std::max(0.0, rest), 100 * search / (search + std::max(0.0, rest)),
        1 / (search + std::max(0.0, rest)));
  }
}

SweepRun run_sweep(const std::string& name, const std::string& config_text,
                   const std::string& launcher) {
  const fs::path dir = fs::temp_directory_path() / ("scaletune-bench-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config = (dir / "sweep.yaml").string();
  std::ofstream(config) << config_text;
  const auto t0 = Clock::now();
  const std::string cmd = launcher + bin() + " sweep --config " + config + " --records " +
                          (dir / "records.h5").string() + " > /dev/null 2> " +
                          (dir / "err.log").string();
  const int rc = std::system(cmd.c_str());
  SweepRun r;
  r.wall = seconds_since(t0);
  if (rc != 0) {
    std::fprintf(stderr, "%s failed (rc %d); see %s\n", cmd.c_str(), rc, (dir / "err.log").c_str());
    std::exit(1);
  }
  r.records = store::load((dir / "records.h5").string(), {false});
  // The orchestrator's own account of the searcher's time ("N suggestions took X s ...").
  std::ifstream log(dir / "err.log");
  std::string line;
  while (std::getline(log, line)) {
    if (line.find("orchestrator loop CPU") != std::string::npos) {
      parse_loop_cpu(line, r.orchestrator);
      const auto s = line.find("searcher (wall) ");
      if (s != std::string::npos) r.loop_search_seconds = std::atof(line.substr(s + 16).c_str());
      continue;
    }
    if (line.find("agent: ") != std::string::npos && parse_loop_cpu(line, r.agents)) continue;
    const auto at = line.find("suggestions took ");
    if (at == std::string::npos) continue;
    const auto start = line.rfind(": ", at);
    r.suggestions = std::atof(line.substr(start + 2).c_str());
    r.search_seconds = std::atof(line.substr(at + 17).c_str());
    const auto save = line.find("state saves ");
    if (save != std::string::npos) r.search_seconds += std::atof(line.substr(save + 12).c_str());
  }
  return r;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * (v.size() - 1))];
}

// `mpi`: 3 agents (ranks 1-3), one slot each, rank 0 only orchestrates: on 2 cores the 3 trial
// processes' start-up CPU competes with the loops, so this measures contention as much as the
// orchestration. Otherwise the embedded mode with one slot: one trial process at a time, no MPI
// in the path, which isolates the orchestration's own cost per trial.
void throughput(int trials, bool mpi) {
  const int slots = mpi ? 3 : 1;
  const std::string mpirun = "mpirun --allow-run-as-root --oversubscribe --bind-to none -np 4 ";
  const std::string name = mpi ? "throughput" : "throughput-embedded";
  const fs::path dir = fs::temp_directory_path() / ("scaletune-bench-" + name);
  const auto r = run_sweep(name, sweep_config(dir.string(), trials, 0, 1, !mpi), mpi ? mpirun : "");
  const auto latest = r.records.latest_trials();
  double first = INFINITY, last = -INFINITY, busy = 0;
  for (const auto& t : latest) {
    first = std::min(first, t.start_time);
    last = std::max(last, t.end_time);
    busy += t.wall_seconds;
  }
  const double span = last - first;
  // Reference: the same trials as plain processes, one after another, `slots` at a time.
  const fs::path ref = fs::temp_directory_path() / "scaletune-bench-ref";
  fs::remove_all(ref);
  fs::create_directories(ref);
  std::ofstream(ref / "t.yaml") << "task: synthetic\nnoise: 0.01\n";
  const auto t0 = Clock::now();
  const std::string loop = "cd " + ref.string() + " && for i in $(seq 1 " +
                           std::to_string(trials / slots) + "); do for j in $(seq 1 " +
                           std::to_string(slots) + "); do " + bin() +
                           " -q train --config t.yaml --out r$j > /dev/null 2>&1 & done; wait; "
                           "done";
  if (std::system(loop.c_str()) != 0) std::fprintf(stderr, "reference loop failed\n");
  const double ref_wall = seconds_since(t0);
  std::printf("throughput (%s, zero-length trials):\n",
              mpi ? "mpirun -np 4: 1 orchestrator + 3 agents"
                  : "embedded: 1 process, a local agent with 1 slot");
  std::printf(
      "  %zu trials recorded in %.2f s (first start to last end) = %.1f trials/s; "
      "whole run incl. mpirun start %.2f s\n",
      latest.size(), span, latest.size() / span, r.wall);
  std::printf(
      "  reference: %d `scaletune train` processes, %d at a time, from a shell: %.2f s = "
      "%.1f trials/s\n",
      trials / slots * slots, slots, ref_wall, (trials / slots * slots) / ref_wall);
  const double gap = (slots * span - busy) / latest.size();  // idle slot time per trial
  const double search = r.search_seconds / std::max(1.0, r.suggestions);
  std::printf(
      "  per trial: %.1f ms in the trial process (start-up + run); slots idle %.1f ms "
      "per trial, of which the searcher (suggest + state save) %.1f ms and the "
      "orchestration itself %.1f ms\n",
      1e3 * busy / latest.size(), 1e3 * gap, 1e3 * search, 1e3 * (gap - search));
  // Where the idle time goes, from the records' slot and time columns (schema >= 2): on each
  // slot, the orchestrator's time from a trial's final row to the next trial's running row
  // (recording, observing, the searcher, placement), and the rest of each trial's span outside
  // its own process (the agent's launch and reap, and the messages both ways).
  std::map<std::string, std::vector<std::pair<double, double>>> by_slot;
  std::vector<double> outside;
  for (const auto& t : latest) {
    if (t.slots.size() != 1) continue;
    by_slot[t.slots[0]].push_back({t.start_time, t.end_time});
    outside.push_back(1e3 * ((t.end_time - t.start_time) - t.wall_seconds));
  }
  std::vector<double> orchestrator;
  for (auto& [slot, spans] : by_slot) {
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i)
      orchestrator.push_back(1e3 * (spans[i].first - spans[i - 1].second));
  }
  if (!orchestrator.empty())
    std::printf(
        "  breakdown (p50 over trials): orchestrator from a trial's end to the next start on its "
        "slot %.2f ms (searcher included); agent launch + reap + messages %.2f ms\n",
        percentile(orchestrator, 0.5), percentile(outside, 0.5));
  print_cpu(r, latest.size());
}

void utilisation(int slots, int per_slot) {
  const int trials = slots * per_slot;
  const fs::path dir = fs::temp_directory_path() / "scaletune-bench-util";
  std::string text = sweep_config(dir.string(), trials, 2.0, slots, true);
  const auto r = run_sweep("util", text, "");
  double first = INFINITY, last = -INFINITY, busy = 0, trial_time = 0;
  for (const auto& t : r.records.latest_trials()) {
    first = std::min(first, t.start_time);
    last = std::max(last, t.end_time);
    busy += t.end_time - t.start_time;
    trial_time += t.wall_seconds;
  }
  const double span = last - first;
  std::printf("slot utilisation (%d slots, %d trials of 2 s, embedded mode):\n", slots, trials);
  std::printf(
      "  slots held by trials %.2f%% of %d x %.2f s (target >= 98%%); trial processes "
      "ran %.2f%% (the rest is the agent's launch and reap)\n",
      100 * busy / (slots * span), slots, span, 100 * trial_time / (slots * span));
  std::printf("  reference: the ideal schedule takes %.2f s; measured %.2f s\n", 2.0 * per_slot,
              span);
  print_cpu(r);
}

void scaling(int trials) {
  search::SearchConfig sc;
  search::ParamSpec lr, tokens;
  lr.space = "log";
  lr.center = 1e-3;
  lr.scale = 0.5;
  tokens.space = "log";
  tokens.center = 2e8;
  tokens.min = 1e7;
  tokens.max = 1e10;
  tokens.scale = 0.5;
  sc.search = {{"lr", lr}, {"tokens", tokens}};
  sc.carbs.num_random_samples = 8;
  search::Carbs carbs(sc);

  const fs::path dir = fs::temp_directory_path() / "scaletune-bench-store";
  fs::remove_all(dir);
  store::SweepMeta meta;
  meta.params = {"lr", "tokens"};
  meta.objective = "val_loss";
  meta.cost_metric = "flops";
  auto writer = store::RecordsWriter::create((dir / "records.h5").string(), meta);

  std::printf("scaling to %d trials (CARBS suggest + observe, state save, HDF5 appends):\n",
              trials);
  std::printf("  %8s %12s %12s %12s %12s %12s\n", "trials", "suggest p50", "suggest p90",
              "save p50", "state KB", "append p50");
  std::vector<double> suggest_ms, append_us, save_ms;
  const std::vector<int> reports = {100, 250, 500, 1000, 1500, 2000};
  for (int i = 0; i < trials; ++i) {
    auto t0 = Clock::now();
    const auto s = carbs.suggest();
    suggest_ms.push_back(1e3 * seconds_since(t0));
    trainer::SyntheticConfig c;
    c.lr = s.params.at("lr");
    c.tokens = s.params.at("tokens");
    const double loss = trainer::synthetic_true_loss(c);
    const double cost = 6 * c.n_params * c.tokens;
    search::Observation o;
    o.suggestion_id = s.id;
    o.output = loss;
    o.cost = cost;
    carbs.observe(o);
    store::TrialRecord rec;
    rec.trial_id = i;
    rec.status = store::TrialStatus::kOk;
    rec.params = s.params;
    rec.objective = loss;
    rec.cost = cost;
    rec.suggestion_id = s.id;
    t0 = Clock::now();
    writer.append_trial(rec);
    append_us.push_back(1e6 * seconds_since(t0));
    // As the orchestrator does: the searcher's state with every trial.
    t0 = Clock::now();
    const std::string state = carbs.save_state();
    writer.put_text("search_state", state);
    save_ms.push_back(1e3 * seconds_since(t0));
    if (std::count(reports.begin(), reports.end(), i + 1) || i + 1 == trials) {
      auto recent = [&](const std::vector<double>& v) {
        return std::vector<double>(v.end() - std::min<std::size_t>(50, i + 1), v.end());
      };
      std::printf("  %8d %10.2fms %10.2fms %10.2fms %12.1f %10.1fus\n", i + 1,
                  percentile(recent(suggest_ms), 0.5), percentile(recent(suggest_ms), 0.9),
                  percentile(recent(save_ms), 0.5), state.size() / 1024.0,
                  percentile(recent(append_us), 0.5));
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 2000;
  int repeat = 1;
  std::vector<int> embedded = {100, 1000};
  bool mpi = true, scale = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) trials = std::atoi(argv[++i]);
    if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    if (a == "--scaletune" && i + 1 < argc) g_bin = argv[++i];
    if (a == "--embedded-trials" && i + 1 < argc) {
      embedded.clear();
      std::string list = argv[++i];
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at)
          embedded.push_back(std::max(1, std::atoi(list.substr(at, comma - at).c_str())));
        at = comma + 1;
      }
    }
    if (a == "--skip-mpi") mpi = false;
    if (a == "--skip-scaling") scale = false;
  }
  std::printf("program: %s\n", bin().c_str());
  for (int i = 0; i < repeat; ++i) {
    if (mpi) throughput(150, true);
    for (int n : embedded) throughput(n, false);
    utilisation(4, 4);
  }
  if (scale) scaling(trials);
  return 0;
}
