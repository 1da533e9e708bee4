// The config of one LoRA instruction fine-tuning run (`task: lora`), a plain struct read from
// YAML by orchestrator/config/binder.h; every key is documented in docs/lora.md. Also the
// closed-form trainable-parameter count and the rule that maps a full-training learning rate to
// a LoRA learning rate, so sweeps and `scaletune finetune` can use them without LibTorch.
//
// Torch-free on purpose: the config library, `scaletune validate` and the sweep orchestrator
// include it without LibTorch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/core/flops.h"
#include "trainer/lm/lm_config.h"

namespace scaletune::trainer {

// Linear layers an adapter can sit on, in GPT-2 names: attn.c_attn, attn.c_proj, mlp.c_fc and
// mlp.c_proj (the last two are both `mlp`).
inline const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"qkv", "attn_out", "mlp"};
  return names;
}

struct LoraBaseConfig {
  std::string path;                // our model.safetensors / checkpoint.pt / run dir, or a HF dir
  std::string tokenizer = "auto";  // auto (from the base) | byte | gpt2
  std::string bpe_dir;             // encoder.json + vocab.bpe (or vocab.json + merges.txt)

  template <class V>
  void visit(V& v) {
    v.field("path", path,
            "Base model: a `scaletune train` output dir, its model.safetensors or checkpoint.pt, "
            "or a Hugging Face GPT-2 dir (config.json + model.safetensors); --base sets it.");
    v.field("tokenizer", tokenizer, "Tokenizer; auto takes the base's (byte unless it says gpt2).")
        .one_of({"auto", "byte", "gpt2"});
    v.field("bpe_dir", bpe_dir, "GPT-2 BPE files (tokenizer gpt2); empty: the base's directory.");
  }
};

struct LoraAdapterConfig {
  std::string method = "lora";  // lora | full (full fine-tuning of every weight, for comparison)
  std::int64_t rank = 8;
  double alpha = 16;      // the update is scaled by alpha / rank (Hu et al. 2021)
  double dropout = 0.05;  // on the adapter's input only
  std::vector<std::string> targets = {"qkv", "attn_out", "mlp"};
  std::string load;  // an adapter.safetensors to start from (or just evaluate)

  template <class V>
  void visit(V& v) {
    v.field("method", method, "lora: train low-rank adapters; full: train every weight.")
        .one_of({"lora", "full"});
    v.field("rank", rank, "Adapter rank r.").min(1);
    v.field("alpha", alpha, "Scale numerator: the update is (alpha / r) B A x.").above(0.0);
    v.field("dropout", dropout, "Dropout on the adapter input.").min(0.0).below(1.0);
    v.field("targets", targets, "Adapted linears: qkv, attn_out, mlp (c_fc and c_proj).");
    v.field("load", load, "Adapter file (adapter.safetensors) to load onto the base first.");
  }
};

// The built-in deterministic instruction tasks (trainer/lora/instruct.h lists them).
struct LoraBuiltinData {
  std::vector<std::string> tasks = {"copy", "reverse", "sort", "upper"};
  std::int64_t examples = 4000;  // total, before the validation split
  std::int64_t min_len = 3;      // word length range of the string tasks
  std::int64_t max_len = 5;
  std::int64_t seed = 7;  // fixed: the task set does not vary with run seeds

  template <class V>
  void visit(V& v) {
    v.field("tasks", tasks, "Tasks: copy, reverse, sort, upper, first, last, add, context.");
    v.field("examples", examples, "Distinct examples generated (train + validation).").min(2);
    v.field("min_len", min_len, "Shortest word of the string tasks.").min(1);
    v.field("max_len", max_len, "Longest word of the string tasks.").min(1);
    v.field("seed", seed, "Seed of the generator.");
  }
};

struct LoraDataConfig {
  std::string source = "builtin";  // builtin | jsonl
  std::string path;                // JSONL: Alpaca {instruction, input, output} or {messages}
  std::string val_path;            // optional separate validation JSONL
  double val_fraction = 0.1;       // held out when val_path is empty
  std::string prompt_template = "alpaca";  // alpaca | short (docs/lora.md shows both)
  LoraBuiltinData builtin;

  template <class V>
  void visit(V& v) {
    v.field("source", source, "builtin tasks or a JSONL file.").one_of({"builtin", "jsonl"});
    v.field("path", path, "Instruction JSONL (source jsonl); --data sets it.");
    v.field("val_path", val_path, "Separate validation JSONL; empty holds out val_fraction.");
    v.field("val_fraction", val_fraction, "Fraction of the examples held out for validation.")
        .above(0.0)
        .below(1.0);
    v.field("template", prompt_template, "Prompt template.").one_of({"alpaca", "short", "compact"});
    v.field("builtin", builtin, "The built-in task set (source builtin).");
  }
};

// How a full-training learning rate (from --hparams) becomes the LoRA learning rate:
// lr_lora = lr_multiplier * lr_full. The default 10 follows the common finding that LoRA's best
// learning rate is about an order of magnitude above full fine-tuning's (Biderman et al. 2024,
// "LoRA Learns Less and Forgets Less"); set it to 1 for method full.
struct LoraHparamsConfig {
  double lr_multiplier = 10.0;
  double compute = 0;  // FLOPs at which a fit's laws are read (a fit JSON); 0: the base's cost

  template <class V>
  void visit(V& v) {
    v.field("lr_multiplier", lr_multiplier,
            "LoRA lr = this * the full-training lr from --hparams (ignored without --hparams).")
        .above(0.0);
    v.field("compute", compute, "Compute (FLOPs) at which to read a fit's laws; 0: the base run's.")
        .min(0.0);
  }
};

struct LoraTrainConfig {
  std::int64_t batch_size = 32;  // examples per step
  std::int64_t steps = 300;      // optimizer steps; 0 only evaluates (with adapter.load)
  double max_loss_increase = 3.0;

  template <class V>
  void visit(V& v) {
    v.field("batch_size", batch_size, "Examples per optimizer step.").min(1);
    v.field("steps", steps, "Optimizer steps; 0 evaluates only.").min(0);
    v.field("max_loss_increase", max_loss_increase,
            "Stop as diverged when the running mean of the training loss exceeds the starting loss "
            "(the base's validation loss, else the first step's) by this many nats.")
        .above(0.0);
  }
};

struct LoraEvalConfig {
  std::int64_t every = 0;       // steps between validation losses; 0: before and after only
  std::int64_t examples = 200;  // held-out instructions answered by greedy generation
  std::int64_t max_new_tokens = 32;
  bool before = true;  // also evaluate the base before fine-tuning

  template <class V>
  void visit(V& v) {
    v.field("every", every, "Steps between validation losses; 0: before and after only.").min(0);
    v.field("examples", examples, "Held-out instructions for exact-match accuracy.").min(0);
    v.field("max_new_tokens", max_new_tokens, "Generation limit per answer.").min(1);
    v.field("before", before, "Also evaluate the base model before fine-tuning.");
  }
};

struct LoraExportConfig {
  bool adapter = true;      // OUT/adapter.safetensors
  bool merged = true;       // OUT/model.safetensors: adapters merged, GPT-2 names
  bool checkpoint = false;  // OUT/model.pt: merged, in the trainer's checkpoint archive

  template <class V>
  void visit(V& v) {
    v.field("adapter", adapter, "Write the adapter alone as OUT/adapter.safetensors.");
    v.field("merged", merged, "Write the merged model as OUT/model.safetensors (GPT-2 names).");
    v.field("checkpoint", checkpoint,
            "Write the merged model as OUT/model.pt (checkpoint format).");
  }
};

struct LoraConfig {
  std::string task = "lora";
  std::int64_t seed = 0;
  int threads = 0;
  std::string device = "auto";
  std::int64_t log_every = 20;
  LoraBaseConfig base;
  LoraAdapterConfig lora;
  LoraDataConfig data;
  LmOptimConfig optim = [] {
    LmOptimConfig o;
    o.lr = 2e-3;
    o.weight_decay = 0.0;  // adapters start at zero; decaying them only pulls towards the base
    o.warmup_fraction = 0.05;
    return o;
  }();
  LoraHparamsConfig hparams;
  LoraTrainConfig train;
  LoraEvalConfig eval;
  LoraExportConfig output;

  template <class V>
  void visit(V& v) {
    v.field("task", task, "Trainer: lora.").one_of({"lora"});
    v.field("seed", seed, "Seed for adapter init, data order and dropout.");
    v.field("threads", threads, "Intra-op threads; 0: $OMP_NUM_THREADS, else 1.").min(0);
    v.field("device", device, "Device.").one_of({"auto", "cpu", "cuda"});
    v.field("log_every", log_every, "Steps between progress lines.").min(1);
    v.field("base", base, "The pretrained model.");
    v.field("lora", lora, "Adapters.");
    v.field("data", data, "Instruction data.");
    v.field("optim", optim, "AdamW over the adapter parameters and the schedule.");
    v.field("hparams", hparams, "How --hparams settings map onto this run.");
    v.field("train", train, "Batch and run length.");
    v.field("eval", eval, "Validation loss and exact-match accuracy.");
    v.field("export", output, "What is written to OUT.");
  }

  void validate(std::vector<std::string>& errors) const {
    const auto& names = lora_target_names();
    if (lora.method == "lora" && lora.targets.empty())
      errors.push_back("lora.targets is empty; choose from qkv, attn_out, mlp");
    for (const auto& t : lora.targets)
      if (std::find(names.begin(), names.end(), t) == names.end())
        errors.push_back("lora.targets: unknown target '" + t +
                         "'; choose from qkv, attn_out, mlp");
    if (data.source == "jsonl" && data.path.empty())
      errors.push_back("data.path (a JSONL file) is required for data.source jsonl; or --data");
    if (data.builtin.min_len > data.builtin.max_len)
      errors.push_back("data.builtin.min_len must not exceed data.builtin.max_len");
    static const std::vector<std::string> tasks = {"copy",  "reverse", "sort", "upper",
                                                   "first", "last",    "add",  "context"};
    for (const auto& t : data.builtin.tasks)
      if (std::find(tasks.begin(), tasks.end(), t) == tasks.end())
        errors.push_back("data.builtin.tasks: unknown task '" + t +
                         "'; choose from copy, reverse, sort, upper, first, last, add, context");
    if (lora.method == "full" && !lora.load.empty())
      errors.push_back("lora.load needs method lora");
  }
};

// Trainable parameters of rank-r adapters on `targets` of `shape`: r (in + out) per adapted
// linear, per block (A is r x in, B is out x r).
inline std::int64_t lora_trainable_params(const LmShape& s, std::int64_t rank,
                                          const std::vector<std::string>& targets) {
  std::int64_t per_block = 0;
  for (const auto& t : targets) {
    if (t == "qkv") per_block += rank * (s.d_model + 3 * s.d_model);
    if (t == "attn_out") per_block += rank * (s.d_model + s.d_model);
    if (t == "mlp") per_block += 2 * rank * (s.d_model + s.d_ff);
  }
  return s.n_layer * per_block;
}

// The learning rate of this run given a full-training lr (docs/lora.md "Tuned settings").
inline double lora_lr_from_full(const LoraConfig& c, double full_lr) {
  return c.lora.method == "full" ? full_lr : c.hparams.lr_multiplier * full_lr;
}

}  // namespace scaletune::trainer
