// train_lm (trainer/lm/train_lm.h): setup, the training loop, evaluation, checkpoints and the
// result. One explicit loop; the comments number its steps.
//
// Parameters, gradients and AdamW moments each live in one flat buffer (parameters are views
// into it), so the optimizer is a handful of vectorised ops, the gradient all-reduce runs in
// buckets of that buffer overlapped with backward (trainer/dist/reducer.h), and a checkpoint is
// four tensors. Two extra slots after the gradients carry the step's loss and the stop flag
// through the same all-reduce, so all ranks agree on divergence and on stopping at the same step
// without another collective.
#include <malloc.h>
#include <unistd.h>

#include <torch/torch.h>
#include <torch/version.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/core/run_support.h"
#include "trainer/dist/comm.h"
#include "trainer/dist/reducer.h"
#include "trainer/lm/data.h"
#include "trainer/lm/model.h"
#include "trainer/lm/safetensors.h"
#include "trainer/lm/schedule.h"
#include "trainer/lm/train_lm.h"

#ifdef SCALETUNE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace scaletune::trainer::lm {
namespace {

using Clock = RunClock;

// Writes a visitable config as JSON (the trainer may not include orchestrator/config).
struct JsonVisitor {
  nlohmann::json& out;
  struct Ignore {
    template <class X>
    Ignore& min(X) {
      return *this;
    }
    template <class X>
    Ignore& max(X) {
      return *this;
    }
    template <class X>
    Ignore& above(X) {
      return *this;
    }
    template <class X>
    Ignore& below(X) {
      return *this;
    }
    Ignore& one_of(std::initializer_list<const char*>) { return *this; }
  };
  template <class T>
  Ignore field(const char* key, T& value, const char*) {
    if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
      out[key] = value;
    } else {
      nlohmann::json sub = nlohmann::json::object();
      JsonVisitor v{sub};
      value.visit(v);
      out[key] = std::move(sub);
    }
    return {};
  }
};

nlohmann::json config_json(const LmConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  JsonVisitor v{j};
  const_cast<LmConfig&>(c).visit(v);
  return j;
}

// What a checkpoint must agree on to be continued bit-for-bit.
nlohmann::json resume_key(const LmConfig& c, int world) {
  nlohmann::json j = config_json(c);
  for (const char* volatile_key : {"log_every", "checkpoint", "eval", "device", "peak_flops"})
    j.erase(volatile_key);
  j["world_size"] = world;
  return j;
}

// bf16 autocast on CUDA for the forward pass (the API moved in LibTorch 2.4).
class Autocast {
 public:
  explicit Autocast(bool on) : on_(on) {
#ifdef SCALETUNE_WITH_CUDA
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
#endif
  }
  ~Autocast() {
#ifdef SCALETUNE_WITH_CUDA
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
#endif
  }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_;
};

// The model's parameters in one flat buffer, laid out in reverse registration order: the order
// backward produces their gradients, so each all-reduce bucket (trainer/dist/reducer.h) is one
// contiguous range that fills while backward runs. Checkpoints keep the canonical order
// (decayed matrices first, then the rest, each in registration order; trainer/lora reads it).
struct FlatState {
  torch::Tensor params, grads_and_stats, grads, exp_avg, exp_avg_sq, scratch;
  std::int64_t n = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> decay_ranges;  // (offset, length), merged
  std::vector<std::pair<std::int64_t, std::int64_t>> canonical;     // checkpoint order
  std::vector<torch::Tensor> ready_order;                           // parameters, flat order
};
constexpr std::int64_t kStatSlots = 2;  // [loss, stop requests] after the gradients

FlatState flatten(Gpt& model, const torch::Device& device) {
  FlatState f;
  auto named = model->named_parameters();
  std::vector<std::pair<std::string, torch::Tensor>> order;
  for (auto& item : named) order.emplace_back(item.key(), item.value());
  std::reverse(order.begin(), order.end());
  for (auto& [name, p] : order) f.n += p.numel();
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  f.params = torch::empty({f.n}, opts);
  f.grads_and_stats = torch::zeros({f.n + kStatSlots}, opts);
  f.grads = f.grads_and_stats.narrow(0, 0, f.n);
  f.exp_avg = torch::zeros({f.n}, opts);
  f.exp_avg_sq = torch::zeros({f.n}, opts);
  f.scratch = torch::empty({f.n}, opts);
  std::map<std::string, std::int64_t> offset_of;
  std::int64_t offset = 0;
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : order) {
    auto view = f.params.narrow(0, offset, p.numel()).view(p.sizes());
    view.copy_(p);
    p.set_data(view);
    p.mutable_grad() = f.grads.narrow(0, offset, p.numel()).view(p.sizes());
    if (decays(name)) {
      if (!f.decay_ranges.empty() &&
          f.decay_ranges.back().first + f.decay_ranges.back().second == offset)
        f.decay_ranges.back().second += p.numel();
      else
        f.decay_ranges.emplace_back(offset, p.numel());
    }
    offset_of[name] = offset;
    f.ready_order.push_back(p);
    offset += p.numel();
  }
  for (const bool decayed : {true, false})
    for (auto& item : named)
      if (decays(item.key()) == decayed)
        f.canonical.emplace_back(offset_of.at(item.key()), item.value().numel());
  return f;
}

// A flat state tensor in the checkpoint's canonical order, and back.
torch::Tensor to_canonical(const FlatState& f, const torch::Tensor& flat) {
  std::vector<torch::Tensor> parts;
  for (const auto& [offset, length] : f.canonical) parts.push_back(flat.narrow(0, offset, length));
  return torch::cat(parts).cpu();
}
void from_canonical(const FlatState& f, const torch::Tensor& canonical, torch::Tensor& flat) {
  std::int64_t at = 0;
  for (const auto& [offset, length] : f.canonical) {
    flat.narrow(0, offset, length).copy_(canonical.narrow(0, at, length));
    at += length;
  }
}

// AdamW (Loshchilov & Hutter 2019) over the flat buffers, the same arithmetic as
// torch.optim.AdamW: decoupled decay, bias-corrected moments.
void adamw_step(FlatState& f, const LmOptimConfig& o, double lr, std::int64_t t) {
  torch::NoGradGuard no_grad;
  if (o.weight_decay > 0)
    for (const auto& [offset, length] : f.decay_ranges)
      f.params.narrow(0, offset, length).mul_(1.0 - lr * o.weight_decay);
  f.exp_avg.lerp_(f.grads, 1.0 - o.beta1);
  f.exp_avg_sq.mul_(o.beta2).addcmul_(f.grads, f.grads, 1.0 - o.beta2);
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
  at::sqrt_out(f.scratch, f.exp_avg_sq);
  f.scratch.div_(std::sqrt(bc2)).add_(o.eps);
  f.params.addcdiv_(f.exp_avg, f.scratch, -lr / bc1);
}

// Copies windows [start, start + T + 1) of `tokens` into inputs/targets (B, T) int64.
void fill_batch(const TokenBuffer& tokens, const std::vector<std::size_t>& starts, std::int64_t T,
                torch::Tensor& x, torch::Tensor& y) {
  auto* xp = x.data_ptr<std::int64_t>();
  auto* yp = y.data_ptr<std::int64_t>();
  const std::uint16_t* data = tokens.data();
  for (std::size_t b = 0; b < starts.size(); ++b) {
    const std::uint16_t* w = data + starts[b];
    for (std::int64_t t = 0; t < T; ++t) {
      xp[static_cast<std::int64_t>(b) * T + t] = w[t];
      yp[static_cast<std::int64_t>(b) * T + t] = w[t + 1];
    }
  }
}

struct Checkpoint {
  std::int64_t step = 0;
  nlohmann::json meta;  // curve, first loss, elapsed seconds, resume key
};

void save_checkpoint(const std::string& path, const FlatState& f, const nlohmann::json& meta) {
  write_checkpoint(path, {to_canonical(f, f.params), to_canonical(f, f.exp_avg),
                          to_canonical(f, f.exp_avg_sq), meta});
}

nlohmann::json load_checkpoint(const std::string& path, FlatState& f) {
  const CheckpointArchive a = read_checkpoint(path);
  if (a.params.numel() != f.n || a.exp_avg.numel() != f.n || a.exp_avg_sq.numel() != f.n)
    throw RunFailure(RunStatus::kFailed, path + " holds a model of another size");
  torch::NoGradGuard no_grad;
  from_canonical(f, a.params, f.params);
  from_canonical(f, a.exp_avg, f.exp_avg);
  from_canonical(f, a.exp_avg_sq, f.exp_avg_sq);
  return a.meta;
}

void export_safetensors(const std::string& path, Gpt& model, const nlohmann::json& config) {
  std::map<std::string, FloatTensor> tensors;
  for (auto& item : model->named_parameters()) {
    bool transposed = false;
    const std::string name = gpt2_name(item.key(), &transposed);
    auto t = item.value().detach().to(torch::kCPU, torch::kFloat32);
    if (transposed) t = t.t();
    t = t.contiguous();
    FloatTensor ft;
    ft.shape.assign(t.sizes().begin(), t.sizes().end());
    ft.values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    tensors[name] = std::move(ft);
  }
  write_safetensors(path, tensors,
                    {{"format", "pt"}, {"layout", "gpt2"}, {"config", config.dump()}});
}

LmRunEnd run(const LmRun& req, TrainResult& result, Clock::time_point process_start) {
  const LmConfig& cfg = req.config;
  LmRunEnd end;

  // 1. Threads, device, ranks.
  const int threads = thread_count(req.config.threads, req.env);
  at::set_num_threads(threads);
  // LibTorch's CPU tensors come from glibc malloc. Its default gives blocks over a sliding
  // threshold straight back to the kernel (munmap, heap trim), so every step page-faults its
  // activations in again: ~1550 faults per step on the tiny GPT of bench/lm (8% of the CPU
  // time). Keeping freed memory in the heap cut them to ~20; peak RSS is what a step needs.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest dynamic threshold
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const bool cuda_available = torch::cuda::is_available();
  if (cfg.device == "cuda" && !cuda_available)
    throw RunFailure(RunStatus::kFailed, "device cuda requested but no CUDA device is available");
  const bool cuda = cfg.device == "cuda" || (cfg.device == "auto" && cuda_available);
  if (cfg.dtype == "bf16" && !cuda)
    throw RunFailure(RunStatus::kFailed, "dtype bf16 (autocast) needs a CUDA device; use fp32");
  const bool bf16 = cuda && cfg.dtype != "fp32";
  dist::DistEnv denv;
  try {
    denv = dist::parse_dist_env(req.env);
  } catch (const std::invalid_argument& e) {
    throw RunFailure(RunStatus::kFailed, e.what());
  }
  torch::Device device =
      cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(denv.local_rank))
           : torch::Device(torch::kCPU);
  auto comm = dist::connect(denv, cuda);
  const int rank = comm->rank(), world = comm->size();
  end.rank = rank;
  const bool lead = rank == 0;

  // 2. Data and shapes.
  Corpus corpus = load_corpus(cfg.data);
  const LmShape shape = cfg.shape(corpus.vocab);
  if (shape.vocab < corpus.vocab)
    throw RunFailure(RunStatus::kFailed, "model.vocab " + std::to_string(shape.vocab) +
                                             " is smaller than the data's vocabulary " +
                                             std::to_string(corpus.vocab));
  const std::int64_t T = shape.context, B = cfg.train.batch_size;
  if (B % world != 0)
    throw RunFailure(RunStatus::kFailed, "train.batch_size " + std::to_string(B) +
                                             " is not divisible by the " + std::to_string(world) +
                                             " ranks");
  const std::int64_t per_rank = B / world;
  const std::int64_t micro = cfg.train.micro_batch > 0 ? cfg.train.micro_batch : per_rank;
  if (per_rank % micro != 0)
    throw RunFailure(RunStatus::kFailed, "each of the " + std::to_string(world) + " ranks gets " +
                                             std::to_string(per_rank) +
                                             " sequences, not a multiple of " +
                                             "train.micro_batch " + std::to_string(micro));
  const std::int64_t accumulation = per_rank / micro;
  const RunPlan plan = plan_run(cfg, shape);
  const LmParamCount count = lm_param_count(shape);
  DataOrder order(corpus.train.size(), T, mix_seed(static_cast<std::uint64_t>(cfg.seed), 2));
  const std::int64_t val_windows = std::min<std::int64_t>(
      std::max<std::int64_t>(1, cfg.eval.tokens / T),
      static_cast<std::int64_t>((corpus.val.size() - 1) / static_cast<std::size_t>(T)));
  if (corpus.val.size() < static_cast<std::size_t>(T + 1) || val_windows < 1)
    throw RunFailure(RunStatus::kFailed, "the validation split has " +
                                             std::to_string(corpus.val.size()) +
                                             " tokens, fewer than model.context + 1");

  // 3. Model and optimizer state (same seed on every rank; rank 0's copy is broadcast anyway).
  torch::manual_seed(static_cast<std::uint64_t>(cfg.seed));
  Gpt model(shape, cfg.model.dropout);
  model->to(device);
  FlatState flat = flatten(model, device);
  if (count.total != flat.n)
    throw std::logic_error("parameter formula disagrees with the model");  // broken invariant
  comm->broadcast(flat.params, 0);

  const std::string ckpt_path = req.out_dir + "/checkpoint.pt";
  std::int64_t start_step = 0;
  double first_loss = kNaN, elapsed_before = 0;
  const nlohmann::json key = resume_key(cfg, world);
  if (req.resume && std::filesystem::exists(ckpt_path)) {
    const nlohmann::json meta = load_checkpoint(ckpt_path, flat);
    if (meta.at("key") != key)
      throw RunFailure(RunStatus::kFailed,
                       ckpt_path +
                           " was written by a different config or rank count; "
                           "resume with the same settings or use another --out");
    start_step = meta.at("step").get<std::int64_t>();
    first_loss = meta.at("first_loss").get<double>();
    elapsed_before = meta.at("elapsed_seconds").get<double>();
    result.curve = TrainResult::from_json(meta.at("partial")).curve;
    if (lead) spdlog::info("resuming from {} at step {}", ckpt_path, start_step);
  } else if (req.resume && lead) {
    spdlog::info("no checkpoint at {}; starting from step 0", ckpt_path);
  }

  result.metrics["params_total"] = static_cast<double>(count.total);
  result.metrics["params_non_embedding"] = static_cast<double>(count.non_embedding);
  result.metrics["params_embedding"] = static_cast<double>(count.embedding);
  result.metrics["flops_per_token"] = plan.flops_per_token;
  result.metrics["flops_6n_per_token"] = flops_6n_per_token(static_cast<double>(count.total));
  result.metrics["batch_tokens"] = static_cast<double>(plan.tokens_per_step);
  result.metrics["steps"] = static_cast<double>(plan.steps);
  result.metrics["entropy_floor"] = corpus.entropy_floor;
  result.metrics["memory_estimate_bytes"] = lm_memory_bytes(shape, micro, bf16 ? 2 : 4);
  result.info["device"] = cuda ? "cuda" : "cpu";
  result.info["backend"] = comm->backend();
  result.info["threads"] = std::to_string(threads);
  result.info["data"] = corpus.description;
  result.info["launcher"] = denv.launcher;
  result.info["torch"] = TORCH_VERSION;
  result.cost.devices = world;
  if (lead)
    spdlog::info(
        "GPT {} params ({} non-embedding), {} steps of {} tokens, {} rank(s) x {} "
        "thread(s), {} micro-batches of {}",
        count.total, count.non_embedding, plan.steps, plan.tokens_per_step, world, threads,
        accumulation, micro);

  // Validation: windows k = rank, rank + world, ... of the held-out split; mean token loss.
  auto evaluate = [&]() {
    torch::NoGradGuard no_grad;
    model->eval();
    std::vector<std::size_t> starts;
    double sum = 0, n = 0;
    auto run_batch = [&] {
      auto x = torch::empty({static_cast<std::int64_t>(starts.size()), T}, torch::kLong);
      auto y = torch::empty_like(x);
      fill_batch(corpus.val, starts, T, x, y);
      Autocast ac(bf16);
      sum += model->loss(x.to(device), y.to(device)).item<double>() * starts.size();
      n += static_cast<double>(starts.size());
      starts.clear();
    };
    for (std::int64_t k = rank; k < val_windows; k += world) {
      starts.push_back(static_cast<std::size_t>(k * T));
      if (static_cast<std::int64_t>(starts.size()) == micro) run_batch();
    }
    if (!starts.empty()) run_batch();
    model->train();
    auto totals = torch::tensor({sum, n}, torch::kFloat64).to(device);
    comm->allreduce_sum(totals);
    totals = totals.cpu();
    return totals[0].item<double>() / totals[1].item<double>();
  };

  auto checkpoint_meta = [&](std::int64_t next_step) {
    nlohmann::json meta;
    meta["key"] = key;
    meta["step"] = next_step;
    meta["first_loss"] = first_loss;
    meta["elapsed_seconds"] = elapsed_before + seconds_since(process_start);
    meta["partial"] = result.to_json();
    return meta;
  };
  auto checkpoint = [&](std::int64_t next_step) {
    if (lead) save_checkpoint(ckpt_path, flat, checkpoint_meta(next_step));
    comm->barrier();  // nobody exits before the checkpoint is on disk
  };

  // Gradient buckets (more than one rank): started by backward hooks, or after backward.
  std::unique_ptr<dist::GradReducer> reducer;
  if (world > 1) {
    reducer = std::make_unique<dist::GradReducer>(
        *comm, flat.ready_order, flat.grads_and_stats,
        static_cast<std::int64_t>(cfg.dist.bucket_mb * (1 << 20)), cfg.dist.overlap);
    if (lead)
      spdlog::info("gradient all-reduce: {} bucket(s) of <= {} MB, {}", reducer->bucket_count(),
                   cfg.dist.bucket_mb,
                   cfg.dist.overlap ? "overlapped with backward" : "after backward");
  }

  // 4. The loop.
  model->train();
  auto x = torch::empty({micro, T}, torch::kLong), y = torch::empty({micro, T}, torch::kLong);
  std::vector<std::size_t> starts(static_cast<std::size_t>(micro));
  const double loss_scale = static_cast<double>(micro) / static_cast<double>(B);
  auto stats = flat.grads_and_stats.narrow(0, flat.n, kStatSlots);
  double train_loss = kNaN, val_loss = kNaN, lr = 0;
  const auto loop_start = Clock::now();
  auto log_mark = loop_start;
  std::int64_t log_mark_step = start_step;
  for (std::int64_t step = start_step; step < plan.steps; ++step) {
    lr = learning_rate(cfg.optim, step, plan.steps);
    if (cfg.model.dropout > 0)  // dropout masks are a function of (seed, step, rank)
      torch::manual_seed(mix_seed(static_cast<std::uint64_t>(cfg.seed), 3,
                                  static_cast<std::uint64_t>(step * world + rank)));
    // 4a. Forward/backward over this rank's share of the global batch. The last micro-step's
    // backward all-reduces (4b): gradients (summed = the global mean), loss, stop requests.
    flat.grads_and_stats.zero_();
    torch::Tensor loss_sum = torch::zeros({}, flat.params.options());
    for (std::int64_t m = 0; m < accumulation; ++m) {
      const std::int64_t first = step * B + rank * per_rank + m * micro;  // global sequence ids
      for (std::int64_t j = 0; j < micro; ++j)
        starts[static_cast<std::size_t>(j)] = order.window_start(first + j);
      fill_batch(corpus.train, starts, T, x, y);
      torch::Tensor loss;
      {
        Autocast ac(bf16);
        loss = model->loss(x.to(device, /*non_blocking=*/true), y.to(device, true));
      }
      loss_sum += loss.detach().to(torch::kFloat32) * loss_scale;
      if (m + 1 == accumulation) {  // the statistics travel in the last bucket
        stats[0].copy_(loss_sum);
        if (req.stop && req.stop->load() != 0) stats[1].fill_(1.0);
        if (reducer) reducer->arm();
      }
      (loss * loss_scale).backward();
    }
    // 4b. Wait for the buckets (starting those unused parameters held back).
    if (reducer) reducer->finish();
    const auto host_stats = stats.cpu();
    train_loss = host_stats[0].item<double>();
    const bool stop = host_stats[1].item<double>() > 0;
    // 4c. Divergence, seen identically by every rank.
    if (step == 0 || !std::isfinite(first_loss)) first_loss = train_loss;
    if (!std::isfinite(train_loss))
      throw RunFailure(RunStatus::kDiverged, "training loss became " + std::to_string(train_loss) +
                                                 " at step " + std::to_string(step) + " (lr " +
                                                 std::to_string(lr) + ")");
    if (train_loss > first_loss + cfg.train.max_loss_increase)
      throw RunFailure(
          RunStatus::kDiverged,
          "training loss " + std::to_string(train_loss) + " at step " + std::to_string(step) +
              " exceeds the first loss " + std::to_string(first_loss) + " by more than " +
              std::to_string(cfg.train.max_loss_increase) + " (lr " + std::to_string(lr) + ")");
    // 4d. Clip the global norm (without a host sync), then AdamW.
    auto norm = flat.grads.norm();
    if (cfg.optim.grad_clip > 0)
      flat.grads.mul_(torch::clamp_max(cfg.optim.grad_clip / (norm + 1e-6), 1.0));
    adamw_step(flat, cfg.optim, lr, step + 1);

    // 4e. Log, evaluate, checkpoint, stop.
    const std::int64_t done = step + 1;
    const bool last = done == plan.steps;
    const bool eval_now = last || (cfg.eval.every > 0 && done % cfg.eval.every == 0);
    // A curve point at step 1 and every log_every steps; a resumed run also logs its first step.
    const bool curve_now = last || eval_now || done % cfg.log_every == 0 || step == 0;
    const bool log_now = curve_now || step == start_step;
    if (eval_now) val_loss = evaluate();
    if (log_now) {
      const double dt = seconds_since(log_mark);
      const double tok_s =
          static_cast<double>((done - log_mark_step) * plan.tokens_per_step) / std::max(dt, 1e-9);
      if (lead)
        spdlog::info(
            "step {}/{} | loss {:.4f}{} | lr {:.2e} | grad norm {:.3f} | {:.0f} ms | "
            "{:.1f}k tok/s",
            done, plan.steps, train_loss,
            eval_now ? fmt::format(" | val {:.4f}", val_loss) : std::string(), lr,
            norm.item<double>(), 1000.0 * dt / static_cast<double>(done - log_mark_step),
            tok_s / 1000.0);
    }
    if (curve_now) {
      CurvePoint p;
      p.step = done;
      p.tokens = static_cast<double>(done * plan.tokens_per_step);
      p.flops = p.tokens * plan.flops_per_token;
      p.wall_seconds = elapsed_before + seconds_since(process_start);
      p.train_loss = train_loss;
      p.val_loss = eval_now ? val_loss : kNaN;
      result.curve.push_back(p);
    }
    if (log_now) {
      log_mark = Clock::now();
      log_mark_step = done;
    }
    if (stop && !last) {
      checkpoint(done);
      if (lead) spdlog::info("stop requested: checkpointed at step {} to {}", done, ckpt_path);
      end.interrupted = true;
      result.reason = "interrupted at step " + std::to_string(done) + " of " +
                      std::to_string(plan.steps) + "; resume with --resume";
      return end;
    }
    if (cfg.checkpoint.every > 0 && done % cfg.checkpoint.every == 0 && !last) checkpoint(done);
  }
  const double loop_seconds = seconds_since(loop_start);

  // 5. Replicas must be identical; measure it rather than assume it.
  double replica_diff = 0;
  if (world > 1) {
    auto reference = flat.params.clone();
    comm->broadcast(reference, 0);
    auto diff = (reference - flat.params).abs().max().reshape({1});
    comm->allreduce_sum(diff);
    replica_diff = diff.item<double>();
  }

  // 6. Result.
  const double trained = static_cast<double>((plan.steps - start_step) * plan.tokens_per_step);
  const double wall = elapsed_before + seconds_since(process_start);
  result.metrics["val_loss"] = val_loss;
  result.metrics["train_loss"] = train_loss;
  result.metrics["excess_loss"] = val_loss - corpus.entropy_floor;
  result.metrics["final_lr"] = lr;
  result.metrics["tokens_per_second"] = trained / std::max(loop_seconds, 1e-9);
  result.metrics["replica_max_abs_diff"] = replica_diff;
  result.metrics["peak_rss_bytes"] = peak_rss_bytes();
  double peak_flops = cfg.peak_flops;
#ifdef SCALETUNE_WITH_CUDA
  if (cuda) {
    const auto stats_cuda = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    result.metrics["peak_memory_bytes"] = static_cast<double>(stats_cuda.allocated_bytes[0].peak);
    const std::string name = at::cuda::getCurrentDeviceProperties()->name;
    result.info["gpu"] = name;
    if (peak_flops <= 0 &&
        (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos))
      peak_flops = 989e12;  // dense bf16 tensor-core peak of H100/H200 SXM
  }
#endif
  if (!cuda) result.metrics["peak_memory_bytes"] = peak_rss_bytes();
  result.metrics["mfu"] =
      peak_flops > 0 && bf16 == cuda
          ? result.metrics["tokens_per_second"] * plan.flops_per_token / (world * peak_flops)
          : kNaN;
  result.cost.tokens = plan.tokens;
  result.cost.flops = plan.tokens * plan.flops_per_token;
  result.cost.flops_6n = plan.tokens * flops_6n_per_token(static_cast<double>(count.total));
  result.metrics["flops_6n_non_embedding"] =
      plan.tokens * flops_6n_per_token(static_cast<double>(count.non_embedding));
  result.cost.wall_seconds = wall;
  result.cost.device_seconds = wall * world;
  if (lead && cfg.checkpoint.safetensors)
    export_safetensors(req.out_dir + "/model.safetensors", model, config_json(cfg));
  if (lead && std::filesystem::exists(ckpt_path)) std::filesystem::remove(ckpt_path);
  comm->barrier();
  return end;
}

}  // namespace

LmRunEnd train_lm(const LmRun& req) {
  const auto process_start = Clock::now();
  TrainResult result;
  result.task = "lm";
  result.objective = "val_loss";
  result.config = config_json(req.config);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  result.info["host"] = host;
  LmRunEnd end;
  auto fail = [&](RunStatus status, const std::string& reason) {
    result.status = status;
    result.reason = reason;
    result.cost.wall_seconds = seconds_since(process_start);
    result.cost.device_seconds = result.cost.wall_seconds * result.cost.devices;
    if (result.cost.tokens == 0 && !result.curve.empty()) {
      result.cost.tokens = result.curve.back().tokens;
      result.cost.flops = result.curve.back().flops;
    }
    spdlog::error("run {}: {}", to_string(status), reason);
  };
  try {
    std::filesystem::create_directories(req.out_dir);
    end = run(req, result, process_start);
  } catch (const RunFailure& e) {
    fail(e.status, e.what());
  } catch (const c10::OutOfMemoryError& e) {
    fail(RunStatus::kOom, std::string("out of memory: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    fail(RunStatus::kOom, "out of memory: host allocation failed (std::bad_alloc)");
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    const bool oom = what.find("out of memory") != std::string::npos ||
                     what.find("can't allocate memory") != std::string::npos;
    fail(oom ? RunStatus::kOom : RunStatus::kFailed, what);
  } catch (const std::exception& e) {
    fail(RunStatus::kFailed, e.what());
  }
  end.result = std::move(result);
  return end;
}

}  // namespace scaletune::trainer::lm
