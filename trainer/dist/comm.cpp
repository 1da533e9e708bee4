// c10d-backed Communicator (trainer/dist/comm.h). The only translation unit that includes the
// c10d headers.
#include "trainer/dist/comm.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <stdexcept>
#include <vector>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace scaletune::trainer::dist {
namespace {

class DoneCollective final : public PendingCollective {
 public:
  void wait() override {}
};

class WorkCollective final : public PendingCollective {
 public:
  explicit WorkCollective(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
  void wait() override { work_->wait(); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
};

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void allreduce_sum(at::Tensor&) override {}
  void allreduce_mean(at::Tensor&) override {}
  std::unique_ptr<PendingCollective> start_allreduce_sum(at::Tensor&) override {
    return std::make_unique<DoneCollective>();
  }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
};

// One flat buffer was 3x faster than one call per parameter (docs/platform.md); buckets of
// this size let Gloo's worker threads reduce several at once without tiny messages.
constexpr std::int64_t kBucketBytes = 16 << 20;

template <class Group>
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<Group> group, int rank, int size, std::string backend)
      : group_(std::move(group)), rank_(rank), size_(size), backend_(std::move(backend)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return backend_; }

  void allreduce_sum(at::Tensor& flat) override {
    TORCH_CHECK(flat.is_contiguous(), "allreduce needs a contiguous buffer");
    const std::int64_t n = flat.numel();
    const std::int64_t per_bucket = std::max<std::int64_t>(1, kBucketBytes / flat.element_size());
    std::vector<c10::intrusive_ptr<c10d::Work>> pending;
    std::vector<std::vector<at::Tensor>> buckets;
    buckets.reserve(static_cast<std::size_t>((n + per_bucket - 1) / per_bucket));
    for (std::int64_t begin = 0; begin < n; begin += per_bucket) {
      buckets.push_back({flat.narrow(0, begin, std::min(per_bucket, n - begin))});
      pending.push_back(group_->allreduce(buckets.back()));
    }
    for (auto& w : pending) w->wait();
  }

  void allreduce_mean(at::Tensor& flat) override {
    allreduce_sum(flat);
    flat.div_(static_cast<double>(size_));
  }

  std::unique_ptr<PendingCollective> start_allreduce_sum(at::Tensor& tensor) override {
    TORCH_CHECK(tensor.is_contiguous(), "allreduce needs a contiguous buffer");
    std::vector<at::Tensor> one{tensor};
    return std::make_unique<WorkCollective>(group_->allreduce(one));
  }

  void broadcast(at::Tensor& tensor, int root) override {
    std::vector<at::Tensor> t{tensor};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    group_->broadcast(t, opts)->wait();
  }

  void barrier() override { group_->barrier()->wait(); }

 private:
  c10::intrusive_ptr<Group> group_;
  int rank_;
  int size_;
  std::string backend_;
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

std::unique_ptr<Communicator> connect(const DistEnv& env, bool cuda,
                                      std::chrono::milliseconds timeout) {
  if (env.world_size == 1) return make_local_communicator();
  c10::intrusive_ptr<c10d::Store> store;
  if (!env.master_addr.empty()) {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(env.master_port);
    opts.isServer = env.rank == 0;
    opts.numWorkers = static_cast<std::size_t>(env.world_size);
    opts.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } else {
    store = c10::make_intrusive<c10d::FileStore>(env.store_file, env.world_size);
    store->setTimeout(timeout);
  }
  store = c10::make_intrusive<c10d::PrefixStore>("scaletune", store);

#ifdef USE_C10D_NCCL
  if (cuda) {
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts);
    return std::make_unique<C10dCommunicator<c10d::ProcessGroupNCCL>>(group, env.rank,
                                                                      env.world_size, "nccl");
  }
#endif
#ifdef USE_C10D_GLOO
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  const bool loopback =
      env.master_addr.empty() || env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
  if (!env.gloo_ifname.empty())
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(env.gloo_ifname));
  else if (loopback)
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
  return std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(group, env.rank, env.world_size,
                                                                    "gloo");
#else
  (void)cuda;
  throw std::runtime_error(
      "this LibTorch has no c10d Gloo backend (install libgloo-dev and rebuild) and no NCCL; "
      "it cannot run more than one rank");
#endif
}

}  // namespace scaletune::trainer::dist
