// LoRA (Hu et al. 2021) on the GPT of trainer/lm/model.h: rank-r adapters y = W x + (alpha / r)
// B A dropout(x) on the chosen linears, with A ~ Kaiming-uniform and B = 0 so training starts
// exactly at the base model; merging them into the base; reading and writing adapters; and
// loading base models (our checkpoints and exports, Hugging Face GPT-2 safetensors).
//
// The adapters live in their own module (not inside the Gpt), so the base's parameters, its
// exports and its checkpoints are untouched; they reach the model through the LinearDelta hooks
// of CausalSelfAttention and Mlp.
#pragma once

#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer/lm/model.h"
#include "trainer/lora/lora_config.h"

namespace scaletune::trainer::lora {

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(std::int64_t in, std::int64_t out, std::int64_t rank, double alpha,
                 double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (..., in) -> (..., out)
  // The update of the weight, scale * B A: (out, in).
  torch::Tensor delta_weight() const;

  torch::Tensor A, B;  // (r, in), (out, r)
  double scale;

 private:
  double dropout_;
};
TORCH_MODULE(LoraLinear);

// Every adapter of one model, keyed by the GPT-2 name of the linear it adapts
// ("h.0.attn.c_attn", "h.0.mlp.c_fc", ...).
class LoraAdaptersImpl : public torch::nn::Module {
 public:
  LoraAdaptersImpl(const LmShape& shape, const LoraAdapterConfig& config);
  const std::map<std::string, LoraLinear>& layers() const { return layers_; }
  std::int64_t trainable() const;

 private:
  std::map<std::string, LoraLinear> layers_;
};
TORCH_MODULE(LoraAdapters);

// The linear layer of `model` with GPT-2 name `name` (e.g. "h.3.mlp.c_proj").
torch::nn::Linear& linear_of(lm::Gpt& model, const std::string& name);

// Freezes the base and routes the adapted linears through `adapters` (attach), or detaches
// every hook (detach). The adapters must outlive the attachment.
void attach(lm::Gpt& model, const LoraAdapters& adapters);
void detach(lm::Gpt& model);

// W += scale * B A for every adapter, then detaches the hooks: the model alone now computes what
// base + adapters computed.
void merge(lm::Gpt& model, const LoraAdapters& adapters);

// adapter.safetensors: tensors named like PEFT's ("base_model.model.transformer.h.0.attn.c_attn.
// lora_A.weight", A is (r, in), B is (out, r)) and metadata with rank, alpha, targets.
void save_adapters(const std::string& path, const LoraAdapters& adapters,
                   const LoraAdapterConfig& config, const std::string& base);
// Loads into `adapters` (which must have the same shape). Throws std::runtime_error naming the
// file and the mismatch.
void load_adapters(const std::string& path, LoraAdapters& adapters);
// Reads the adapter settings stored in an adapter file.
LoraAdapterConfig read_adapter_config(const std::string& path);

// Sum over weighted positions of the next-token cross-entropy of inputs `x` against targets `y`
// (both (B, T) int64), and the sum of the weights `w` (B, T): prompt and padding positions have
// weight 0 and contribute nothing (not even through the logits' normalisation).
std::pair<torch::Tensor, torch::Tensor> masked_loss_sum(lm::Gpt& model, const torch::Tensor& x,
                                                        const torch::Tensor& y,
                                                        const torch::Tensor& w);

// A base model and what is known about its tokenizer.
struct BaseModel {
  LmShape shape;
  lm::Gpt model{nullptr};
  std::string tokenizer = "byte";  // byte | gpt2
  std::string bpe_dir;             // where GPT-2 BPE files may be (the base's directory)
  std::string description;         // "GPT-2 safetensors /path (HF names)", ...
  std::string kind;                // ours-safetensors | ours-checkpoint | hf-gpt2
  double train_flops = 0;          // the base run's training compute when known (result.json)
};

// Loads `path`: a `scaletune train` output directory (model.safetensors, else checkpoint.pt),
// one of those files, or a Hugging Face GPT-2 directory / model.safetensors with config.json
// next to it (HF tensor names, Conv1D (in, out) weights; attn.bias buffers are ignored). Throws
// std::runtime_error saying what is missing.
BaseModel load_base(const std::string& path);

// Writes `model` as GPT-2 safetensors (HF names, our config in the metadata, like
// `scaletune train` exports) and as a checkpoint archive like `scaletune train`'s checkpoint.pt.
void export_safetensors(const std::string& path, lm::Gpt& model, const BaseModel& base);
void export_checkpoint(const std::string& path, lm::Gpt& model, const BaseModel& base);
// The config JSON stored with exports: {"model": {...shape...}, "data": {"tokenizer": ...}}.
nlohmann::json shape_config(const LmShape& shape, const std::string& tokenizer);

}  // namespace scaletune::trainer::lora
