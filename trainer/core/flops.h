// Closed-form sizes and costs of a GPT-2-style decoder: parameter counts (total and
// non-embedding), training FLOPs per token by the Chinchilla appendix F count (attention
// included) and by the 6N rule, and an estimate of training memory.
//
// Torch-free on purpose: the sweep orchestrator evaluates these for devices rules (`params`,
// `memory_bytes`) without loading LibTorch, and tests check them against the real model.
// Conventions: ../shared/docs/scaling-methods.md §0; docs/lm-trainer.md "Compute accounting".
#pragma once

#include <cstdint>

namespace scaletune::trainer {

// The shape of the decoder (trainer/lm/model.h builds exactly this).
struct LmShape {
  std::int64_t n_layer = 4;
  std::int64_t d_model = 128;
  std::int64_t n_head = 4;
  std::int64_t d_ff = 512;
  std::int64_t context = 128;
  std::int64_t vocab = 256;
  bool rope = false;  // rotary positions instead of a learned position table (no wpe parameters)
  bool bias = true;   // biases in linear layers (LayerNorm always has weight and bias)
};

struct LmParamCount {
  std::int64_t total = 0;          // every trainable parameter; the tied lm_head counted once
  std::int64_t embedding = 0;      // token table (vocab x d) + position table (context x d)
  std::int64_t non_embedding = 0;  // total - embedding (Kaplan's N)
};

// Exact parameter count of the model built from `shape`.
LmParamCount lm_param_count(const LmShape& shape);

// Training FLOPs per token, Chinchilla appendix F (Hoffmann et al. 2022): forward FLOPs of one
// sequence of length `context` (embedding matmul, QKV, logits, softmax, mix, out-projection,
// MLP, unembedding) times 3 for forward + backward, divided by the sequence length.
double lm_flops_per_token(const LmShape& shape);

// Forward FLOPs per token of the same count (used for evaluation cost).
double lm_forward_flops_per_token(const LmShape& shape);

// 6·N per token with N = `params` (total or non-embedding; both are reported).
inline double flops_6n_per_token(double params) { return 6.0 * params; }

// Bytes a training step needs on one device: fp32 weights, gradients and the two AdamW moments
// (16 bytes/parameter) plus activations kept for backward for a micro-batch of `micro_batch`
// sequences (per layer per token about 34·d + 5·heads·context bytes with 16-bit activations,
// Korthikanti et al. 2022, scaled to `activation_bytes` per value; plus the fp32 logits and
// their gradient). An estimate, not a bound.
double lm_memory_bytes(const LmShape& shape, std::int64_t micro_batch, int activation_bytes = 4);

}  // namespace scaletune::trainer
