// GradReducer (trainer/dist/reducer.h) with two Gloo ranks as two threads of this process (a
// FileStore rendezvous): the reduced buffer is the sum of both ranks' gradients, buckets start
// during backward when overlap is on (and only then), micro-steps before the armed one do not
// communicate, and parameters without a gradient (on one rank or on both) neither deadlock nor
// change the sum.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <thread>

#include "trainer/dist/comm.h"
#include "trainer/dist/reducer.h"

namespace scaletune::trainer::dist {
namespace {

// Four layers applied in order, so backward produces gradients last layer first; `skip` is
// never used, and `rank1_only` scales the second layer's output on rank 1 only.
struct Net {
  std::vector<torch::Tensor> weights;  // registration order
  torch::Tensor skip, rank1_only;
  torch::Tensor flat;  // gradients in ready order, then 2 extra slots

  // Own generators: the two rank threads must not share the global one.
  explicit Net(bool flat_grads) {
    auto gen = at::detail::createCPUGenerator(7);
    for (int i = 0; i < 4; ++i)
      weights.push_back(torch::randn({24, 24}, gen).mul_(0.3).requires_grad_());
    skip = torch::randn({5}, gen).requires_grad_();
    rank1_only = torch::randn({24}, gen).requires_grad_();
    if (!flat_grads) return;
    flat = torch::zeros({numel() + 2});
    std::int64_t offset = 0;
    for (auto& p : ready_order()) {
      p.mutable_grad() = flat.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
    }
  }
  // The order backward produces the gradients: the last layer's first; `skip` last.
  std::vector<torch::Tensor> ready_order() const {
    return {weights[3], weights[2], rank1_only, weights[1], weights[0], skip};
  }
  std::int64_t numel() const {
    std::int64_t n = 0;
    for (const auto& p : ready_order()) n += p.numel();
    return n;
  }
  torch::Tensor loss(int rank, int micro) const {
    auto x = torch::randn({3, 24}, at::detail::createCPUGenerator(100 + 10 * rank + micro));
    for (std::size_t i = 0; i < weights.size(); ++i) {
      x = torch::tanh(torch::matmul(x, weights[i]));
      if (rank == 1 && i == 1) x = x * rank1_only;
    }
    return x.pow(2).sum();
  }
  // This rank's gradients of the whole step (all micro-steps), flat in ready order.
  torch::Tensor local_grads(int rank, int micros) const {
    auto params = ready_order();
    for (auto& p : params) p.mutable_grad() = torch::zeros_like(p);
    for (int m = 0; m < micros; ++m) loss(rank, m).backward();
    std::vector<torch::Tensor> parts;
    for (auto& p : params) parts.push_back(p.grad().reshape({-1}).clone());
    return torch::cat(parts);
  }
};

struct RankOutcome {
  torch::Tensor reduced, after_first_micro;
  std::size_t buckets = 0, overlapped = 0;
  std::string error;
};

RankOutcome run_rank(int rank, const std::string& store, bool overlap, int micros,
                     std::int64_t bucket_bytes) {
  RankOutcome out;
  try {
    DistEnv env;
    env.rank = rank;
    env.world_size = 2;
    env.store_file = store;
    auto comm = connect(env, false, std::chrono::seconds(60));
    Net net(true);
    GradReducer reducer(*comm, net.ready_order(), net.flat, bucket_bytes, overlap);
    out.buckets = reducer.bucket_count();
    for (int step = 0; step < 2; ++step) {  // a second step: hooks and counters reset
      net.flat.zero_();
      for (int m = 0; m < micros; ++m) {
        if (m + 1 == micros) {
          net.flat.narrow(0, net.numel(), 2).fill_(rank + 1.0);  // the extra slots
          reducer.arm();
        }
        net.loss(rank, m).backward();
        if (m == 0) out.after_first_micro = net.flat.narrow(0, 0, net.numel()).clone();
      }
      reducer.finish();
      out.overlapped = reducer.overlapped_last_step();
    }
    out.reduced = net.flat.clone();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

std::pair<RankOutcome, RankOutcome> run_both(const std::string& name, bool overlap, int micros,
                                             std::int64_t bucket_bytes) {
  const auto dir = std::filesystem::temp_directory_path() / ("scaletune_reducer_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string store = (dir / "store").string();
  RankOutcome r0, r1;
  std::thread t1([&] { r1 = run_rank(1, store, overlap, micros, bucket_bytes); });
  r0 = run_rank(0, store, overlap, micros, bucket_bytes);
  t1.join();
  return {std::move(r0), std::move(r1)};
}

TEST(GradReducer, SumsBothRanksGradientsOverlappedWithBackward) {
  const Net reference(false);
  for (const int micros : {1, 3}) {
    const auto want = reference.local_grads(0, micros) + reference.local_grads(1, micros);
    const auto [r0, r1] = run_both("overlap", /*overlap=*/true, micros, 24 * 24 * 4);
    ASSERT_EQ(r0.error, "");
    ASSERT_EQ(r1.error, "");
    EXPECT_EQ(r0.buckets, 6u);  // one per parameter: each is too large to share with the next
    for (const auto* r : {&r0, &r1}) {
      const auto grads = r->reduced.narrow(0, 0, reference.numel());
      EXPECT_LT((grads - want).abs().max().item<double>(), 1e-5) << "micros " << micros;
      EXPECT_DOUBLE_EQ(r->reduced[-1].item<double>(), 3.0);  // extra slots: 1 + 2
      EXPECT_DOUBLE_EQ(r->reduced[-2].item<double>(), 3.0);
    }
    EXPECT_TRUE(torch::equal(r0.reduced, r1.reduced));  // identical on both ranks
    // Rank 1 uses every parameter but skip, so its buckets up to the last started in backward.
    EXPECT_EQ(r1.overlapped, 5u);
    // Rank 0 never produces rank1_only's gradient: its buckets before that one overlapped.
    EXPECT_EQ(r0.overlapped, 2u);
    if (micros > 1) {  // the first micro-step accumulated locally, without communicating
      const Net local(false);
      EXPECT_TRUE(torch::allclose(r0.after_first_micro, local.local_grads(0, 1)));
      EXPECT_TRUE(torch::allclose(r1.after_first_micro, local.local_grads(1, 1)));
    }
  }
}

TEST(GradReducer, OverlapOffGivesTheSameBitsAfterBackward) {
  const auto [on0, on1] = run_both("on", true, 2, 24 * 24 * 4);
  const auto [off0, off1] = run_both("off", false, 2, 24 * 24 * 4);
  ASSERT_EQ(on0.error + on1.error + off0.error + off1.error, "");
  EXPECT_EQ(off0.overlapped + off1.overlapped, 0u);
  EXPECT_TRUE(torch::equal(on0.reduced, off0.reduced));
  EXPECT_TRUE(torch::equal(on1.reduced, off1.reduced));
}

TEST(GradReducer, OneBucketWhenTheCapHoldsEverything) {
  const auto [r0, r1] = run_both("one", true, 1, 25 << 20);
  ASSERT_EQ(r0.error + r1.error, "");
  EXPECT_EQ(r0.buckets, 1u);
  EXPECT_EQ(r1.overlapped, 0u);  // skip never gets a gradient: the one bucket waits for finish
  EXPECT_TRUE(torch::equal(r0.reduced, r1.reduced));
}

TEST(GradReducer, RejectsGradientsOutsideTheFlatBuffer) {
  auto comm = make_local_communicator();
  Net net(true);
  auto params = net.ready_order();
  std::swap(params[0], params[1]);  // not in the buffer's order
  EXPECT_THROW(GradReducer(*comm, params, net.flat, 1 << 20, true), c10::Error);
}

}  // namespace
}  // namespace scaletune::trainer::dist
