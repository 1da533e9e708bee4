// train_lora (trainer/lora/finetune.h): one explicit loop; the comments number its steps.
//
// Only the trainable tensors (the adapters, or every weight for method full) are handed to
// AdamW, so optimizer moments exist only for them and the frozen base gets no gradients.
#include "trainer/lora/finetune.h"

#include <unistd.h>

#include <torch/torch.h>
#include <torch/version.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "trainer/core/run_support.h"
#include "trainer/lm/data.h"
#include "trainer/lm/schedule.h"
#include "trainer/lora/instruct.h"
#include "trainer/lora/lora.h"

#ifdef SCALETUNE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace scaletune::trainer::lora {
namespace {
namespace F = torch::nn::functional;
using Clock = RunClock;

struct Tensors {
  torch::Tensor x, y, w;
};

Tensors to_tensors(const Batch& b, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kLong);
  Tensors t;
  // clone: on the CPU .to() would alias the batch's vectors, which may not outlive the tensors
  t.x = torch::from_blob(const_cast<std::int64_t*>(b.x.data()), {b.rows, b.cols}, opts)
            .clone()
            .to(device);
  t.y = torch::from_blob(const_cast<std::int64_t*>(b.y.data()), {b.rows, b.cols}, opts)
            .clone()
            .to(device);
  t.w = torch::from_blob(const_cast<float*>(b.w.data()), {b.rows, b.cols}, torch::kFloat32)
            .clone()
            .to(device);
  return t;
}

std::pair<torch::Tensor, torch::Tensor> masked_loss_sum(lm::Gpt& model, const Tensors& t) {
  return lora::masked_loss_sum(model, t.x, t.y, t.w);
}

// Mean response-token loss of `examples`.
double validation_loss(lm::Gpt& model, const std::vector<Encoded>& examples, std::int64_t batch,
                       int pad, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  double sum = 0, count = 0;
  std::vector<const Encoded*> chunk;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    chunk.push_back(&examples[i]);
    if (static_cast<std::int64_t>(chunk.size()) == batch || i + 1 == examples.size()) {
      auto [s, n] = masked_loss_sum(model, to_tensors(make_batch(chunk, pad), device));
      sum += s.item<double>();
      count += n.item<double>();
      chunk.clear();
    }
  }
  return sum / std::max(count, 1.0);
}

// Greedy answers to the prompts of `examples`: rows are right-padded and each extends at its
// own length (causal attention never looks at the padding after a row's last token).
std::vector<std::string> generate(lm::Gpt& model, const std::vector<const Encoded*>& ex,
                                  const Tokenizer& tok, std::int64_t max_new, std::int64_t context,
                                  const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const auto B = static_cast<std::int64_t>(ex.size());
  std::vector<std::int64_t> len(ex.size());
  std::int64_t width = 0;
  for (std::size_t b = 0; b < ex.size(); ++b) {
    len[b] = static_cast<std::int64_t>(ex[b]->prompt.size());
    width = std::max(width, len[b]);
  }
  width = std::min(context, width + max_new);
  auto buf = torch::full({B, width}, tok.end_of_text(), torch::kLong);
  auto* p = buf.data_ptr<std::int64_t>();
  for (std::size_t b = 0; b < ex.size(); ++b)
    std::copy(ex[b]->prompt.begin(), ex[b]->prompt.end(), p + static_cast<std::int64_t>(b) * width);
  std::vector<std::vector<int>> out(ex.size());
  std::vector<bool> done(ex.size(), false);
  for (std::int64_t k = 0; k < max_new; ++k) {
    std::int64_t cur = 0;
    for (std::size_t b = 0; b < ex.size(); ++b)
      if (!done[b]) cur = std::max(cur, len[b]);
    if (cur == 0) break;
    auto logits = model->forward(buf.narrow(1, 0, cur).to(device));  // (B, cur, V)
    auto idx = torch::tensor(len, torch::kLong).clamp_max(cur).sub(1).to(device);
    auto last = logits.index({torch::arange(B, idx.options()), idx});  // (B, V)
    auto next = last.argmax(-1).cpu();
    const auto* np = next.data_ptr<std::int64_t>();
    bool any = false;
    for (std::size_t b = 0; b < ex.size(); ++b) {
      if (done[b]) continue;
      const int t = static_cast<int>(np[b]);
      out[b].push_back(t);
      if (t == tok.end_of_text() || len[b] >= width) {
        done[b] = true;
        continue;
      }
      p[static_cast<std::int64_t>(b) * width + len[b]] = t;
      ++len[b];
      any = true;
    }
    if (!any) break;
  }
  std::vector<std::string> text;
  for (const auto& ids : out) text.push_back(tok.decode(ids));
  return text;
}

struct Accuracy {
  double overall = kNaN;
  std::map<std::string, std::pair<int, int>> per_task;  // correct, total
};

Accuracy exact_match(lm::Gpt& model, const std::vector<Encoded>& val, const LoraConfig& c,
                     const Tokenizer& tok, std::int64_t context, const torch::Device& device) {
  model->eval();
  Accuracy a;
  const auto n = std::min<std::size_t>(val.size(), static_cast<std::size_t>(c.eval.examples));
  int correct = 0;
  for (std::size_t first = 0; first < n;) {
    std::vector<const Encoded*> chunk;
    for (; first < n &&
           static_cast<std::int64_t>(chunk.size()) < std::max<std::int64_t>(c.train.batch_size, 64);
         ++first)
      chunk.push_back(&val[first]);
    const auto answers = generate(model, chunk, tok, c.eval.max_new_tokens, context, device);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const bool ok = answers[i] == chunk[i]->answer;
      correct += ok;
      auto& t = a.per_task[chunk[i]->task];
      t.first += ok;
      t.second += 1;
    }
  }
  if (n > 0) a.overall = static_cast<double>(correct) / static_cast<double>(n);
  return a;
}

LoraRunEnd run(const LoraRun& req, TrainResult& result, Clock::time_point process_start) {
  const LoraConfig& cfg = req.config;
  LoraRunEnd end;
  const bool lora = cfg.lora.method == "lora";

  // 1. Threads and device.
  const int threads = thread_count(req.config.threads, req.env);
  at::set_num_threads(threads);
  const bool cuda_available = torch::cuda::is_available();
  if (cfg.device == "cuda" && !cuda_available)
    throw RunFailure(RunStatus::kFailed, "device cuda requested but no CUDA device is available");
  const bool cuda = cfg.device == "cuda" || (cfg.device == "auto" && cuda_available);
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
#ifdef SCALETUNE_WITH_CUDA
  if (cuda) c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif

  // 2. Base model and tokenizer.
  BaseModel base;
  try {
    base = load_base(cfg.base.path);
  } catch (const std::runtime_error& e) {
    throw RunFailure(RunStatus::kFailed, e.what());
  }
  const std::string tok_name = cfg.base.tokenizer == "auto" ? base.tokenizer : cfg.base.tokenizer;
  const Tokenizer tok =
      tok_name == "gpt2"
          ? Tokenizer::gpt2(cfg.base.bpe_dir.empty() ? base.bpe_dir : cfg.base.bpe_dir)
          : Tokenizer::bytes();
  const LmShape& shape = base.shape;
  if (tok.vocab() > shape.vocab)
    throw RunFailure(RunStatus::kFailed,
                     "the " + tok.name() + " tokenizer has " + std::to_string(tok.vocab()) +
                         " tokens but the base model only " + std::to_string(shape.vocab));
  lm::Gpt model = base.model;

  // 3. Data.
  const Dataset data = load_dataset(cfg.data, tok, shape.context);
  if (data.dropped > 0)
    spdlog::warn("{} examples are longer than the context of {} tokens and were dropped",
                 data.dropped, shape.context);

  // 4. Adapters (or every weight) and the optimizer over exactly them.
  torch::manual_seed(static_cast<std::uint64_t>(cfg.seed));
  LoraAdapters adapters{nullptr};
  std::vector<torch::Tensor> trainable;
  if (lora) {
    LoraAdapterConfig ac = cfg.lora;
    if (!cfg.lora.load.empty()) {  // the adapter file's settings decide its shapes
      const auto stored = read_adapter_config(cfg.lora.load);
      ac.rank = stored.rank;
      ac.alpha = stored.alpha;
      ac.targets = stored.targets;
    }
    adapters = LoraAdapters(shape, ac);
    if (!cfg.lora.load.empty()) load_adapters(cfg.lora.load, adapters);
    attach(model, adapters);
    adapters->to(device);
    trainable = adapters->parameters();
    if (adapters->trainable() != lora_trainable_params(shape, ac.rank, ac.targets))
      throw std::logic_error("LoRA parameter formula disagrees with the adapters");
  } else {
    trainable = model->parameters();
  }
  model->to(device);
  const LmParamCount count = lm_param_count(shape);
  std::int64_t n_trainable = 0;
  for (const auto& t : trainable) n_trainable += t.numel();
  const double fraction = static_cast<double>(n_trainable) / static_cast<double>(count.total);
  spdlog::info("base {} ({} params, {} x {}, context {}); {} on {} examples ({} held out)",
               base.description, count.total, shape.n_layer, shape.d_model, shape.context,
               lora ? "LoRA r=" + std::to_string(cfg.lora.rank) : std::string("full fine-tuning"),
               data.train.size(), data.val.size());
  spdlog::info("trainable parameters {} of {} ({:.3f}%)", n_trainable, count.total,
               100.0 * fraction);
  result.metrics["params_total"] = static_cast<double>(count.total);
  result.metrics["trainable_params"] = static_cast<double>(n_trainable);
  result.metrics["trainable_fraction"] = fraction;
  result.metrics["train_examples"] = static_cast<double>(data.train.size());
  result.metrics["val_examples"] = static_cast<double>(data.val.size());
  result.metrics["dropped_examples"] = static_cast<double>(data.dropped);
  result.info["base"] = base.description;
  result.info["tokenizer"] = tok.name();
  result.info["data"] = data.description;
  result.info["device"] = cuda ? "cuda" : "cpu";
  result.info["threads"] = std::to_string(threads);
  result.info["torch"] = TORCH_VERSION;
  const int pad = tok.end_of_text();
  const std::int64_t B = cfg.train.batch_size;

  auto evaluate_all = [&](const char* suffix) {
    model->eval();
    const double loss = validation_loss(model, data.val, B, pad, device);
    const Accuracy acc = exact_match(model, data.val, cfg, tok, shape.context, device);
    result.metrics[std::string("val_loss") + suffix] = loss;
    result.metrics[std::string("accuracy") + suffix] = acc.overall;
    for (const auto& [task, ct] : acc.per_task)
      result.metrics["accuracy" + std::string(suffix) + "." + task] =
          static_cast<double>(ct.first) / ct.second;
    model->train();
    return std::make_pair(loss, acc.overall);
  };

  // 5. The base (with zero-initialised adapters: exactly the base) before fine-tuning.
  double start_loss = kNaN;  // the divergence reference: the base's validation loss if known
  if (cfg.eval.before) {
    const auto [loss, acc] = evaluate_all("_before");
    start_loss = loss;
    spdlog::info("before: val loss {:.4f} | exact match {:.1f}%", loss, 100.0 * acc);
  }

  // 6. The loop: epochs of seeded shuffles of the training examples.
  torch::optim::AdamW optimizer(trainable, torch::optim::AdamWOptions(cfg.optim.lr)
                                               .betas({cfg.optim.beta1, cfg.optim.beta2})
                                               .eps(cfg.optim.eps)
                                               .weight_decay(cfg.optim.weight_decay));
  std::vector<std::size_t> order(data.train.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(lm::mix_seed(static_cast<std::uint64_t>(cfg.seed), 2));
  std::size_t cursor = order.size();
  const double fwd = lm_forward_flops_per_token(shape);
  const double flops_per_token =
      lora ? 2.0 * fwd + 6.0 * static_cast<double>(n_trainable) : lm_flops_per_token(shape);
  double tokens = 0, response_tokens = 0, train_loss = kNaN, lr = 0;
  // Divergence is judged on a running mean of the training loss (EMA over ~10 steps, bias-
  // corrected): with small batches of few response tokens one batch's loss can jump by nats.
  constexpr double kEmaDecay = 0.9;
  double ema = 0, ema_weight = 0;
  double val_loss = kNaN;
  model->train();
  const auto loop_start = Clock::now();
  std::int64_t step = 0;
  for (; step < cfg.train.steps; ++step) {
    if (req.stop && req.stop->load() != 0) {
      end.interrupted = true;
      result.reason =
          "stopped at step " + std::to_string(step) + " of " + std::to_string(cfg.train.steps);
      break;
    }
    lr = lm::learning_rate(cfg.optim, step, cfg.train.steps);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    if (cfg.lora.dropout > 0 && lora)
      torch::manual_seed(
          lm::mix_seed(static_cast<std::uint64_t>(cfg.seed), 3, static_cast<std::uint64_t>(step)));
    // 6a. The batch.
    std::vector<const Encoded*> rows;
    while (static_cast<std::int64_t>(rows.size()) < B) {
      if (cursor == order.size()) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      rows.push_back(&data.train[order[cursor++]]);
    }
    const Batch batch = make_batch(rows, pad);
    // 6b. Masked loss over response tokens, backward into the trainable tensors only.
    optimizer.zero_grad();
    auto [sum, n] = masked_loss_sum(model, to_tensors(batch, device));
    auto loss = sum / n.clamp_min(1.0);
    loss.backward();
    train_loss = loss.item<double>();
    if (!std::isfinite(start_loss)) start_loss = train_loss;  // no evaluation before: step 1
    ema = kEmaDecay * ema + (1 - kEmaDecay) * train_loss;
    ema_weight = kEmaDecay * ema_weight + (1 - kEmaDecay);
    const double mean_loss = ema / ema_weight;
    if (!std::isfinite(train_loss) || mean_loss > start_loss + cfg.train.max_loss_increase)
      throw RunFailure(RunStatus::kDiverged,
                       fmt::format("training loss {:.4g} (running mean {:.4g}, start {:.4g}) at "
                                   "step {} (lr {:.3g})",
                                   train_loss, mean_loss, start_loss, step + 1, lr));
    // 6c. Clip, AdamW.
    double norm = 0;
    if (cfg.optim.grad_clip > 0)
      norm = torch::nn::utils::clip_grad_norm_(trainable, cfg.optim.grad_clip);
    optimizer.step();
    tokens += static_cast<double>(batch.rows * batch.cols);
    response_tokens += n.item<double>();
    // 6d. Log, evaluate, curve.
    const std::int64_t done = step + 1;
    const bool last = done == cfg.train.steps;
    const bool eval_now = !last && cfg.eval.every > 0 && done % cfg.eval.every == 0;
    if (eval_now) {
      model->eval();
      val_loss = validation_loss(model, data.val, B, pad, device);
      model->train();
    }
    if (done % cfg.log_every == 0 || step == 0 || last || eval_now) {
      spdlog::info("step {}/{} | loss {:.4f}{} | lr {:.2e} | grad norm {:.3f} | {:.0f} ms/step",
                   done, cfg.train.steps, train_loss,
                   eval_now ? fmt::format(" | val {:.4f}", val_loss) : std::string(), lr, norm,
                   1000.0 * seconds_since(loop_start) / static_cast<double>(done));
      CurvePoint p;
      p.step = done;
      p.tokens = tokens;
      p.flops = tokens * flops_per_token;
      p.wall_seconds = seconds_since(process_start);
      p.train_loss = train_loss;
      p.val_loss = eval_now ? val_loss : kNaN;
      result.curve.push_back(p);
    }
  }
  const double loop_seconds = seconds_since(loop_start);

  // 7. After.
  const auto [loss_after, acc_after] = evaluate_all("");
  if (!result.curve.empty()) result.curve.back().val_loss = loss_after;
  spdlog::info("after: val loss {:.4f} | exact match {:.1f}%{}", loss_after, 100.0 * acc_after,
               cfg.eval.before
                   ? fmt::format(" (before {:.1f}%)", 100.0 * result.metrics["accuracy_before"])
                   : std::string());

  // 8. Export: the adapter alone, then merged into the base (checked against base + adapter).
  std::filesystem::create_directories(req.out_dir);
  if (lora && cfg.output.adapter) {
    save_adapters(req.out_dir + "/adapter.safetensors", adapters, cfg.lora, base.description);
    result.info["adapter"] = req.out_dir + "/adapter.safetensors";
  }
  if (cfg.output.merged || cfg.output.checkpoint) {
    model->eval();
    torch::NoGradGuard no_grad;
    std::vector<const Encoded*> probe = {&data.val.front()};
    auto x = to_tensors(make_batch(probe, pad), device).x;
    auto with_adapter = model->forward(x);
    if (lora) merge(model, adapters);
    result.metrics["merge_max_abs_diff"] =
        (model->forward(x) - with_adapter).abs().max().item<double>();
    if (cfg.output.merged) {
      export_safetensors(req.out_dir + "/model.safetensors", model, base);
      result.info["model"] = req.out_dir + "/model.safetensors";
    }
    if (cfg.output.checkpoint) {
      export_checkpoint(req.out_dir + "/model.pt", model, base);
      result.info["checkpoint"] = req.out_dir + "/model.pt";
    }
  }

  // 9. Result.
  result.metrics["val_loss"] = loss_after;
  result.metrics["accuracy"] = acc_after;
  result.metrics["train_loss"] = train_loss;
  result.metrics["final_lr"] = lr;
  result.metrics["steps"] = static_cast<double>(step);
  result.metrics["response_tokens"] = response_tokens;
  result.metrics["flops_per_token"] = flops_per_token;
  result.metrics["tokens_per_second"] = tokens / std::max(loop_seconds, 1e-9);
  result.metrics["peak_rss_bytes"] = peak_rss_bytes();
  result.metrics["peak_memory_bytes"] = peak_rss_bytes();
#ifdef SCALETUNE_WITH_CUDA
  if (cuda)
    result.metrics["peak_memory_bytes"] = static_cast<double>(
        c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].peak);
#endif
  result.cost.tokens = tokens;
  result.cost.flops = tokens * flops_per_token;
  result.cost.flops_6n = tokens * (lora ? 4.0 * static_cast<double>(count.total) + 6.0 * n_trainable
                                        : 6.0 * static_cast<double>(count.total));
  result.cost.wall_seconds = seconds_since(process_start);
  result.cost.device_seconds = result.cost.wall_seconds;
  return end;
}

}  // namespace

LoraRunEnd train_lora(const LoraRun& req) {
  const auto process_start = Clock::now();
  TrainResult result;
  result.task = "lora";
  result.objective = "val_loss";
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  result.info["host"] = host;
  LoraRunEnd end;
  auto fail = [&](RunStatus status, const std::string& reason) {
    result.status = status;
    result.reason = reason;
    result.cost.wall_seconds = seconds_since(process_start);
    result.cost.device_seconds = result.cost.wall_seconds;
    spdlog::error("run {}: {}", to_string(status), reason);
  };
  try {
    end = run(req, result, process_start);
  } catch (const RunFailure& e) {
    fail(e.status, e.what());
  } catch (const c10::OutOfMemoryError& e) {
    fail(RunStatus::kOom, std::string("out of memory: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    fail(RunStatus::kOom, "out of memory: host allocation failed (std::bad_alloc)");
  } catch (const c10::Error& e) {
    fail(RunStatus::kFailed, e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(RunStatus::kFailed, e.what());
  }
  end.result = std::move(result);
  return end;
}

}  // namespace scaletune::trainer::lora
