#include "trainer/lm/model.h"

#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace scaletune::trainer::lm {
namespace F = torch::nn::functional;

namespace {

torch::nn::Linear linear(std::int64_t in, std::int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

// Rotary embedding with the two halves of each head rotated together (GPT-NeoX layout).
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const std::int64_t T = x.size(2), half = x.size(3) / 2;
  auto c = cos.narrow(0, 0, T), s = sin.narrow(0, 0, T);  // (T, hs/2)
  auto x1 = x.narrow(3, 0, half), x2 = x.narrow(3, half, half);
  return torch::cat({x1 * c - x2 * s, x1 * s + x2 * c}, 3);
}

}  // namespace

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const LmShape& s, double dropout)
    : n_head_(s.n_head), dropout_(dropout), rope_(s.rope) {
  c_attn = register_module("c_attn", linear(s.d_model, 3 * s.d_model, s.bias));
  c_proj = register_module("c_proj", linear(s.d_model, s.d_model, s.bias));
  if (rope_) {
    const std::int64_t hs = s.d_model / s.n_head;
    auto inv_freq = torch::pow(10000.0, -torch::arange(0, hs, 2, torch::kFloat64) / hs);
    auto angles = torch::outer(torch::arange(s.context, torch::kFloat64), inv_freq);
    cos_ = register_buffer("rope_cos", angles.cos().to(torch::kFloat32));
    sin_ = register_buffer("rope_sin", angles.sin().to(torch::kFloat32));
  }
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x) {
  const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2), hs = C / n_head_;
  auto qkv = apply_linear(c_attn, c_attn_delta, x).split(C, 2);  // 3 x (B, T, C)
  auto q = qkv[0].view({B, T, n_head_, hs}).transpose(1, 2);     // (B, nh, T, hs)
  auto k = qkv[1].view({B, T, n_head_, hs}).transpose(1, 2);
  auto v = qkv[2].view({B, T, n_head_, hs}).transpose(1, 2);
  if (rope_) {
    q = rotate(q, cos_, sin_);
    k = rotate(k, cos_, sin_);
  }
  const double p = is_training() ? dropout_ : 0.0;
#if TORCH_VERSION_MAJOR >= 2
  auto y = at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true);
  y = y.transpose(1, 2).contiguous().view({B, T, C});  // (B, T, C)
#else
  // 1.13 has no fused CPU kernel: its private _scaled_dot_product_attention scales a copy of q,
  // builds a boolean mask, converts it to an additive one and adds it in a separate pass on
  // every call. Here the cached additive mask, the 1/sqrt(hs) scale and QK^T are one baddbmm
  // (the mask is the GEMM's C operand), about 5% less attention time at the bench/lm shapes.
  if (!causal_mask_.defined() || causal_mask_.size(0) != T || causal_mask_.device() != q.device() ||
      causal_mask_.scalar_type() != q.scalar_type())
    causal_mask_ = torch::full({T, T}, -std::numeric_limits<double>::infinity(), q.options())
                       .triu(1);  // (T, T): 0 on and below the diagonal, -inf above
  auto heads = [&](const torch::Tensor& t) { return t.reshape({B * n_head_, T, hs}); };
  auto scores = at::baddbmm(causal_mask_, heads(q), heads(k).transpose(1, 2), /*beta=*/1.0,
                            /*alpha=*/1.0 / std::sqrt(static_cast<double>(hs)));
  auto weights = scores.softmax(-1);
  if (p > 0) weights = F::dropout(weights, F::DropoutFuncOptions().p(p).training(true));
  auto y = at::bmm(weights, heads(v)).view({B, n_head_, T, hs}).transpose(1, 2).reshape({B, T, C});
#endif
  y = apply_linear(c_proj, c_proj_delta, y);
  return dropout_ > 0 ? F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(is_training()))
                      : y;
}

MlpImpl::MlpImpl(const LmShape& s, double dropout) : dropout_(dropout) {
  c_fc = register_module("c_fc", linear(s.d_model, s.d_ff, s.bias));
  c_proj = register_module("c_proj", linear(s.d_ff, s.d_model, s.bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto y = apply_linear(c_proj, c_proj_delta, torch::gelu(apply_linear(c_fc, c_fc_delta, x)));
  return dropout_ > 0 ? F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(is_training()))
                      : y;
}

BlockImpl::BlockImpl(const LmShape& s, double dropout) {
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.d_model})));
  attn = register_module("attn", CausalSelfAttention(s, dropout));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.d_model})));
  mlp = register_module("mlp", Mlp(s, dropout));
}

torch::Tensor BlockImpl::forward(torch::Tensor x) {
  x = x + attn->forward(ln_1->forward(x));
  return x + mlp->forward(ln_2->forward(x));
}

TransformerImpl::TransformerImpl(const LmShape& s, double dropout) {
  wte = register_module("wte", torch::nn::Embedding(s.vocab, s.d_model));
  if (!s.rope) wpe = register_module("wpe", torch::nn::Embedding(s.context, s.d_model));
  h = register_module("h", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < s.n_layer; ++i) h->push_back(Block(s, dropout));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.d_model})));
}

GptImpl::GptImpl(const LmShape& s, double dropout) : shape_(s), dropout_(dropout) {
  transformer = register_module("transformer", Transformer(s, dropout));
  // GPT-2 initialisation; residual projections scaled by 1/sqrt(2 n_layer) so the residual
  // stream's variance does not grow with depth.
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(s.n_layer));
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    const bool is_norm = name.find("ln_") != std::string::npos;
    if (is_norm) {
      p.fill_(name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0 ? 1.0 : 0.0);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      p.zero_();
    } else if (name.size() >= 13 && name.compare(name.size() - 13, 13, "c_proj.weight") == 0) {
      p.normal_(0.0, residual_std);
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

torch::Tensor GptImpl::forward(const torch::Tensor& idx) {
  const std::int64_t T = idx.size(1);
  TORCH_CHECK(T <= shape_.context, "sequence of ", T, " tokens exceeds the context ",
              shape_.context);
  auto x = transformer->wte->forward(idx);  // (B, T, d)
  if (!shape_.rope)
    x = x + transformer->wpe->forward(torch::arange(T, idx.options().dtype(torch::kLong)));
  if (dropout_ > 0) x = F::dropout(x, F::DropoutFuncOptions().p(dropout_).training(is_training()));
  for (const auto& block : *transformer->h) x = block->as<Block>()->forward(x);
  x = transformer->ln_f->forward(x);
  return F::linear(x, transformer->wte->weight);  // tied lm_head: (B, T, vocab)
}

torch::Tensor GptImpl::loss(const torch::Tensor& idx, const torch::Tensor& targets) {
  auto logits = forward(idx);
  return F::cross_entropy(logits.view({-1, logits.size(-1)}), targets.reshape({-1}));
}

bool decays(const std::string& name) {
  auto ends_with = [&](const char* s) {
    const std::size_t n = std::char_traits<char>::length(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  return ends_with(".weight") && name.find("ln_") == std::string::npos &&
         name.find("wte") == std::string::npos && name.find("wpe") == std::string::npos;
}

std::string gpt2_name(const std::string& name, bool* transposed) {
  std::string out = name.rfind("transformer.", 0) == 0 ? name.substr(12) : name;
  *transposed = decays(name);  // GPT-2's Conv1D stores linear weights as (in, out)
  return out;
}

std::vector<torch::Tensor> checkpoint_order(Gpt& model) {
  std::vector<torch::Tensor> decayed, rest;
  for (auto& item : model->named_parameters())
    (decays(item.key()) ? decayed : rest).push_back(item.value());
  decayed.insert(decayed.end(), rest.begin(), rest.end());
  return decayed;
}

void write_checkpoint(const std::string& path, const CheckpointArchive& a) {
  torch::serialize::OutputArchive archive;
  archive.write("params", a.params);
  archive.write("exp_avg", a.exp_avg);
  archive.write("exp_avg_sq", a.exp_avg_sq);
  const std::string text = a.meta.dump();
  archive.write("meta", torch::from_blob(const_cast<char*>(text.data()),
                                         {static_cast<std::int64_t>(text.size())}, torch::kUInt8)
                            .clone());
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

CheckpointArchive read_checkpoint(const std::string& path) {
  CheckpointArchive a;
  torch::Tensor meta;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    archive.read("params", a.params);
    archive.read("exp_avg", a.exp_avg);
    archive.read("exp_avg_sq", a.exp_avg_sq);
    archive.read("meta", meta);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path +
                             " is not a scaletune checkpoint: " + e.what_without_backtrace());
  }
  meta = meta.contiguous();
  try {
    a.meta = nlohmann::json::parse(
        std::string(reinterpret_cast<const char*>(meta.data_ptr<std::uint8_t>()),
                    static_cast<std::size_t>(meta.numel())));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": the checkpoint's metadata is not JSON (" + e.what() + ")");
  }
  return a;
}

}  // namespace scaletune::trainer::lm
