// The distributed context of a data-parallel trainer: which rank this is and the three
// collectives training needs. Small on purpose (the LM and PPO trainers use exactly this):
//
//   allreduce_mean(flat)   in place: every rank ends with the mean (sum, then divide, so all
//                          ranks hold bit-identical values); long buffers go in buckets
//   allreduce_sum(flat)    in place
//   start_allreduce_sum(t) in place, asynchronously: one message, returns a handle to wait on
//                          (GradReducer, trainer/dist/reducer.h, overlaps these with backward)
//   broadcast(t, root)     in place: every rank ends with root's values
//   barrier()
//
// Implementations: a single-process one (world of 1, every call a no-op) and c10d process
// groups (Gloo on CPU, NCCL on CUDA when LibTorch has it) that meet through a TCPStore or a
// FileStore. Errors (rendezvous timeouts, a peer that died) are exceptions from LibTorch.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string>

#include "trainer/dist/dist_env.h"

namespace scaletune::trainer::dist {

// A collective in flight. wait() returns once the tensor holds the result and rethrows the
// collective's error (a peer that died, a timeout).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "gloo", "nccl"
  virtual void allreduce_sum(at::Tensor& flat) = 0;
  virtual void allreduce_mean(at::Tensor& flat) = 0;
  // `tensor` must be contiguous and stay alive and untouched until wait() returns.
  virtual std::unique_ptr<PendingCollective> start_allreduce_sum(at::Tensor& tensor) = 0;
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;
};

// A world of one.
std::unique_ptr<Communicator> make_local_communicator();

// Joins the world `env` describes (a local communicator when the world has one rank). `cuda`
// picks NCCL (and the device local_rank) when LibTorch was built with it, Gloo otherwise.
std::unique_ptr<Communicator> connect(const DistEnv& env, bool cuda,
                                      std::chrono::milliseconds timeout = std::chrono::minutes(10));

}  // namespace scaletune::trainer::dist
