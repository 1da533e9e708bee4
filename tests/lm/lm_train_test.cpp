// The LibTorch GPT and train_lm: the parameter formula against the real module, attention
// against the explicit softmax(QK^T/sqrt(d))V, overfitting one batch, a whole run on the
// Markov source, bit-for-bit resume after a stop request, divergence and bad settings as data.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "trainer/lm/model.h"
#include "trainer/lm/safetensors.h"
#include "trainer/lm/train_lm.h"

namespace scaletune::trainer::lm {
namespace {

LmShape shape(bool rope, bool bias) {
  LmShape s;
  s.n_layer = 2, s.d_model = 32, s.n_head = 4, s.d_ff = 48, s.context = 16, s.vocab = 40;
  s.rope = rope;
  s.bias = bias;
  return s;
}

TEST(LmModel, ParameterFormulaMatchesTheModule) {
  for (bool rope : {false, true}) {
    for (bool bias : {false, true}) {
      Gpt model(shape(rope, bias), 0.0);
      std::int64_t n = 0;
      for (const auto& p : model->parameters()) n += p.numel();
      EXPECT_EQ(n, lm_param_count(shape(rope, bias)).total) << "rope " << rope << " bias " << bias;
    }
  }
}

TEST(LmModel, ParameterNamesFollowNanoGpt) {
  Gpt model(shape(false, true), 0.0);
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  for (const char* want : {"transformer.wte.weight", "transformer.wpe.weight",
                           "transformer.h.0.ln_1.weight", "transformer.h.1.attn.c_attn.weight",
                           "transformer.h.1.attn.c_proj.bias", "transformer.h.0.mlp.c_fc.weight",
                           "transformer.h.0.mlp.c_proj.weight", "transformer.ln_f.bias"})
    EXPECT_TRUE(names.count(want)) << want;
  EXPECT_TRUE(decays("transformer.h.0.mlp.c_fc.weight"));
  EXPECT_FALSE(decays("transformer.wte.weight"));
  EXPECT_FALSE(decays("transformer.h.0.ln_1.weight"));
  EXPECT_FALSE(decays("transformer.h.0.mlp.c_fc.bias"));
  bool transposed = false;
  EXPECT_EQ(gpt2_name("transformer.h.3.attn.c_attn.weight", &transposed), "h.3.attn.c_attn.weight");
  EXPECT_TRUE(transposed);
}

TEST(LmModel, ResidualProjectionsGetTheScaledInit) {
  torch::manual_seed(0);
  LmShape s = shape(false, true);
  s.n_layer = 8, s.d_model = 128, s.d_ff = 512;
  Gpt model(s, 0.0);
  auto& h0 = model->transformer->h[0]->as<BlockImpl>()->mlp->c_fc->weight;
  auto& p0 = model->transformer->h[0]->as<BlockImpl>()->mlp->c_proj->weight;
  EXPECT_NEAR(h0.std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(p0.std().item<double>(), 0.02 / std::sqrt(16.0), 0.0005);
}

TEST(LmModel, AttentionEqualsTheExplicitCausalSoftmax) {
  torch::manual_seed(1);
  const LmShape s = shape(false, true);
  CausalSelfAttention attn(s, 0.0);
  for (const std::int64_t T : {16, 5, 16}) {  // the cached mask follows the sequence length
    auto x = torch::randn({3, T, 32});
    auto got = attn->forward(x);
    // Explicit path: softmax(Q K^T / sqrt(hs) + causal mask) V, heads merged, projected.
    auto qkv = attn->c_attn->forward(x).split(32, 2);
    auto heads = [&](const torch::Tensor& t) { return t.view({3, T, 4, 8}).transpose(1, 2); };
    auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);
    auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0);
    auto mask = torch::ones({T, T}, torch::kBool).triu(1);
    scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
    auto y = torch::matmul(scores.softmax(-1), v).transpose(1, 2).reshape({3, T, 32});
    auto want = attn->c_proj->forward(y);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-5) << "T " << T;
  }
}

TEST(LmModel, OverfitsOneBatch) {
  torch::manual_seed(2);
  for (bool rope : {false, true}) {
    Gpt model(shape(rope, true), 0.0);
    auto x = torch::randint(0, 40, {4, 16}, torch::kLong);
    auto y = torch::randint(0, 40, {4, 16}, torch::kLong);
    torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0));
    double first = 0, last = 0;
    for (int i = 0; i < 200; ++i) {
      opt.zero_grad();
      auto loss = model->loss(x, y);
      loss.backward();
      opt.step();
      (i == 0 ? first : last) = loss.item<double>();
    }
    EXPECT_NEAR(first, std::log(40.0), 0.3);  // ln(vocab) at GPT-2 init
    EXPECT_LT(last, 0.05) << "rope " << rope;
  }
}

LmConfig tiny_config() {
  LmConfig c;
  c.threads = 1;
  c.seed = 3;
  c.model.n_layer = 2, c.model.d_model = 32, c.model.n_head = 4, c.model.context = 16;
  c.data.synthetic.vocab = 32;
  c.data.synthetic.branching = 2;
  c.data.synthetic.tokens = 20000;
  c.train.batch_size = 16;
  c.train.micro_batch = 8;  // two accumulation steps
  c.train.tokens = 16 * 16 * 100;
  c.optim.lr = 1e-2;
  c.eval.every = 50;
  c.eval.tokens = 1024;
  c.log_every = 1000;
  return c;
}

std::string out_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("scaletune_lm_" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

TEST(LmTrain, LearnsTheMarkovSourceAndAccountsForCompute) {
  const LmConfig c = tiny_config();
  const auto end = train_lm({c, out_dir("run"), false, {}, nullptr});
  const TrainResult& r = end.result;
  ASSERT_EQ(r.status, RunStatus::kOk) << r.reason;
  const double floor = r.metrics.at("entropy_floor");
  const double val = r.metrics.at("val_loss");
  EXPECT_GT(floor, 0.0);
  EXPECT_LT(floor, std::log(2.0) + 1e-9);
  EXPECT_LT(val, 0.5 * std::log(32.0));  // learned most of the structure ...
  EXPECT_GT(val, floor - 0.05);          // ... and cannot beat the entropy floor
  EXPECT_DOUBLE_EQ(r.metrics.at("excess_loss"), val - floor);
  EXPECT_EQ(r.cost.tokens, 16 * 16 * 100);
  EXPECT_DOUBLE_EQ(r.cost.flops, r.cost.tokens * r.metrics.at("flops_per_token"));
  EXPECT_DOUBLE_EQ(r.cost.flops_6n, 6 * r.cost.tokens * r.metrics.at("params_total"));
  EXPECT_EQ(r.metrics.at("params_total"), lm_param_count(c.shape(32)).total);
  ASSERT_EQ(r.curve.size(), 3u);  // step 1, evaluations at steps 50 and 100
  EXPECT_EQ(r.curve.front().step, 1);
  EXPECT_TRUE(std::isnan(r.curve.front().val_loss));
  EXPECT_EQ(r.curve[1].step, 50);
  EXPECT_TRUE(std::isfinite(r.curve[1].val_loss));
  EXPECT_EQ(r.curve.back().step, 100);
  EXPECT_DOUBLE_EQ(r.curve.back().val_loss, val);
  EXPECT_LT(r.curve.back().train_loss, r.curve.front().train_loss - 1.0);
  EXPECT_GT(r.metrics.at("tokens_per_second"), 0.0);
  EXPECT_GT(r.metrics.at("peak_memory_bytes"), 0.0);
}

std::map<std::string, FloatTensor> final_weights(LmConfig c, const std::string& dir,
                                                 const std::atomic<int>* stop, bool resume,
                                                 LmRunEnd* end) {
  c.checkpoint.safetensors = true;
  *end = train_lm({c, dir, resume, {}, stop});
  if (end->interrupted) return {};
  return read_safetensors(dir + "/model.safetensors");
}

TEST(LmTrain, ResumeAfterAStopRequestIsBitForBit) {
  for (double dropout : {0.0, 0.1}) {
    LmConfig c = tiny_config();
    c.model.dropout = dropout;
    c.train.tokens = 16 * 16 * 12;
    c.eval.every = 4;
    LmRunEnd straight, first, second;
    const auto want = final_weights(c, out_dir("straight"), nullptr, false, &straight);
    ASSERT_EQ(straight.result.status, RunStatus::kOk) << straight.result.reason;

    const std::string dir = out_dir("resumed");
    std::atomic<int> stop{1};  // asked to stop before the first step ends
    final_weights(c, dir, &stop, false, &first);
    ASSERT_TRUE(first.interrupted) << first.result.reason;
    ASSERT_TRUE(std::filesystem::exists(dir + "/checkpoint.pt"));
    stop = 0;
    const auto got = final_weights(c, dir, &stop, true, &second);
    ASSERT_EQ(second.result.status, RunStatus::kOk) << second.result.reason;
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [name, t] : want) EXPECT_EQ(got.at(name).values, t.values) << name;
    EXPECT_EQ(second.result.metrics.at("val_loss"), straight.result.metrics.at("val_loss"));
    ASSERT_EQ(second.result.curve.size(), straight.result.curve.size());
    for (std::size_t i = 0; i < straight.result.curve.size(); ++i)
      EXPECT_EQ(second.result.curve[i].train_loss, straight.result.curve[i].train_loss);
    EXPECT_FALSE(std::filesystem::exists(dir + "/checkpoint.pt"));  // removed once finished
  }
}

// In memory the flat buffer runs in reverse registration order (the order gradients become
// ready); the checkpoint keeps decayed matrices first, then the rest, which trainer/lora reads.
TEST(LmTrain, CheckpointKeepsTheCanonicalParameterOrder) {
  LmConfig c = tiny_config();
  c.optim.lr = 1e-9;  // one step barely moves the initial weights
  const std::string dir = out_dir("canonical");
  std::atomic<int> stop{1};
  const auto end = train_lm({c, dir, false, {}, &stop});
  ASSERT_TRUE(end.interrupted) << end.result.reason;
  torch::serialize::InputArchive archive;
  archive.load_from(dir + "/checkpoint.pt");
  torch::Tensor params;
  archive.read("params", params);
  torch::manual_seed(static_cast<std::uint64_t>(c.seed));
  Gpt init(c.shape(32), 0.0);
  std::vector<torch::Tensor> parts;
  for (const bool decayed : {true, false})
    for (const auto& item : init->named_parameters())
      if (decays(item.key()) == decayed) parts.push_back(item.value().detach().reshape({-1}));
  const auto want = torch::cat(parts);
  ASSERT_EQ(params.numel(), want.numel());
  EXPECT_LT((params - want).abs().max().item<double>(), 1e-6);
}

TEST(LmTrain, HugeLearningRateIsReportedAsDiverged) {
  LmConfig c = tiny_config();
  c.optim.lr = 1e4;
  c.optim.warmup_fraction = 0;
  const auto end = train_lm({c, out_dir("diverge"), false, {}, nullptr});
  EXPECT_EQ(end.result.status, RunStatus::kDiverged);
  EXPECT_NE(end.result.reason.find("loss"), std::string::npos) << end.result.reason;
}

TEST(LmTrain, BadSettingsBecomeFailedResults) {
  LmConfig c = tiny_config();
  c.model.vocab = 8;  // smaller than the source's 32 symbols
  auto end = train_lm({c, out_dir("bad"), false, {}, nullptr});
  EXPECT_EQ(end.result.status, RunStatus::kFailed);
  EXPECT_NE(end.result.reason.find("model.vocab"), std::string::npos) << end.result.reason;
  c = tiny_config();
  c.data.source = "bin";
  c.data.path = "/nonexistent/train.bin";
  end = train_lm({c, out_dir("bad"), false, {}, nullptr});
  EXPECT_EQ(end.result.status, RunStatus::kFailed);
  EXPECT_NE(end.result.reason.find("/nonexistent/train.bin"), std::string::npos);
}

}  // namespace
}  // namespace scaletune::trainer::lm
