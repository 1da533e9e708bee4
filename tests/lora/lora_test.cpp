// The LibTorch half of LoRA: adapter counts against the formula, zero-initialised adapters leave
// the base's output unchanged, merged weights compute base + adapter, adapters save and load,
// the loss mask keeps prompt tokens out of loss and gradients, the frozen base stays bit-for-bit
// unchanged while adapters train, and base models round-trip through our safetensors, our
// checkpoint archive and Hugging Face GPT-2 files (HF names, Conv1D layout, config.json).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process.h"
#include "trainer/lm/safetensors.h"
#include "trainer/lora/lora.h"

namespace scaletune::trainer::lora {
namespace {

LmShape small_shape(bool bias = true) {
  LmShape s;
  s.n_layer = 2, s.d_model = 32, s.n_head = 4, s.d_ff = 64, s.context = 16, s.vocab = 50;
  s.bias = bias;
  return s;
}

LoraAdapterConfig adapter_config(std::vector<std::string> targets, double dropout = 0.0) {
  LoraAdapterConfig c;
  c.rank = 4;
  c.alpha = 8;
  c.dropout = dropout;
  c.targets = std::move(targets);
  return c;
}

torch::Tensor tokens(std::int64_t B, std::int64_t T, std::int64_t vocab) {
  return torch::randint(vocab, {B, T}, torch::kLong);
}

void randomize_b(LoraAdapters& adapters) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, layer] : adapters->layers()) layer->B.normal_(0.0, 0.05);
}

TEST(LoraAdapters, CountMatchesFormulaForEveryTargetSet) {
  const LmShape s = small_shape();
  for (const auto& targets : std::vector<std::vector<std::string>>{
           {"qkv"}, {"attn_out"}, {"mlp"}, {"qkv", "mlp"}, {"qkv", "attn_out", "mlp"}}) {
    LoraAdapters a(s, adapter_config(targets));
    EXPECT_EQ(a->trainable(), lora_trainable_params(s, 4, targets));
  }
}

TEST(LoraAdapters, ZeroInitialisedAdaptersLeaveTheOutputUnchanged) {
  torch::manual_seed(1);
  lm::Gpt model(small_shape(), 0.0);
  model->eval();
  const auto x = tokens(3, 16, 50);
  const auto before = model->forward(x);
  LoraAdapters a(small_shape(), adapter_config({"qkv", "attn_out", "mlp"}));
  attach(model, a);
  EXPECT_TRUE(torch::equal(model->forward(x), before));
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(LoraAdapters, MergedModelEqualsBasePlusAdapter) {
  for (bool bias : {true, false}) {
    torch::manual_seed(2);
    lm::Gpt model(small_shape(bias), 0.0);
    model->eval();
    LoraAdapters a(small_shape(bias), adapter_config({"qkv", "attn_out", "mlp"}));
    randomize_b(a);
    const auto x = tokens(2, 16, 50);
    const auto base_out = model->forward(x);
    attach(model, a);
    a->eval();
    const auto adapted = model->forward(x);
    EXPECT_GT((adapted - base_out).abs().max().item<double>(), 1e-3);  // the adapter matters
    merge(model, a);
    const auto merged = model->forward(x);
    EXPECT_LT((merged - adapted).abs().max().item<double>(), 1e-5);
    // and W' = W + (alpha / r) B A exactly for one layer
    auto& w = linear_of(model, "h.1.mlp.c_fc")->weight;
    EXPECT_EQ(w.size(0), 64);
  }
}

TEST(LoraAdapters, SaveAndLoadRoundTrip) {
  torch::manual_seed(3);
  const std::string dir = test::temp_dir("lora_adapter_io");
  const auto cfg = adapter_config({"qkv", "mlp"});
  LoraAdapters a(small_shape(), cfg);
  randomize_b(a);
  save_adapters(dir + "/adapter.safetensors", a, cfg, "base-x");
  const auto stored = read_adapter_config(dir + "/adapter.safetensors");
  EXPECT_EQ(stored.rank, 4);
  EXPECT_DOUBLE_EQ(stored.alpha, 8);
  EXPECT_EQ(stored.targets, cfg.targets);
  const auto names = lm::read_safetensors(dir + "/adapter.safetensors");
  EXPECT_TRUE(names.count("base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"));
  EXPECT_EQ(names.at("base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight").shape,
            (std::vector<std::int64_t>{64, 4}));
  torch::manual_seed(99);
  LoraAdapters b(small_shape(), cfg);
  load_adapters(dir + "/adapter.safetensors", b);
  for (const auto& [name, layer] : a->layers()) {
    EXPECT_TRUE(torch::equal(layer->A, b->layers().at(name)->A)) << name;
    EXPECT_TRUE(torch::equal(layer->B, b->layers().at(name)->B)) << name;
  }
  LoraAdapters wrong(small_shape(), adapter_config({"qkv"}));
  EXPECT_THROW(load_adapters(dir + "/adapter.safetensors", wrong), std::runtime_error);
}

TEST(LoraTraining, PromptTokensContributeNothing) {
  torch::manual_seed(4);
  lm::Gpt model(small_shape(), 0.0);
  LoraAdapters a(small_shape(), adapter_config({"qkv", "attn_out", "mlp"}));
  randomize_b(a);
  attach(model, a);
  const auto x = tokens(2, 16, 50);
  auto y = tokens(2, 16, 50);
  auto w = torch::zeros({2, 16});
  w.narrow(1, 10, 6).fill_(1.0);  // the response: the last 6 positions
  auto grads = [&](const torch::Tensor& targets) {
    for (auto& p : a->parameters()) p.mutable_grad() = torch::Tensor();
    auto [sum, n] = masked_loss_sum(model, x, targets, w);
    (sum / n).backward();
    std::vector<torch::Tensor> g;
    for (auto& p : a->parameters()) g.push_back(p.grad().clone());
    return std::make_pair((sum / n).item<double>(), g);
  };
  const auto [loss1, g1] = grads(y);
  auto y2 = y.clone();
  y2.narrow(1, 0, 10).random_(50);  // change every prompt target
  const auto [loss2, g2] = grads(y2);
  EXPECT_EQ(loss1, loss2);
  for (std::size_t i = 0; i < g1.size(); ++i) EXPECT_TRUE(torch::equal(g1[i], g2[i]));
  auto y3 = y.clone();
  y3.narrow(1, 12, 1).random_(50);  // a response target matters
  EXPECT_NE(grads(y3).first, loss1);
}

TEST(LoraTraining, BaseWeightsStayBitForBitWhileAdaptersLearn) {
  torch::manual_seed(5);
  lm::Gpt model(small_shape(), 0.0);
  std::vector<torch::Tensor> before;
  for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
  LoraAdapters a(small_shape(), adapter_config({"qkv", "attn_out", "mlp"}, 0.1));
  attach(model, a);
  torch::optim::AdamW opt(a->parameters(), torch::optim::AdamWOptions(3e-3));
  const auto x = tokens(4, 16, 50), y = tokens(4, 16, 50);
  const auto w = torch::ones({4, 16});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    auto [sum, n] = masked_loss_sum(model, x, y, w);  // memorise random targets
    auto loss = sum / n;
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first - 0.15);  // (a frozen N(0, 0.02) tied embedding caps the logits)
  std::size_t i = 0;
  for (const auto& p : model->parameters()) {
    EXPECT_TRUE(torch::equal(p, before[i++]));
    EXPECT_FALSE(p.grad().defined());
  }
}

void expect_same_model(lm::Gpt& a, lm::Gpt& b, std::int64_t vocab) {
  a->eval();
  b->eval();
  const auto x = tokens(2, 8, vocab);
  EXPECT_LT((a->forward(x) - b->forward(x)).abs().max().item<double>(), 1e-6);
}

TEST(LoraBase, OurSafetensorsAndCheckpointRoundTrip) {
  torch::manual_seed(6);
  const std::string dir = test::temp_dir("lora_base_ours");
  BaseModel base;
  base.shape = small_shape(false);
  base.model = lm::Gpt(base.shape, 0.0);
  base.tokenizer = "byte";
  export_safetensors(dir + "/model.safetensors", base.model, base);
  export_checkpoint(dir + "/model.pt", base.model, base);
  for (const std::string& path : {dir, dir + "/model.safetensors", dir + "/model.pt"}) {
    BaseModel loaded = load_base(path);
    EXPECT_EQ(loaded.shape.n_layer, 2) << path;
    EXPECT_EQ(loaded.shape.d_ff, 64) << path;
    EXPECT_EQ(loaded.shape.vocab, 50) << path;
    EXPECT_FALSE(loaded.shape.bias) << path;
    EXPECT_EQ(loaded.tokenizer, "byte");
    expect_same_model(base.model, loaded.model, 50);
  }
  EXPECT_THROW(load_base(dir + "/nothing"), std::runtime_error);
}

TEST(LoraBase, HuggingFaceGpt2SafetensorsRoundTrip) {
  torch::manual_seed(7);
  const std::string dir = test::temp_dir("lora_base_hf");
  const LmShape s = small_shape();
  lm::Gpt model(s, 0.0);
  // What GPT2LMHeadModel.save_pretrained writes: HF names with the transformer. prefix, Conv1D
  // weights as (in, out), causal-mask buffers, a tied lm_head, config.json, no metadata.
  std::map<std::string, lm::FloatTensor> tensors;
  for (auto& item : model->named_parameters()) {
    bool transposed = false;
    const std::string name = "transformer." + lm::gpt2_name(item.key(), &transposed);
    auto t = (transposed ? item.value().t() : item.value()).contiguous();
    lm::FloatTensor ft;
    ft.shape.assign(t.sizes().begin(), t.sizes().end());
    ft.values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    tensors[name] = ft;
  }
  tensors["transformer.h.0.attn.bias"] = {{1, 1, 16, 16}, std::vector<float>(256, 1.0f)};
  tensors["lm_head.weight"] = tensors["transformer.wte.weight"];
  lm::write_safetensors(dir + "/model.safetensors", tensors);
  std::ofstream(dir + "/config.json")
      << R"({"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 16,
            "vocab_size": 50, "n_inner": null})";
  EXPECT_EQ(tensors.at("transformer.h.0.mlp.c_fc.weight").shape,
            (std::vector<std::int64_t>{32, 64}));  // Conv1D layout
  BaseModel loaded = load_base(dir);
  EXPECT_EQ(loaded.kind, "hf-gpt2");
  EXPECT_EQ(loaded.tokenizer, "gpt2");
  EXPECT_EQ(loaded.shape.context, 16);
  EXPECT_EQ(loaded.shape.n_head, 4);
  expect_same_model(model, loaded.model, 50);
  // ... and back out with our exporter: the same HF names (without the prefix) and layout.
  export_safetensors(dir + "/again.safetensors", loaded.model, loaded);
  const auto again = lm::read_safetensors(dir + "/again.safetensors");
  for (const auto& [name, t] : again) {
    const auto& orig = tensors.at("transformer." + name);
    EXPECT_EQ(t.shape, orig.shape) << name;
    EXPECT_EQ(t.values, orig.values) << name;
  }
}

}  // namespace
}  // namespace scaletune::trainer::lora
