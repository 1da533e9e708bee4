#include "orchestrator/sweep/agent.h"

#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace scaletune::sweep {
namespace fs = std::filesystem;

std::vector<std::string> launcher_variables() {
  return {"OMPI_*", "PMIX_*", "PMI_*", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "SLURM_PROCID",
          "SLURM_LOCALID", "SLURM_NODEID", "SLURM_STEP_*", "SLURM_TASK_PID",
          // A trial gets its own rendezvous; never inherit the agent's.
          "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"};
}

int pick_free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    close(fd);
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(err));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

double resident_bytes(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      double kb = 0;
      in >> kb;
      return kb * 1024.0;
    }
  }
  return 0;
}

double host_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024.0;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

Agent::Agent(AgentOptions options, Send send)
    : options_(std::move(options)),
      send_(std::move(send)),
      slot_busy_(options_.slots.size(), false) {}

Agent::~Agent() = default;  // ChildProcess destructors kill whatever still runs

Hello Agent::hello() const { return {options_.host, static_cast<int>(getpid()), options_.slots}; }

std::size_t Agent::free_slots() const {
  std::size_t n = 0;
  for (bool busy : slot_busy_) n += busy ? 0 : 1;
  return n;
}

void Agent::handle(const nlohmann::json& message) {
  const std::string type = message_type(message);
  if (type == "launch") return launch(decode_launch(message));
  if (type == "stop") return stop(decode_stop(message));
  if (type == "shutdown") return shutdown(decode_shutdown(message));
  throw std::invalid_argument("an agent cannot handle a '" + type + "' message");
}

void Agent::fail_launch(const LaunchTrial& m, const std::string& reason) {
  spdlog::warn("trial {} attempt {}: launch failed: {}", m.trial, m.attempt, reason);
  send_(encode(LaunchFailed{m.trial, m.attempt, reason}));
}

void Agent::launch(const LaunchTrial& m) {
  const Key key{m.trial, m.attempt};
  if (shutting_down_) return fail_launch(m, "agent on " + options_.host + " is shutting down");
  if (trials_.count(key)) return fail_launch(m, "already running on " + options_.host);
  if (m.ranks.empty()) return fail_launch(m, "no ranks placed on this agent");
  for (const auto& p : m.ranks) {
    if (p.slot < 0 || p.slot >= static_cast<int>(slot_busy_.size()))
      return fail_launch(m,
                         "slot " + std::to_string(p.slot) + " does not exist on " + options_.host);
    if (slot_busy_[static_cast<std::size_t>(p.slot)])
      return fail_launch(m, "slot " + std::to_string(p.slot) + " on " + options_.host + " is busy");
  }

  Trial trial;
  trial.launch = m;
  bool hosts_rank0 = false;
  for (const auto& p : m.ranks) hosts_rank0 = hosts_rank0 || p.rank == 0;
  try {
    fs::create_directories(m.dir);
    if (!m.config_file.empty()) {
      std::ofstream out(fs::path(m.dir) / m.config_file);
      out << m.config_text;
      if (!out)
        throw std::runtime_error("cannot write " + (fs::path(m.dir) / m.config_file).string());
    }
    // A result left by an earlier attempt must not be mistaken for this one's.
    if (hosts_rank0) fs::remove(fs::path(m.dir) / m.result_file);
    if (m.world_size > 1 && m.master_addr.empty()) {
      trial.launch.master_addr = options_.host;
      trial.launch.master_port = pick_free_port();
    }
  } catch (const std::exception& e) {
    return fail_launch(m, e.what());
  }

  for (const auto& p : m.ranks) {
    const Slot& slot = options_.slots[static_cast<std::size_t>(p.slot)];
    util::SpawnOptions o;
    o.argv = m.argv;
    if (!o.argv.empty() && o.argv[0] == "@scaletune") o.argv[0] = options_.self_exe;
    o.unset_env = launcher_variables();
    o.env = m.env;
    o.env["RANK"] = std::to_string(p.rank);
    o.env["WORLD_SIZE"] = std::to_string(m.world_size);
    o.env["LOCAL_RANK"] = std::to_string(p.local_rank);
    o.env["LOCAL_WORLD_SIZE"] = std::to_string(m.ranks.size());
    if (m.world_size > 1) {
      o.env["MASTER_ADDR"] = trial.launch.master_addr;
      o.env["MASTER_PORT"] = std::to_string(trial.launch.master_port);
    }
    o.env["OMP_NUM_THREADS"] = std::to_string(m.threads);
    // Each rank sees exactly its own GPU (as cuda:0); CPU slots see none.
    o.env["CUDA_VISIBLE_DEVICES"] = slot.gpu >= 0 ? std::to_string(slot.gpu) : "";
    o.env["SCALETUNE_TRIAL_ID"] = std::to_string(m.trial);
    o.env["SCALETUNE_TRIAL_DIR"] = m.dir;
    o.cwd = m.dir;
    o.log_path = (fs::path(m.dir) / ("rank" + std::to_string(p.rank) + ".log")).string();
    try {
      RankProcess r;
      r.placement = p;
      r.log_path = o.log_path;
      r.process = util::ChildProcess::spawn(o);
      r.exited = open_pidfd(r.process.pid());
      trial.ranks.push_back(std::move(r));
    } catch (const util::SpawnError& e) {
      trial.ranks.clear();  // kills the ranks already started
      return fail_launch(m, e.what());
    }
  }
  for (const auto& p : m.ranks) slot_busy_[static_cast<std::size_t>(p.slot)] = true;
  trial.started = std::chrono::steady_clock::now();
  trial.last_sample = trial.started;
  spdlog::debug("trial {} attempt {}: started {} rank(s) on {}", m.trial, m.attempt, m.ranks.size(),
                options_.host);
  if (hosts_rank0) {
    send_(encode(Launched{m.trial, m.attempt, trial.launch.master_addr, trial.launch.master_port}));
  }
  trials_.emplace(key, std::move(trial));
}

void Agent::stop(const StopTrial& m) {
  auto it = trials_.find({m.trial, m.attempt});
  if (it == trials_.end()) return;  // already ended; its TrialEnded is on the way
  it->second.stop_requested = true;
  stop_ranks(it->second, m.grace_seconds, m.signal);
}

void Agent::stop_ranks(Trial& trial, double grace_seconds, int sig) {
  for (auto& r : trial.ranks)
    if (!r.exit) r.process.stop(std::chrono::duration<double>(grace_seconds), sig);
  // ChildProcess keeps the first stop's deadline; so does kill_at, taken after it (never earlier).
  if (!trial.kill_at)
    trial.kill_at = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(grace_seconds));
}

void Agent::shutdown(const Shutdown& m) {
  shutting_down_ = true;
  for (auto& [key, trial] : trials_) {
    trial.stop_requested = true;
    stop_ranks(trial, m.grace_seconds, m.signal);
  }
}

std::vector<int> Agent::wait_fds() const {
  std::vector<int> fds;
  for (const auto& [key, trial] : trials_)
    for (const auto& r : trial.ranks)
      if (!r.exit && r.exited.valid()) fds.push_back(r.exited.get());
  return fds;
}

std::chrono::microseconds Agent::poll_within() const {
  using std::chrono::microseconds;
  constexpr microseconds kNothingDue = std::chrono::hours(1);
  constexpr microseconds kWithoutPidfd = std::chrono::milliseconds(1);
  const auto now = std::chrono::steady_clock::now();
  auto due = now + kNothingDue;
  for (const auto& [key, trial] : trials_) {
    for (const auto& r : trial.ranks)
      if (!r.exit && !r.exited.valid()) due = std::min(due, now + kWithoutPidfd);
    due = std::min(
        due, trial.last_sample + std::chrono::duration_cast<microseconds>(
                                     std::chrono::duration<double>(options_.rss_sample_seconds)));
    if (!trial.timed_out && trial.launch.timeout_seconds > 0)
      due = std::min(
          due, trial.started + std::chrono::duration_cast<microseconds>(
                                   std::chrono::duration<double>(trial.launch.timeout_seconds)));
    if (trial.kill_at) due = std::min(due, *trial.kill_at);
  }
  return std::max(microseconds(0), std::chrono::duration_cast<microseconds>(due - now));
}

void Agent::poll() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Key> ended;
  for (auto& [key, trial] : trials_) {
    bool all_done = true;
    const bool sample = std::chrono::duration<double>(now - trial.last_sample).count() >=
                        options_.rss_sample_seconds;
    for (auto& r : trial.ranks) {
      if (!r.exit) {
        if (sample) trial.peak_rss = std::max(trial.peak_rss, resident_bytes(r.process.pid()));
        r.exit = r.process.poll();
        if (r.exit && !r.exit->success()) trial.failure_seen = true;
      }
      all_done = all_done && r.exit.has_value();
    }
    if (sample) trial.last_sample = now;
    // ChildProcess::poll() sent SIGKILL when the grace period ended; the pidfds show the rest.
    if (trial.kill_at && now >= *trial.kill_at) trial.kill_at.reset();
    if (all_done) {
      ended.push_back(key);
      continue;
    }
    const double elapsed = std::chrono::duration<double>(now - trial.started).count();
    if (!trial.timed_out && trial.launch.timeout_seconds > 0 &&
        elapsed > trial.launch.timeout_seconds) {
      trial.timed_out = true;
      spdlog::warn("trial {} attempt {}: timed out after {:.0f} s; stopping it", key.first,
                   key.second, elapsed);
      stop_ranks(trial, options_.timeout_grace_seconds, SIGTERM);
    }
    // One rank failed: the others would hang in their next collective; stop them.
    if (trial.failure_seen && !trial.peers_stopped) {
      trial.peers_stopped = true;
      stop_ranks(trial, options_.failure_grace_seconds, SIGTERM);
    }
  }
  for (const auto& key : ended) {
    auto it = trials_.find(key);
    finish(key, it->second);
    trials_.erase(it);
  }
  if (shutting_down_ && trials_.empty() && !finished_) {
    finished_ = true;
    send_(encode(Bye{}));
  }
}

void Agent::finish(const Key& key, Trial& trial) {
  TrialEnded m;
  m.trial = key.first;
  m.attempt = key.second;
  m.host = options_.host;
  m.timed_out = trial.timed_out;
  m.stop_requested = trial.stop_requested;
  m.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - trial.started).count();
  m.peak_rss_bytes = trial.peak_rss;
  m.host_memory_bytes = host_memory_bytes();
  bool hosts_rank0 = false;
  for (auto& r : trial.ranks) {
    m.ranks.push_back({r.placement.rank, r.exit->exited() ? r.exit->code : -1, r.exit->signal});
    slot_busy_[static_cast<std::size_t>(r.placement.slot)] = false;
    if (r.placement.rank == 0) {
      hosts_rank0 = true;
      m.log_path = r.log_path;
    }
  }
  if (m.log_path.empty() && !trial.ranks.empty()) m.log_path = trial.ranks.front().log_path;
  if (hosts_rank0) {
    const fs::path path = fs::path(trial.launch.dir) / trial.launch.result_file;
    std::ifstream in(path);
    if (in) {
      try {
        m.result = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        m.result_error = path.string() + " is not valid JSON: " + e.what();
      }
    }
  }
  spdlog::debug("trial {} attempt {}: ended on {} after {:.2f} s", m.trial, m.attempt, m.host,
                m.wall_seconds);
  send_(encode(m));
}

}  // namespace scaletune::sweep
