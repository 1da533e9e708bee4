// The GPT-2 decoder (Radford et al. 2019) in LibTorch, laid out like nanoGPT's model.py so that
// parameter names match GPT-2 checkpoints: transformer.wte / wpe / h.{i}.{ln_1, attn.c_attn,
// attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj} / ln_f, with lm_head tied to wte.
//
// Pre-LayerNorm blocks, GELU MLP, learned positions or rotary embeddings (RoPE, Su et al. 2021),
// causal attention through the fused scaled_dot_product_attention (LibTorch >= 2.0; on 1.13 an
// explicit softmax(QK^T/sqrt(hs) + mask)V with mask and scale folded into one GEMM), dropout,
// and GPT-2's initialisation: N(0, 0.02) weights, residual projections scaled by
// 1/sqrt(2 n_layer).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer/core/flops.h"

namespace scaletune::trainer::lm {

// An optional additive update of a linear layer's output, y = W x + b + delta(x): the hook LoRA
// adapters use (trainer/lora/lora.h). Not a submodule, so parameters, checkpoints and exports
// are unchanged; empty by default.
using LinearDelta = std::function<torch::Tensor(const torch::Tensor&)>;
inline torch::Tensor apply_linear(const torch::nn::Linear& layer, const LinearDelta& delta,
                                  const torch::Tensor& x) {
  return delta ? layer.ptr()->forward(x) + delta(x) : layer.ptr()->forward(x);
}

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(const LmShape& shape, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, d) -> (B, T, d)

  torch::nn::Linear c_attn{nullptr}, c_proj{nullptr};
  LinearDelta c_attn_delta, c_proj_delta;

 private:
  std::int64_t n_head_;
  double dropout_;
  bool rope_;
  torch::Tensor cos_, sin_;    // (T, hs/2) rotary tables
  torch::Tensor causal_mask_;  // (T, T) additive mask of the explicit 1.13 path, built on use
};
TORCH_MODULE(CausalSelfAttention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const LmShape& shape, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
  LinearDelta c_fc_delta, c_proj_delta;

 private:
  double dropout_;
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const LmShape& shape, double dropout);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  CausalSelfAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

// The `transformer` container, so parameter names carry nanoGPT's prefix.
class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(const LmShape& shape, double dropout);
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
};
TORCH_MODULE(Transformer);

class GptImpl : public torch::nn::Module {
 public:
  // Initialises from the current default generator (seed it first).
  GptImpl(const LmShape& shape, double dropout);
  torch::Tensor forward(const torch::Tensor& idx);  // (B, T) int64 -> logits (B, T, vocab)
  // Mean next-token cross-entropy of `idx` against `targets` (both (B, T)).
  torch::Tensor loss(const torch::Tensor& idx, const torch::Tensor& targets);
  const LmShape& shape() const { return shape_; }

  Transformer transformer{nullptr};

 private:
  LmShape shape_;
  double dropout_;
};
TORCH_MODULE(Gpt);

// True for parameters that get weight decay: the matrices of linear layers (not norms, biases
// or embeddings).
bool decays(const std::string& parameter_name);

// The GPT-2 (Hugging Face GPT2Model) name of a nanoGPT parameter, and whether GPT-2 stores it
// transposed (its Conv1D keeps linear weights as (in, out)).
std::string gpt2_name(const std::string& parameter_name, bool* transposed);

// The checkpoint archive's parameter order (checkpoint.pt): the decayed matrices first, then the
// rest, each group in registration order.
std::vector<torch::Tensor> checkpoint_order(Gpt& model);

// checkpoint.pt (docs/lm-trainer.md): flat float32 vectors of the parameters and both AdamW
// moments in checkpoint_order, and the run's meta JSON (its "key" is the model's config). The
// LM trainer writes it to resume; LoRA reads it as a base and writes merged models in it.
struct CheckpointArchive {
  torch::Tensor params, exp_avg, exp_avg_sq;
  nlohmann::json meta;
};
// Atomic (temporary file + rename). Throws std::runtime_error naming the file.
void write_checkpoint(const std::string& path, const CheckpointArchive& archive);
// Throws std::runtime_error naming the file when it is not such an archive.
CheckpointArchive read_checkpoint(const std::string& path);

}  // namespace scaletune::trainer::lm
