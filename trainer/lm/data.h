// Token data for the language-model trainer: tokenizers (byte-level, GPT-2 BPE), corpora (text
// files, memory-mapped uint16 .bin token files, the built-in Markov source with an exactly known
// entropy floor), the train/validation split and the deterministic, resumable data order.
//
// Torch-free: tokens are uint16 in caller-visible buffers; the trainer copies batches into
// tensors. Errors (missing files, bad tokenizer files) are std::runtime_error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trainer/lm/lm_config.h"

namespace scaletune::trainer::lm {

// A read-only run of tokens, owned (a vector) or memory-mapped (a .bin file).
class TokenBuffer {
 public:
  TokenBuffer() = default;
  explicit TokenBuffer(std::vector<std::uint16_t> tokens);
  static TokenBuffer map_file(const std::string& path);  // uint16 little-endian, nanoGPT .bin
  ~TokenBuffer();
  TokenBuffer(TokenBuffer&& other) noexcept;
  TokenBuffer& operator=(TokenBuffer&& other) noexcept;
  TokenBuffer(const TokenBuffer&) = delete;
  TokenBuffer& operator=(const TokenBuffer&) = delete;

  const std::uint16_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  // A view of [begin, begin + count) that keeps this buffer's storage alive.
  TokenBuffer slice(std::size_t begin, std::size_t count) const;

 private:
  struct Storage;
  std::shared_ptr<Storage> storage_;
  const std::uint16_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// GPT-2's byte-level BPE (Radford et al. 2019) from `encoder.json` and `vocab.bpe`. The
// pre-tokenizer follows GPT-2's pattern with ASCII character classes; any non-ASCII character
// counts as a letter (GPT-2 uses Unicode classes; they differ only on non-ASCII digits and
// punctuation).
class Gpt2Bpe {
 public:
  static Gpt2Bpe load(const std::string& dir);
  std::vector<int> encode(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  std::int64_t vocab_size() const { return static_cast<std::int64_t>(decoder_.size()); }
  int end_of_text() const { return eot_; }  // -1 when encoder.json has no <|endoftext|>

 private:
  std::vector<int> encode_word(const std::string& word) const;
  std::unordered_map<std::string, int> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank
  std::string byte_to_unicode_[256];
  std::unordered_map<std::string, unsigned char> unicode_to_byte_;
  int eot_ = -1;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

// GPT-2 pre-tokenization into words (exposed for tests).
std::vector<std::string> gpt2_pretokenize(const std::string& text);

// The built-in synthetic source (lm_config.h LmSyntheticSource).
struct MarkovSource {
  std::int64_t vocab = 0;
  std::vector<std::vector<std::pair<int, double>>> rows;  // successor, probability
  std::vector<double> stationary;                         // pi = pi P
  double entropy_rate = 0;  // sum_s pi_s H(P_s), nats/token: the best achievable loss
};
MarkovSource make_markov_source(const LmSyntheticSource& config);
std::vector<std::uint16_t> sample_markov(const MarkovSource& source, std::int64_t tokens,
                                         std::uint64_t seed);

struct Corpus {
  TokenBuffer train;
  TokenBuffer val;
  std::int64_t vocab = 0;                                           // tokenizer/source vocabulary
  double entropy_floor = std::numeric_limits<double>::quiet_NaN();  // synthetic source only
  std::string description;
};

// Loads (and tokenizes) what `config` names. Throws std::runtime_error naming the file.
Corpus load_corpus(const LmDataConfig& config);

// The order in which training windows of `context + 1` tokens are visited: epochs of shuffled
// non-overlapping windows, each epoch with its own random phase. Window `g` (the g-th sequence of
// the run, counted across all ranks) is a pure function of (seed, g), so a resumed run reads the
// same data and any number of ranks reads the same global batches.
class DataOrder {
 public:
  DataOrder(std::size_t tokens, std::int64_t context, std::uint64_t seed);
  std::size_t windows_per_epoch() const { return windows_; }
  // Start offset of sequence g.
  std::size_t window_start(std::int64_t g);

 private:
  std::size_t tokens_;
  std::int64_t context_;
  std::uint64_t seed_;
  std::size_t windows_;
  std::int64_t epoch_ = -1;
  std::size_t phase_ = 0;
  std::vector<std::uint32_t> permutation_;
};

// SplitMix64: seeds derived from (seed, purpose, index) without shared RNG state.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0);

}  // namespace scaletune::trainer::lm
