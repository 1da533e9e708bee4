#include "trainer/lora/lora.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/core/result.h"
#include "trainer/lm/safetensors.h"

namespace scaletune::trainer::lora {
namespace F = torch::nn::functional;
namespace fs = std::filesystem;

namespace {

constexpr const char* kPeftPrefix = "base_model.model.transformer.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

lm::FloatTensor to_float_tensor(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  lm::FloatTensor ft;
  ft.shape.assign(c.sizes().begin(), c.sizes().end());
  ft.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return ft;
}

torch::Tensor from_float_tensor(const lm::FloatTensor& ft) {
  return torch::from_blob(const_cast<float*>(ft.values.data()), ft.shape, torch::kFloat32).clone();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

struct Target {
  std::string suffix;  // within block i
  std::int64_t in, out;
};

std::vector<Target> targets_of(const LmShape& s, const std::string& target) {
  if (target == "qkv") return {{"attn.c_attn", s.d_model, 3 * s.d_model}};
  if (target == "attn_out") return {{"attn.c_proj", s.d_model, s.d_model}};
  if (target == "mlp") return {{"mlp.c_fc", s.d_model, s.d_ff}, {"mlp.c_proj", s.d_ff, s.d_model}};
  throw std::invalid_argument("unknown LoRA target '" + target + "'; choose qkv, attn_out, mlp");
}

// (block index, the rest of the name) of "h.{i}.rest".
std::pair<std::int64_t, std::string> split_block_name(const std::string& name) {
  if (name.rfind("h.", 0) != 0) throw std::invalid_argument("not a block linear: " + name);
  const auto dot = name.find('.', 2);
  return {std::stoll(name.substr(2, dot - 2)), name.substr(dot + 1)};
}

lm::LinearDelta* hook_of(lm::Gpt& model, const std::string& name) {
  const auto [i, rest] = split_block_name(name);
  auto block = model->transformer->h[static_cast<std::size_t>(i)]->as<lm::Block>();
  if (rest == "attn.c_attn") return &block->attn->c_attn_delta;
  if (rest == "attn.c_proj") return &block->attn->c_proj_delta;
  if (rest == "mlp.c_fc") return &block->mlp->c_fc_delta;
  if (rest == "mlp.c_proj") return &block->mlp->c_proj_delta;
  throw std::invalid_argument("no adaptable linear named " + name);
}

// Copies GPT-2-named tensors into the model; `strip` names prefixes the file may add.
void load_gpt2_tensors(lm::Gpt& model, const std::map<std::string, lm::FloatTensor>& tensors,
                       const std::string& path) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    bool transposed = false;
    const std::string name = lm::gpt2_name(item.key(), &transposed);
    auto it = tensors.find(name);
    if (it == tensors.end()) it = tensors.find("transformer." + name);
    if (it == tensors.end())
      throw std::runtime_error(path + " has no tensor " + name + " (GPT-2 names expected)");
    auto t = from_float_tensor(it->second);
    if (transposed) t = t.t();
    if (t.sizes() != item.value().sizes())
      throw std::runtime_error(path + ": tensor " + name + " has shape " +
                               shape_text(it->second.shape) + ", the model expects " +
                               shape_text(std::vector<std::int64_t>(item.value().sizes().begin(),
                                                                    item.value().sizes().end())) +
                               (transposed ? " transposed" : ""));
    item.value().copy_(t);
  }
}

const nlohmann::json& at_or_throw(const nlohmann::json& j, const char* key,
                                  const std::string& what) {
  if (!j.contains(key)) throw std::runtime_error(what + " has no \"" + std::string(key) + "\"");
  return j.at(key);
}

// Shape from our config JSON ({"model": {...}, "data": {...}}); vocab/d_ff may be 0 (resolved
// later from the tensors).
LmShape shape_from_our_config(const nlohmann::json& config, const std::string& what) {
  const auto& m = at_or_throw(config, "model", what);
  LmShape s;
  s.n_layer = m.value("n_layer", s.n_layer);
  s.d_model = m.value("d_model", s.d_model);
  s.n_head = m.value("n_head", s.n_head);
  s.d_ff = m.value("d_ff", std::int64_t{0});
  if (s.d_ff <= 0) s.d_ff = 4 * s.d_model;
  s.context = m.value("context", s.context);
  s.vocab = m.value("vocab", std::int64_t{0});
  s.rope = m.value("rope", false);
  s.bias = m.value("bias", true);
  return s;
}

std::string tokenizer_from_our_config(const nlohmann::json& config) {
  if (!config.contains("data")) return "byte";
  return config["data"].value("tokenizer", std::string("byte"));
}

// Dimensions a GPT-2 safetensors file fixes by itself.
void shape_from_tensors(LmShape& s, const std::map<std::string, lm::FloatTensor>& t,
                        const std::string& path) {
  auto find = [&](const std::string& name) -> const lm::FloatTensor* {
    auto it = t.find(name);
    if (it == t.end()) it = t.find("transformer." + name);
    return it == t.end() ? nullptr : &it->second;
  };
  const auto* wte = find("wte.weight");
  if (!wte || wte->shape.size() != 2)
    throw std::runtime_error(path + " has no 2-d wte.weight: not a GPT-2 model");
  s.vocab = wte->shape[0];
  s.d_model = wte->shape[1];
  if (const auto* wpe = find("wpe.weight")) {
    s.rope = false;
    s.context = wpe->shape[0];
  } else {
    s.rope = true;
  }
  s.n_layer = 0;
  while (find("h." + std::to_string(s.n_layer) + ".ln_1.weight")) ++s.n_layer;
  if (const auto* fc = find("h.0.mlp.c_fc.weight")) s.d_ff = fc->shape[1];  // Conv1D (in, out)
  s.bias = find("h.0.attn.c_attn.bias") != nullptr;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + " is not valid JSON: " + e.what());
  }
}

double result_flops(const fs::path& dir) {
  const fs::path r = dir / "result.json";
  if (!fs::exists(r)) return 0;
  try {
    return read_result(r.string()).cost.flops;
  } catch (const std::exception&) {
    return 0;
  }
}

BaseModel load_safetensors_base(const std::string& path) {
  std::map<std::string, std::string> meta;
  const auto tensors = lm::read_safetensors(path, &meta);
  BaseModel b;
  const fs::path dir = fs::path(path).parent_path();
  b.bpe_dir = dir.string();
  if (meta.count("config")) {  // written by scaletune train (or finetune)
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(meta.at("config"));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path + ": the \"config\" metadata is not JSON: " + e.what());
    }
    b.shape = shape_from_our_config(config, path + " metadata config");
    b.tokenizer = tokenizer_from_our_config(config);
    if (config.contains("data") && config["data"].contains("bpe_dir") &&
        !config["data"]["bpe_dir"].get<std::string>().empty())
      b.bpe_dir = config["data"]["bpe_dir"].get<std::string>();
    b.kind = "ours-safetensors";
    b.train_flops = result_flops(dir);
  } else {  // Hugging Face: config.json next to the weights
    const fs::path config_path = dir / "config.json";
    if (!fs::exists(config_path))
      throw std::runtime_error(path + " has no scaletune config metadata and there is no " +
                               config_path.string() + " (Hugging Face GPT-2 config) next to it");
    const auto hf = read_json_file(config_path.string());
    b.shape.n_head = at_or_throw(hf, "n_head", config_path.string()).get<std::int64_t>();
    b.shape.context = hf.value("n_positions", hf.value("n_ctx", std::int64_t{1024}));
    b.tokenizer = "gpt2";
    b.kind = "hf-gpt2";
  }
  const std::int64_t config_context = b.shape.context;
  shape_from_tensors(b.shape, tensors, path);
  if (b.shape.rope) b.shape.context = config_context;
  if (b.shape.d_model % b.shape.n_head != 0)
    throw std::runtime_error(path + ": d_model " + std::to_string(b.shape.d_model) +
                             " is not divisible by n_head " + std::to_string(b.shape.n_head));
  b.model = lm::Gpt(b.shape, 0.0);
  load_gpt2_tensors(b.model, tensors, path);
  b.description = (b.kind == "hf-gpt2" ? "GPT-2 safetensors (Hugging Face names) " : "") + path;
  return b;
}

BaseModel load_checkpoint_base(const std::string& path) {
  const lm::CheckpointArchive archive = lm::read_checkpoint(path);
  const torch::Tensor& params = archive.params;
  const nlohmann::json& j = archive.meta;
  const auto& config = at_or_throw(j, "key", path + " metadata");
  BaseModel b;
  b.shape = shape_from_our_config(config, path + " metadata");
  b.tokenizer = tokenizer_from_our_config(config);
  b.bpe_dir = fs::path(path).parent_path().string();
  if (b.shape.vocab <= 0) {  // the parameter count is linear in the vocabulary
    LmShape zero = b.shape;
    zero.vocab = 0;
    const std::int64_t rest = lm_param_count(zero).total;
    b.shape.vocab = (params.numel() - rest) / b.shape.d_model;
  }
  if (lm_param_count(b.shape).total != params.numel())
    throw std::runtime_error(path + " holds " + std::to_string(params.numel()) +
                             " parameters, its config describes " +
                             std::to_string(lm_param_count(b.shape).total));
  b.model = lm::Gpt(b.shape, 0.0);
  torch::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (auto& p : lm::checkpoint_order(b.model)) {
    p.copy_(params.narrow(0, offset, p.numel()).view(p.sizes()));
    offset += p.numel();
  }
  b.kind = "ours-checkpoint";
  b.description = path;
  b.train_flops = result_flops(fs::path(path).parent_path());
  return b;
}

}  // namespace

LoraLinearImpl::LoraLinearImpl(std::int64_t in, std::int64_t out, std::int64_t rank, double alpha,
                               double dropout)
    : scale(alpha / static_cast<double>(rank)), dropout_(dropout) {
  A = register_parameter("A", torch::empty({rank, in}));
  B = register_parameter("B", torch::zeros({out, rank}));
  torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));  // as nn.Linear (and PEFT) initialise
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  auto h =
      dropout_ > 0 ? F::dropout(x, F::DropoutFuncOptions().p(dropout_).training(is_training())) : x;
  return F::linear(F::linear(h, A), B) * scale;  // (..., in) -> (..., r) -> (..., out)
}

torch::Tensor LoraLinearImpl::delta_weight() const { return torch::mm(B, A) * scale; }

LoraAdaptersImpl::LoraAdaptersImpl(const LmShape& shape, const LoraAdapterConfig& c) {
  for (std::int64_t i = 0; i < shape.n_layer; ++i) {
    for (const auto& target : c.targets) {
      for (const auto& t : targets_of(shape, target)) {
        const std::string name = "h." + std::to_string(i) + "." + t.suffix;
        std::string module_name = name;
        for (auto& ch : module_name)
          if (ch == '.') ch = '_';
        layers_.emplace(name, register_module(module_name,
                                              LoraLinear(t.in, t.out, c.rank, c.alpha, c.dropout)));
      }
    }
  }
}

std::int64_t LoraAdaptersImpl::trainable() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::nn::Linear& linear_of(lm::Gpt& model, const std::string& name) {
  const auto [i, rest] = split_block_name(name);
  auto block = model->transformer->h[static_cast<std::size_t>(i)]->as<lm::Block>();
  if (rest == "attn.c_attn") return block->attn->c_attn;
  if (rest == "attn.c_proj") return block->attn->c_proj;
  if (rest == "mlp.c_fc") return block->mlp->c_fc;
  if (rest == "mlp.c_proj") return block->mlp->c_proj;
  throw std::invalid_argument("no adaptable linear named " + name);
}

void attach(lm::Gpt& model, const LoraAdapters& adapters) {
  for (auto& p : model->parameters()) p.requires_grad_(false);
  for (const auto& [name, layer] : adapters->layers()) {
    LoraLinear l = layer;  // shares the module
    *hook_of(model, name) = [l](const torch::Tensor& x) { return l.ptr()->forward(x); };
  }
}

void detach(lm::Gpt& model) {
  for (const auto& block : *model->transformer->h) {
    auto b = block->as<lm::Block>();
    b->attn->c_attn_delta = nullptr;
    b->attn->c_proj_delta = nullptr;
    b->mlp->c_fc_delta = nullptr;
    b->mlp->c_proj_delta = nullptr;
  }
}

void merge(lm::Gpt& model, const LoraAdapters& adapters) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, layer] : adapters->layers()) {
    auto& w = linear_of(model, name)->weight;  // (out, in)
    w.add_(layer->delta_weight().to(w.device(), w.scalar_type()));
  }
  detach(model);
}

void save_adapters(const std::string& path, const LoraAdapters& adapters,
                   const LoraAdapterConfig& c, const std::string& base) {
  std::map<std::string, lm::FloatTensor> tensors;
  for (const auto& [name, layer] : adapters->layers()) {
    tensors[kPeftPrefix + name + ".lora_A.weight"] = to_float_tensor(layer->A);
    tensors[kPeftPrefix + name + ".lora_B.weight"] = to_float_tensor(layer->B);
  }
  std::string targets;
  for (const auto& t : c.targets) targets += (targets.empty() ? "" : ",") + t;
  lm::write_safetensors(path, tensors,
                        {{"format", "scaletune-lora"},
                         {"rank", std::to_string(c.rank)},
                         {"alpha", std::to_string(c.alpha)},
                         {"dropout", std::to_string(c.dropout)},
                         {"targets", targets},
                         {"base", base}});
}

LoraAdapterConfig read_adapter_config(const std::string& path) {
  std::map<std::string, std::string> meta;
  lm::read_safetensors(path, &meta);
  if (meta["format"] != "scaletune-lora")
    throw std::runtime_error(path +
                             " is not an adapter written by scaletune finetune "
                             "(metadata format is not scaletune-lora)");
  LoraAdapterConfig c;
  c.rank = std::stoll(meta.at("rank"));
  c.alpha = std::stod(meta.at("alpha"));
  c.dropout = std::stod(meta.at("dropout"));
  c.targets.clear();
  std::stringstream ss(meta.at("targets"));
  for (std::string t; std::getline(ss, t, ',');) c.targets.push_back(t);
  return c;
}

void load_adapters(const std::string& path, LoraAdapters& adapters) {
  const auto tensors = lm::read_safetensors(path);
  torch::NoGradGuard no_grad;
  std::size_t used = 0;
  for (const auto& [name, layer] : adapters->layers()) {
    for (auto [suffix, param] :
         {std::pair<const char*, const torch::Tensor*>{".lora_A.weight", &layer->A},
          {".lora_B.weight", &layer->B}}) {
      const std::string key = kPeftPrefix + name + suffix;
      auto it = tensors.find(key);
      if (it == tensors.end())
        throw std::runtime_error(path + " has no " + key +
                                 " (the adapter was trained with other targets or layers)");
      auto t = from_float_tensor(it->second);
      if (t.sizes() != param->sizes())
        throw std::runtime_error(
            path + ": " + key + " has shape " + shape_text(it->second.shape) +
            "; the base and lora.rank need " +
            shape_text(std::vector<std::int64_t>(param->sizes().begin(), param->sizes().end())));
      param->copy_(t);
      ++used;
    }
  }
  if (used != tensors.size())
    throw std::runtime_error(path + " holds " + std::to_string(tensors.size()) +
                             " tensors but the configured targets use " + std::to_string(used) +
                             "; set lora.targets to the adapter's");
}

BaseModel load_base(const std::string& path) {
  if (path.empty())
    throw std::runtime_error(
        "no base model: set base.path or pass --base (a `scaletune train` "
        "output dir, a model.safetensors or a Hugging Face GPT-2 dir)");
  if (!fs::exists(path)) throw std::runtime_error("base model " + path + " does not exist");
  if (fs::is_directory(path)) {
    const fs::path dir(path);
    if (fs::exists(dir / "model.safetensors"))
      return load_safetensors_base((dir / "model.safetensors").string());
    if (fs::exists(dir / "checkpoint.pt"))
      return load_checkpoint_base((dir / "checkpoint.pt").string());
    throw std::runtime_error(path +
                             " has neither model.safetensors nor checkpoint.pt; train the "
                             "base with checkpoint.safetensors: true");
  }
  if (ends_with(path, ".pt")) return load_checkpoint_base(path);
  return load_safetensors_base(path);
}

std::pair<torch::Tensor, torch::Tensor> masked_loss_sum(lm::Gpt& model, const torch::Tensor& x,
                                                        const torch::Tensor& y,
                                                        const torch::Tensor& w) {
  auto logits = model->forward(x);  // (B, T, V)
  auto ce = F::cross_entropy(logits.view({-1, logits.size(-1)}), y.reshape({-1}),
                             F::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B*T)
  auto weight = w.reshape({-1});
  return {(ce * weight).sum(), weight.sum()};
}

nlohmann::json shape_config(const LmShape& s, const std::string& tokenizer) {
  nlohmann::json j;
  j["task"] = "lm";
  j["model"] = {{"n_layer", s.n_layer}, {"d_model", s.d_model}, {"n_head", s.n_head},
                {"d_ff", s.d_ff},       {"context", s.context}, {"vocab", s.vocab},
                {"rope", s.rope},       {"bias", s.bias}};
  j["data"] = {{"tokenizer", tokenizer}};
  return j;
}

void export_safetensors(const std::string& path, lm::Gpt& model, const BaseModel& base) {
  std::map<std::string, lm::FloatTensor> tensors;
  for (auto& item : model->named_parameters()) {
    bool transposed = false;
    const std::string name = lm::gpt2_name(item.key(), &transposed);
    tensors[name] = to_float_tensor(transposed ? item.value().t() : item.value());
  }
  lm::write_safetensors(path, tensors,
                        {{"format", "pt"},
                         {"layout", "gpt2"},
                         {"config", shape_config(base.shape, base.tokenizer).dump()}});
}

void export_checkpoint(const std::string& path, lm::Gpt& model, const BaseModel& base) {
  std::vector<torch::Tensor> flat;
  for (auto& p : lm::checkpoint_order(model))
    flat.push_back(p.detach().to(torch::kCPU).reshape({-1}));
  const torch::Tensor params = torch::cat(flat);
  nlohmann::json meta;
  meta["key"] = shape_config(base.shape, base.tokenizer);
  meta["step"] = 0;
  lm::write_checkpoint(path, {params, torch::zeros_like(params), torch::zeros_like(params), meta});
}

}  // namespace scaletune::trainer::lora
