// The config of one GPT language-model training run (`task: lm`), a plain struct read from YAML
// by orchestrator/config/binder.h. Every key is documented in docs/lm-trainer.md.
//
// Torch-free on purpose: the config library, `scaletune validate` and the sweep orchestrator
// include it without LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/core/flops.h"

namespace scaletune::trainer {

struct LmModelConfig {
  std::int64_t n_layer = 4;
  std::int64_t d_model = 128;
  std::int64_t n_head = 4;
  std::int64_t d_ff = 0;  // 0: 4 * d_model
  std::int64_t context = 128;
  std::int64_t vocab = 0;  // 0: the tokenizer's (or synthetic source's) vocabulary
  double dropout = 0.0;
  bool rope = false;  // rotary position embedding instead of learned positions
  bool bias = true;   // biases in the linear layers

  template <class V>
  void visit(V& v) {
    v.field("n_layer", n_layer, "Transformer blocks.").min(1);
    v.field("d_model", d_model, "Residual stream width.").min(1);
    v.field("n_head", n_head, "Attention heads (d_model must be divisible by it).").min(1);
    v.field("d_ff", d_ff, "MLP hidden width; 0 means 4 * d_model.").min(0);
    v.field("context", context, "Sequence length in tokens.").min(2);
    v.field("vocab", vocab, "Vocabulary size; 0 takes the tokenizer's.").min(0);
    v.field("dropout", dropout, "Dropout probability (attention, residual, embedding).")
        .min(0.0)
        .below(1.0);
    v.field("rope", rope, "Rotary position embedding instead of a learned position table.");
    v.field("bias", bias, "Biases in linear layers.");
  }
};

// A seeded first-order Markov source over `vocab` symbols: each symbol has `branching`
// successors with Dirichlet(`concentration`) probabilities. Its entropy rate (the best
// achievable loss) is computed exactly and reported as `entropy_floor`.
struct LmSyntheticSource {
  std::int64_t vocab = 256;
  std::int64_t branching = 8;
  double concentration = 1.0;
  std::int64_t tokens = 1000000;  // corpus length (train + validation)
  std::int64_t seed = 1234;

  template <class V>
  void visit(V& v) {
    v.field("vocab", vocab, "Symbols of the source.").min(2).max(65535);
    v.field("branching", branching, "Successors of each symbol.").min(1);
    v.field("concentration", concentration, "Dirichlet concentration of transition rows.")
        .above(0.0);
    v.field("tokens", tokens, "Corpus length in tokens (train + validation).").min(16);
    v.field("seed", seed, "Seed of the source (fixed: the corpus does not vary with run seeds).");
  }
};

struct LmDataConfig {
  std::string source = "synthetic";  // synthetic | text | bin
  std::string path;                  // text file or directory; or a uint16 .bin token file
  std::string val_path;              // optional separate validation .bin/text
  std::string tokenizer = "byte";    // byte | gpt2
  std::string bpe_dir;               // directory with encoder.json and vocab.bpe (gpt2)
  double val_fraction = 0.05;        // tail of the corpus held out when val_path is empty
  LmSyntheticSource synthetic;

  template <class V>
  void visit(V& v) {
    v.field("source", source, "Where tokens come from.").one_of({"synthetic", "text", "bin"});
    v.field("path", path, "Text file or directory (text), or uint16 token file (bin).");
    v.field("val_path", val_path, "Separate validation data; empty holds out val_fraction.");
    v.field("tokenizer", tokenizer, "Tokenizer for text: byte-level or GPT-2 BPE.")
        .one_of({"byte", "gpt2"});
    v.field("bpe_dir", bpe_dir, "Directory with encoder.json and vocab.bpe (tokenizer gpt2).");
    v.field("val_fraction", val_fraction, "Fraction of the corpus held out for validation.")
        .above(0.0)
        .below(1.0);
    v.field("synthetic", synthetic, "The built-in Markov source (source: synthetic).");
  }
};

struct LmOptimConfig {
  double lr = 1e-3;               // peak learning rate
  double min_lr_fraction = 0.1;   // final lr = min_lr_fraction * lr
  double warmup_fraction = 0.05;  // linear warmup over this fraction of the steps
  std::string schedule = "cosine";
  double weight_decay = 0.1;  // decoupled; not applied to norms, biases, embeddings
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;  // max global gradient norm; 0 disables

  template <class V>
  void visit(V& v) {
    v.field("lr", lr, "Peak learning rate after warmup.").above(0.0);
    v.field("min_lr_fraction", min_lr_fraction, "Final lr as a fraction of the peak.")
        .min(0.0)
        .max(1.0);
    v.field("warmup_fraction", warmup_fraction, "Linear warmup as a fraction of all steps.")
        .min(0.0)
        .below(1.0);
    v.field("schedule", schedule, "Decay after warmup.").one_of({"cosine", "linear", "constant"});
    v.field("weight_decay", weight_decay, "AdamW decoupled weight decay.").min(0.0);
    v.field("beta1", beta1, "AdamW beta1.").min(0.0).below(1.0);
    v.field("beta2", beta2, "AdamW beta2.").min(0.0).below(1.0);
    v.field("eps", eps, "AdamW epsilon.").above(0.0);
    v.field("grad_clip", grad_clip, "Clip the global gradient norm to this; 0 disables.").min(0.0);
  }
};

struct LmTrainConfig {
  std::int64_t batch_size = 32;    // global batch in sequences (independent of the rank count)
  std::int64_t micro_batch = 0;    // sequences per forward on one rank; 0: the rank's whole share
  double tokens = 0;               // run length D in tokens ...
  double flops = 0;                // ... or a training FLOP budget (Chinchilla count)
  double max_loss_increase = 3.0;  // diverged when the loss exceeds the first loss by this

  template <class V>
  void visit(V& v) {
    v.field("batch_size", batch_size, "Global batch in sequences, split across ranks.").min(1);
    v.field("micro_batch", micro_batch, "Sequences per forward on one rank; 0: all of its share.")
        .min(0);
    v.field("tokens", tokens, "Training tokens D (set this or flops).").min(0.0);
    v.field("flops", flops, "Training FLOP budget (set this or tokens).").min(0.0);
    v.field("max_loss_increase", max_loss_increase,
            "Stop as diverged when the loss exceeds the first step's by this many nats.")
        .above(0.0);
  }
};

struct LmEvalConfig {
  std::int64_t every = 0;       // steps between validation evaluations; 0: only at the end
  std::int64_t tokens = 65536;  // validation tokens per evaluation

  template <class V>
  void visit(V& v) {
    v.field("every", every, "Steps between validation evaluations; 0: only at the end.").min(0);
    v.field("tokens", tokens, "Held-out tokens per evaluation.").min(1);
  }
};

struct LmCheckpointConfig {
  std::int64_t every = 0;    // steps between checkpoints; 0: only on a stop signal
  bool safetensors = false;  // export OUT/model.safetensors (GPT-2 names) at the end

  template <class V>
  void visit(V& v) {
    v.field("every", every, "Steps between checkpoints; 0: only when asked to stop.").min(0);
    v.field("safetensors", safetensors, "Export the final model as OUT/model.safetensors.");
  }
};

// Data-parallel gradient all-reduce (more than one rank).
struct LmDistConfig {
  bool overlap = true;    // all-reduce buckets during backward (false: after it)
  double bucket_mb = 25;  // bucket cap in MB (2^20 bytes), whole parameters per bucket

  template <class V>
  void visit(V& v) {
    v.field("overlap", overlap,
            "All-reduce gradient buckets while backward runs; false: all after backward.");
    v.field("bucket_mb", bucket_mb, "Gradient bucket cap in MB (whole parameters per bucket).")
        .above(0.0);
  }
};

struct LmConfig {
  std::string task = "lm";
  std::int64_t seed = 0;        // init, data order and dropout (a sweep derives one per trial)
  int threads = 0;              // intra-op threads; 0: $OMP_NUM_THREADS, else 1
  std::string device = "auto";  // auto | cpu | cuda
  std::string dtype = "auto";   // auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
  std::int64_t log_every = 10;  // steps between progress lines
  double peak_flops = 0;        // per-device peak FLOP/s for MFU; 0: known GPUs only
  LmModelConfig model;
  LmDataConfig data;
  LmOptimConfig optim;
  LmTrainConfig train;
  LmEvalConfig eval;
  LmCheckpointConfig checkpoint;
  LmDistConfig dist;

  template <class V>
  void visit(V& v) {
    v.field("task", task, "Trainer: lm.").one_of({"lm"});
    v.field("seed", seed, "Seed for initialisation, data order and dropout.");
    v.field("threads", threads, "Intra-op threads per rank; 0: $OMP_NUM_THREADS, else 1.").min(0);
    v.field("device", device, "Device.").one_of({"auto", "cpu", "cuda"});
    v.field("dtype", dtype, "Compute precision.").one_of({"auto", "fp32", "bf16"});
    v.field("log_every", log_every, "Steps between progress lines.").min(1);
    v.field("peak_flops", peak_flops, "Peak FLOP/s of one device for MFU; 0: known GPUs only.")
        .min(0.0);
    v.field("model", model, "Decoder shape.");
    v.field("data", data, "Training data.");
    v.field("optim", optim, "AdamW and the learning-rate schedule.");
    v.field("train", train, "Batch and run length.");
    v.field("eval", eval, "Validation.");
    v.field("checkpoint", checkpoint, "Checkpoints and export.");
    v.field("dist", dist, "Data-parallel gradient all-reduce.");
  }

  void validate(std::vector<std::string>& errors) const {
    if (model.d_model % model.n_head != 0)
      errors.push_back("model.d_model (" + std::to_string(model.d_model) +
                       ") must be divisible by model.n_head (" + std::to_string(model.n_head) +
                       ")");
    else if (model.rope && (model.d_model / model.n_head) % 2 != 0)
      errors.push_back("model.rope needs an even head size (d_model / n_head)");
    if ((train.tokens > 0) == (train.flops > 0))
      errors.push_back("set exactly one of train.tokens and train.flops (the run length)");
    if (train.micro_batch > 0 && train.batch_size % train.micro_batch != 0)
      errors.push_back("train.batch_size (" + std::to_string(train.batch_size) +
                       ") must be a multiple of train.micro_batch (" +
                       std::to_string(train.micro_batch) + ")");
    if (data.source != "synthetic" && data.path.empty())
      errors.push_back("data.path is required for data.source " + data.source);
    if (data.tokenizer == "gpt2" && data.bpe_dir.empty() && data.source == "text")
      errors.push_back("data.bpe_dir (encoder.json + vocab.bpe) is required for tokenizer gpt2");
  }

  // The decoder shape for a tokenizer of `data_vocab` symbols.
  LmShape shape(std::int64_t data_vocab) const {
    LmShape s;
    s.n_layer = model.n_layer;
    s.d_model = model.d_model;
    s.n_head = model.n_head;
    s.d_ff = model.d_ff > 0 ? model.d_ff : 4 * model.d_model;
    s.context = model.context;
    s.vocab = model.vocab > 0 ? model.vocab : data_vocab;
    s.rope = model.rope;
    s.bias = model.bias;
    return s;
  }
};

}  // namespace scaletune::trainer
