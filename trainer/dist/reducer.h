// The data-parallel gradient all-reduce, overlapped with backward the way PyTorch DDP's reducer
// does it: the gradients are views into one flat buffer, cut into buckets of whole parameters
// in the order backward produces them; a post-hook on each parameter's gradient accumulator
// counts the bucket's ready gradients, and a full bucket's async all-reduce starts while
// backward carries on with earlier layers.
//
//   GradReducer reducer(comm, params_in_ready_order, flat_grads, 25 << 20, /*overlap=*/true);
//   for each micro-step m:  if (m == last) reducer.arm();  loss.backward();
//   reducer.finish();       // flat_grads now holds the sum over ranks
//
// Only the armed (last) micro-step communicates; earlier ones just accumulate. Buckets start
// strictly in index order, the same on every rank, so the k-th collective of every rank is the
// same bucket. A parameter that gets no gradient in a step never fires its hook: finish() starts
// the buckets still waiting after backward returns, so unused parameters cannot deadlock (their
// gradient slots hold zeros, as DDP's find_unused_parameters does). With overlap off the same
// buckets all start in finish(): the same collectives on the same memory, so both paths give
// bit-identical results.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "trainer/dist/comm.h"

namespace torch::autograd {
struct Node;
}

namespace scaletune::trainer::dist {

class GradReducer {
 public:
  // `params` in the order backward produces their gradients (reverse registration order for a
  // sequential model); their .grad must be views into `flat` at increasing offsets, back to back
  // from offset 0. Elements of `flat` after the last gradient (e.g. loss statistics) travel in
  // the last bucket. Buckets close before they would exceed `bucket_bytes`; a larger parameter
  // gets a bucket of its own.
  GradReducer(Communicator& comm, const std::vector<at::Tensor>& params, at::Tensor flat,
              std::int64_t bucket_bytes, bool overlap);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before the backward pass whose gradients complete the step; every element of `flat` past
  // the gradients must already hold its final value.
  void arm();
  // After that backward: starts the buckets not started yet, waits for all of them.
  void finish();

  std::size_t bucket_count() const { return buckets_.size(); }
  // Buckets that started during the last armed backward (not in finish()).
  std::size_t overlapped_last_step() const { return overlapped_; }

 private:
  struct Bucket {
    at::Tensor view;
    std::int64_t params = 0, ready = 0;
    std::unique_ptr<PendingCollective> pending;
  };
  void on_ready(std::size_t param);  // called by the hooks
  void launch_ready_in_order();

  Communicator& comm_;
  bool overlap_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;  // parameter -> bucket
  std::vector<char> param_ready_;       // this step's hook already counted it
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // keeps the hooks alive
  std::vector<std::uintptr_t> hook_keys_;
  std::size_t next_launch_ = 0, overlapped_ = 0;
  bool armed_ = false;
};

}  // namespace scaletune::trainer::dist
