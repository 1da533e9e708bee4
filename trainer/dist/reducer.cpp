// GradReducer (trainer/dist/reducer.h): buckets, accumulator post-hooks, in-order launches.
#include "trainer/dist/reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <utility>

namespace scaletune::trainer::dist {
namespace {

// Runs after a parameter's AccumulateGrad has added this backward's gradient into .grad (in
// place: with grad mode off AccumulateGrad does grad += new, so the flat buffer stays the
// gradient's storage). The signature is the same in LibTorch 1.13 and 2.x; 2.x adds a virtual
// compiled_args with a default, used only by compiled autograd.
class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  explicit ReadyHook(std::function<void()> ready) : ready_(std::move(ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    ready_();
    return outputs;
  }

 private:
  std::function<void()> ready_;
};

}  // namespace

GradReducer::GradReducer(Communicator& comm, const std::vector<at::Tensor>& params, at::Tensor flat,
                         std::int64_t bucket_bytes, bool overlap)
    : comm_(comm), overlap_(overlap) {
  TORCH_CHECK(flat.dim() == 1 && flat.is_contiguous(), "the gradient buffer must be flat");
  TORCH_CHECK(!params.empty(), "no parameters to reduce");
  const auto* base = static_cast<const char*>(flat.data_ptr());
  const std::int64_t item = flat.element_size();
  const std::int64_t cap = std::max<std::int64_t>(1, bucket_bytes / item);
  std::int64_t offset = 0, bucket_begin = 0;
  bucket_of_.reserve(params.size());
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    TORCH_CHECK(g.defined() && g.is_contiguous() &&
                    static_cast<const char*>(g.data_ptr()) == base + offset * item,
                "parameter gradients must be views into the flat buffer in ready order");
    if (offset > bucket_begin && offset + g.numel() - bucket_begin > cap) {
      buckets_.emplace_back();
      buckets_.back().view = flat.narrow(0, bucket_begin, offset - bucket_begin);
      bucket_begin = offset;
    }
    bucket_of_.push_back(buckets_.size());
    offset += g.numel();
  }
  TORCH_CHECK(offset <= flat.numel(), "gradients run past the flat buffer");
  buckets_.emplace_back();
  buckets_.back().view = flat.narrow(0, bucket_begin, flat.numel() - bucket_begin);
  for (const std::size_t b : bucket_of_) ++buckets_[b].params;
  param_ready_.assign(params.size(), 0);

  if (!overlap_) return;
  accumulators_.reserve(params.size());
  hook_keys_.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    // The variable holds its accumulator weakly and the graph drops it after each backward:
    // keep it, or the next forward makes a fresh one without the hook.
    auto acc = torch::autograd::impl::grad_accumulator(params[i]);
    TORCH_CHECK(acc, "parameter ", i, " is not a leaf that requires grad");
    hook_keys_.push_back(
        acc->add_post_hook(std::make_unique<ReadyHook>([this, i] { on_ready(i); })));
    accumulators_.push_back(std::move(acc));
  }
}

GradReducer::~GradReducer() {
  for (std::size_t i = 0; i < accumulators_.size(); ++i)
    accumulators_[i]->del_post_hook(hook_keys_[i]);
  // Collectives still in flight write into memory the caller owns; let them land.
  for (auto& b : buckets_) {
    if (!b.pending) continue;
    try {
      b.pending->wait();
    } catch (const std::exception&) {  // a failed step already reported its error
    }
  }
}

void GradReducer::arm() {
  TORCH_CHECK(!armed_, "GradReducer::arm twice without finish");
  armed_ = true;
  overlapped_ = 0;
}

void GradReducer::on_ready(std::size_t param) {
  if (!armed_ || param_ready_[param]) return;  // not the communicating micro-step
  param_ready_[param] = 1;
  if (++buckets_[bucket_of_[param]].ready == buckets_[bucket_of_[param]].params)
    launch_ready_in_order();
}

void GradReducer::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].params) {
    Bucket& b = buckets_[next_launch_++];
    b.pending = comm_.start_allreduce_sum(b.view);
    ++overlapped_;
  }
}

void GradReducer::finish() {
  TORCH_CHECK(armed_, "GradReducer::finish without arm");
  for (; next_launch_ < buckets_.size(); ++next_launch_) {
    Bucket& b = buckets_[next_launch_];
    b.pending = comm_.start_allreduce_sum(b.view);
  }
  for (auto& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    b.ready = 0;
  }
  std::fill(param_ready_.begin(), param_ready_.end(), 0);
  next_launch_ = 0;
  armed_ = false;
}

}  // namespace scaletune::trainer::dist
