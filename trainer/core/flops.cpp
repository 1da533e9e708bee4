#include "trainer/core/flops.h"

namespace scaletune::trainer {

LmParamCount lm_param_count(const LmShape& s) {
  const std::int64_t d = s.d_model, f = s.d_ff, b = s.bias ? 1 : 0;
  // Per block: ln_1, ln_2 (2d each), c_attn (3d·d + 3d), attn c_proj (d·d + d),
  // mlp c_fc (d·f + f), mlp c_proj (f·d + d).
  const std::int64_t block =
      2 * (2 * d) + (3 * d * d + b * 3 * d) + (d * d + b * d) + (d * f + b * f) + (f * d + b * d);
  LmParamCount c;
  c.embedding = s.vocab * d + (s.rope ? 0 : s.context * d);
  c.non_embedding = s.n_layer * block + 2 * d;  // blocks + ln_f
  c.total = c.embedding + c.non_embedding;
  return c;
}

double lm_forward_flops_per_token(const LmShape& s) {
  const double seq = static_cast<double>(s.context), d = static_cast<double>(s.d_model);
  const double vocab = static_cast<double>(s.vocab), ffw = static_cast<double>(s.d_ff);
  const double heads = static_cast<double>(s.n_head);
  const double attn_dim = d;  // key_size · heads
  // Chinchilla appendix F, one sequence, forward.
  const double embeddings = 2 * seq * vocab * d;
  const double attention = 2 * 3 * seq * d * attn_dim  // QKV projections
                           + 2 * seq * seq * attn_dim  // QK^T logits
                           + 3 * heads * seq * seq     // softmax
                           + 2 * seq * seq * attn_dim  // softmax · V
                           + 2 * seq * attn_dim * d;   // output projection
  const double dense = 2 * seq * (d * ffw + d * ffw);  // two MLP matmuls
  const double logits = 2 * seq * d * vocab;
  const double forward = embeddings + static_cast<double>(s.n_layer) * (attention + dense) + logits;
  return forward / seq;
}

double lm_flops_per_token(const LmShape& s) { return 3.0 * lm_forward_flops_per_token(s); }

double lm_memory_bytes(const LmShape& s, std::int64_t micro_batch, int activation_bytes) {
  const double params = static_cast<double>(lm_param_count(s).total);
  const double tokens = static_cast<double>(micro_batch) * static_cast<double>(s.context);
  const double d = static_cast<double>(s.d_model), h = static_cast<double>(s.n_head);
  const double per_layer = tokens * (34.0 * d + 5.0 * h * static_cast<double>(s.context));
  const double activations = static_cast<double>(s.n_layer) * per_layer * activation_bytes / 2.0;
  const double logits = 2.0 * tokens * static_cast<double>(s.vocab) * 4.0;  // logits + grad, fp32
  return 16.0 * params + activations + logits;
}

}  // namespace scaletune::trainer
