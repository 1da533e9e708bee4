// Instruction data for LoRA fine-tuning: JSONL in the Alpaca convention or the chat `messages`
// form, the prompt templates, the built-in deterministic task set, tokenization with the loss
// masked to response tokens, and right-padded batches.
//
// Why right padding needs no attention mask here: the decoder is causal, so a real token never
// attends to the padding after it; padded positions only carry weight 0 in the loss. Prompts of
// a generation batch are right-padded too and each row is extended at its own length.
//
// Torch-free: token ids are ints in plain vectors; the trainer copies batches into tensors.
// Errors are std::runtime_error naming the file and line.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/lm/data.h"
#include "trainer/lora/lora_config.h"

namespace scaletune::trainer::lora {

// One piece of an example's text: prompt pieces are not trained on, responses are and end with
// the end-of-text token.
struct Segment {
  std::string text;
  bool response = false;
};

struct Example {
  std::vector<Segment> segments;
  std::string task;  // built-in task name, "alpaca" or "chat"
  // The prompt (everything before the last response) and the last response: what exact-match
  // evaluation generates from and compares against.
  std::string prompt() const;
  std::string answer() const;
};

// Renders an Alpaca record with `template_name` (alpaca | short; docs/lora.md shows both).
Example alpaca_example(const std::string& instruction, const std::string& input,
                       const std::string& output, const std::string& template_name);

// Parses one JSONL file: each line an object with `instruction`, optional `input`, `output`, or
// with `messages` [{role: system|user|assistant, content}] (the assistant turns are trained on).
// Blank lines are skipped. Throws std::runtime_error "FILE:LINE: what is wrong".
std::vector<Example> read_jsonl(const std::string& path, const std::string& template_name);

// The built-in tasks, deterministic in `config.seed`, distinct prompts:
//   copy     "Repeat the word."        abc   -> abc
//   reverse  "Reverse the word."       abc   -> cba
//   sort     "Sort the letters."       cab   -> abc
//   upper    "Uppercase the word."     abc   -> ABC
//   first    "First letter."           abc   -> a
//   last     "Last letter."            abc   -> c
//   add      "Add the numbers."        12+7  -> 19
//   context  "Answer from the context." "a=3 b=7 c=1. b?" -> 7
std::vector<Example> builtin_examples(const LoraBuiltinData& config,
                                      const std::string& template_name);

// Byte-level (end of text = 0, never in text) or GPT-2 BPE (<|endoftext|>).
class Tokenizer {
 public:
  static Tokenizer bytes();
  static Tokenizer gpt2(const std::string& bpe_dir);
  std::vector<int> encode(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;  // stops at end of text
  int end_of_text() const { return eot_; }
  std::int64_t vocab() const { return vocab_; }
  const std::string& name() const { return name_; }

 private:
  std::shared_ptr<const lm::Gpt2Bpe> bpe_;
  int eot_ = 0;
  std::int64_t vocab_ = 256;
  std::string name_ = "byte";
};

// An example as tokens: weight[t] = 1 when tokens[t] is a response token (or its end of text).
struct Encoded {
  std::vector<int> tokens;
  std::vector<std::uint8_t> weight;
  std::vector<int> prompt;  // the tokens before the last response (for generation)
  std::string answer;
  std::string task;
};

Encoded encode(const Example& example, const Tokenizer& tokenizer);

// Examples that fit `context` tokens (longer ones are dropped and counted).
struct Dataset {
  std::vector<Encoded> train, val;
  std::int64_t dropped = 0;  // longer than the context
  std::string description;
};

// Loads the configured data, tokenizes it, drops examples longer than `context` and splits off
// the validation set (val_path, or the last val_fraction after a seeded shuffle).
Dataset load_dataset(const LoraDataConfig& config, const Tokenizer& tokenizer,
                     std::int64_t context);

// A right-padded batch of next-token pairs: inputs x[b][t] = tokens[t], targets y[b][t] =
// tokens[t + 1], weight w[b][t] = weight[t + 1] (0 on padding), all (B, T) row-major.
struct Batch {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> x, y;
  std::vector<float> w;
};
Batch make_batch(const std::vector<const Encoded*>& examples, int pad);

}  // namespace scaletune::trainer::lora
