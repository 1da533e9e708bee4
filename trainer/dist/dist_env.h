// Where a rank of a data-parallel run learns its place: rank, world size, local rank and the
// rendezvous store, read from the launcher's environment variables.
//
//   torchrun / manual   RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   OpenMPI (mpirun)    OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//   Slurm (srun)        SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
//   file rendezvous     SCALETUNE_STORE_FILE (a c10d FileStore path shared by all ranks)
//
// Torch-free: the CLI reads it to name per-rank log files before the plugin is loaded. Only
// `main` files read the process environment; they pass it here as a map.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace scaletune::trainer::dist {

using EnvMap = std::map<std::string, std::string>;

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;  // TCPStore host (rank 0 serves it)
  int master_port = 0;
  std::string store_file;   // FileStore path, used when no MASTER_ADDR is given
  std::string launcher;     // "torchrun", "openmpi", "slurm" or "single"
  std::string gloo_ifname;  // GLOO_SOCKET_IFNAME
};

// Every environment variable parse_dist_env looks at (the CLI copies these into the map).
const std::vector<std::string>& dist_env_variables();

// Throws std::invalid_argument naming the variable when a value is malformed or inconsistent
// (a rank outside the world, several ranks without a store to meet at).
DistEnv parse_dist_env(const EnvMap& env);

}  // namespace scaletune::trainer::dist
