#include "trainer/dist/dist_env.h"

#include <stdexcept>

namespace scaletune::trainer::dist {
namespace {

int int_var(const EnvMap& env, const std::string& key, int fallback) {
  auto it = env.find(key);
  if (it == env.end() || it->second.empty()) return fallback;
  try {
    std::size_t used = 0;
    const int v = std::stoi(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing characters");
    return v;
  } catch (const std::exception&) {
    throw std::invalid_argument("environment variable " + key + "='" + it->second +
                                "' is not an integer");
  }
}

std::string str_var(const EnvMap& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

}  // namespace

const std::vector<std::string>& dist_env_variables() {
  static const std::vector<std::string> vars = {"RANK",
                                                "WORLD_SIZE",
                                                "LOCAL_RANK",
                                                "MASTER_ADDR",
                                                "MASTER_PORT",
                                                "OMPI_COMM_WORLD_RANK",
                                                "OMPI_COMM_WORLD_SIZE",
                                                "OMPI_COMM_WORLD_LOCAL_RANK",
                                                "SLURM_PROCID",
                                                "SLURM_NTASKS",
                                                "SLURM_LOCALID",
                                                "SCALETUNE_STORE_FILE",
                                                "GLOO_SOCKET_IFNAME",
                                                "OMP_NUM_THREADS"};
  return vars;
}

DistEnv parse_dist_env(const EnvMap& env) {
  DistEnv d;
  auto has = [&](const char* k) { return env.count(k) && !env.at(k).empty(); };
  if (has("WORLD_SIZE")) {
    d.launcher = "torchrun";
    d.rank = int_var(env, "RANK", 0);
    d.world_size = int_var(env, "WORLD_SIZE", 1);
    d.local_rank = int_var(env, "LOCAL_RANK", 0);
  } else if (has("OMPI_COMM_WORLD_SIZE")) {
    d.launcher = "openmpi";
    d.rank = int_var(env, "OMPI_COMM_WORLD_RANK", 0);
    d.world_size = int_var(env, "OMPI_COMM_WORLD_SIZE", 1);
    d.local_rank = int_var(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (has("SLURM_NTASKS") && has("SLURM_PROCID")) {
    d.launcher = "slurm";
    d.rank = int_var(env, "SLURM_PROCID", 0);
    d.world_size = int_var(env, "SLURM_NTASKS", 1);
    d.local_rank = int_var(env, "SLURM_LOCALID", 0);
  } else {
    d.launcher = "single";
  }
  d.master_addr = str_var(env, "MASTER_ADDR");
  d.master_port = int_var(env, "MASTER_PORT", 29500);
  d.store_file = str_var(env, "SCALETUNE_STORE_FILE");
  d.gloo_ifname = str_var(env, "GLOO_SOCKET_IFNAME");
  if (d.world_size < 1) throw std::invalid_argument("the world size must be at least 1");
  if (d.rank < 0 || d.rank >= d.world_size)
    throw std::invalid_argument("rank " + std::to_string(d.rank) + " is outside a world of " +
                                std::to_string(d.world_size) + " (" + d.launcher + ")");
  if (d.master_port <= 0 || d.master_port > 65535)
    throw std::invalid_argument("MASTER_PORT must be 1..65535");
  if (d.world_size > 1 && d.master_addr.empty() && d.store_file.empty())
    throw std::invalid_argument(
        "a run of " + std::to_string(d.world_size) +
        " ranks needs a rendezvous: set MASTER_ADDR (and MASTER_PORT) or SCALETUNE_STORE_FILE");
  return d;
}

}  // namespace scaletune::trainer::dist
