#include "trainer/lm/data.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

namespace scaletune::trainer::lm {

// ---- TokenBuffer -------------------------------------------------------------------------------

struct TokenBuffer::Storage {
  std::vector<std::uint16_t> owned;
  void* map = nullptr;
  std::size_t map_bytes = 0;
  ~Storage() {
    if (map) munmap(map, map_bytes);
  }
};

TokenBuffer::TokenBuffer(std::vector<std::uint16_t> tokens)
    : storage_(std::make_shared<Storage>()) {
  storage_->owned = std::move(tokens);
  data_ = storage_->owned.data();
  size_ = storage_->owned.size();
}

TokenBuffer TokenBuffer::map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open token file " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < 4 || st.st_size % 2 != 0) {
    ::close(fd);
    throw std::runtime_error(path +
                             " is not a uint16 token file (its size must be an even number of "
                             "bytes, at least 4)");
  }
  void* map = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw std::runtime_error("cannot memory-map " + path);
  TokenBuffer b;
  b.storage_ = std::make_shared<Storage>();
  b.storage_->map = map;
  b.storage_->map_bytes = static_cast<std::size_t>(st.st_size);
  b.data_ = static_cast<const std::uint16_t*>(map);
  b.size_ = static_cast<std::size_t>(st.st_size) / 2;
  return b;
}

TokenBuffer::~TokenBuffer() = default;
TokenBuffer::TokenBuffer(TokenBuffer&& other) noexcept = default;
TokenBuffer& TokenBuffer::operator=(TokenBuffer&& other) noexcept = default;

TokenBuffer TokenBuffer::slice(std::size_t begin, std::size_t count) const {
  TokenBuffer b;
  b.storage_ = storage_;
  b.data_ = data_ + begin;
  b.size_ = count;
  return b;
}

// ---- seeds -------------------------------------------------------------------------------------

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  auto splitmix = [](std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(seed) ^ a) ^ b);
}

namespace {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A text file, or the regular files of a directory in name order (one document each).
std::vector<std::string> text_documents(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error("data.path " + path + " does not exist");
  if (!fs::is_directory(path, ec)) return {read_text(path)};
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error("data.path " + path + " has no files");
  std::vector<std::string> docs;
  for (const auto& f : files) docs.push_back(read_text(f));
  return docs;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

enum class CharClass { kLetter, kNumber, kSpace, kOther };

// Class and byte length of the UTF-8 character at text[i].
std::pair<CharClass, std::size_t> char_at(const std::string& t, std::size_t i) {
  const auto c = static_cast<unsigned char>(t[i]);
  if (c >= 0x80) {
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return {CharClass::kLetter, std::min(len, t.size() - i)};
  }
  if (std::isalpha(c)) return {CharClass::kLetter, 1};
  if (std::isdigit(c)) return {CharClass::kNumber, 1};
  if (std::isspace(c)) return {CharClass::kSpace, 1};
  return {CharClass::kOther, 1};
}

}  // namespace

// ---- GPT-2 BPE ---------------------------------------------------------------------------------

// GPT-2 pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string> gpt2_pretokenize(const std::string& t) {
  std::vector<std::string> words;
  const std::size_t n = t.size();
  std::size_t i = 0;
  while (i < n) {
    if (t[i] == '\'') {
      bool matched = false;
      for (const char* s : {"s", "t", "re", "ve", "m", "ll", "d"}) {
        const std::size_t len = std::char_traits<char>::length(s);
        if (t.compare(i + 1, len, s) == 0) {
          words.push_back(t.substr(i, len + 1));
          i += len + 1;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    std::size_t j = i;
    if (t[i] == ' ' && i + 1 < n && char_at(t, i + 1).first != CharClass::kSpace) j = i + 1;
    const CharClass cls = char_at(t, j).first;
    if (cls != CharClass::kSpace) {
      std::size_t k = j;
      while (k < n) {
        const auto [c, len] = char_at(t, k);
        if (c != cls) break;
        k += len;
      }
      words.push_back(t.substr(i, k - i));
      i = k;
      continue;
    }
    std::size_t k = i;
    while (k < n && char_at(t, k).first == CharClass::kSpace) ++k;
    // \s+(?!\S): leave the last space to the next word when one follows.
    const std::size_t end = (k < n && k - i > 1) ? k - 1 : k;
    words.push_back(t.substr(i, end - i));
    i = end;
  }
  return words;
}

Gpt2Bpe Gpt2Bpe::load(const std::string& dir) {
  Gpt2Bpe bpe;
  // GPT-2's reversible byte -> printable-unicode table.
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool direct = std::find(printable.begin(), printable.end(), b) != printable.end();
    std::string s;
    append_utf8(s, direct ? static_cast<unsigned>(b) : static_cast<unsigned>(256 + extra++));
    bpe.byte_to_unicode_[b] = s;
    bpe.unicode_to_byte_[s] = static_cast<unsigned char>(b);
  }
  const std::string enc_path = dir + "/encoder.json", merges_path = dir + "/vocab.bpe";
  nlohmann::json enc;
  try {
    enc = nlohmann::json::parse(read_text(enc_path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(enc_path + " is not valid JSON: " + e.what());
  }
  if (!enc.is_object() || enc.empty())
    throw std::runtime_error(enc_path + " must be a JSON object mapping tokens to ids");
  for (const auto& [token, id] : enc.items()) {
    if (!id.is_number_integer() || id.get<int>() < 0 || id.get<int>() > 65535)
      throw std::runtime_error(enc_path + ": id of '" + token + "' must be an integer 0..65535");
    bpe.encoder_[token] = id.get<int>();
    const auto index = static_cast<std::size_t>(id.get<int>());
    if (bpe.decoder_.size() <= index) bpe.decoder_.resize(index + 1);
    bpe.decoder_[index] = token;
  }
  if (auto it = bpe.encoder_.find("<|endoftext|>"); it != bpe.encoder_.end()) bpe.eot_ = it->second;
  std::istringstream merges(read_text(merges_path));
  int rank = 0;
  for (std::string line; std::getline(merges, line);) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    if (line.find(' ') == std::string::npos)
      throw std::runtime_error(merges_path + ": merge line '" + line + "' is not 'left right'");
    bpe.merge_rank_.emplace(line, rank++);
  }
  return bpe;
}

std::vector<int> Gpt2Bpe::encode_word(const std::string& word) const {
  if (auto it = cache_.find(word); it != cache_.end()) return it->second;
  std::vector<std::string> parts;
  for (unsigned char c : word) parts.push_back(byte_to_unicode_[c]);
  // Merge the adjacent pair of lowest rank until none of the pairs is a known merge.
  while (parts.size() > 1) {
    int best = std::numeric_limits<int>::max();
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = merge_rank_.find(parts[i] + " " + parts[i + 1]);
      if (it != merge_rank_.end() && it->second < best) best = it->second, at = i;
    }
    if (best == std::numeric_limits<int>::max()) break;
    const std::string left = parts[at], right = parts[at + 1];
    std::vector<std::string> merged;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i + 1 < parts.size() && parts[i] == left && parts[i + 1] == right) {
        merged.push_back(left + right);
        ++i;
      } else {
        merged.push_back(parts[i]);
      }
    }
    parts = std::move(merged);
  }
  std::vector<int> ids;
  for (const auto& p : parts) {
    auto it = encoder_.find(p);
    if (it == encoder_.end())
      throw std::runtime_error("encoder.json has no entry for BPE symbol '" + p + "'");
    ids.push_back(it->second);
  }
  cache_.emplace(word, ids);
  return ids;
}

std::vector<int> Gpt2Bpe::encode(const std::string& text) const {
  std::vector<int> ids;
  for (const auto& w : gpt2_pretokenize(text)) {
    const auto part = encode_word(w);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  return ids;
}

std::string Gpt2Bpe::decode(const std::vector<int>& ids) const {
  std::string unicode;
  for (int id : ids) unicode += decoder_.at(static_cast<std::size_t>(id));
  std::string bytes;
  for (std::size_t i = 0; i < unicode.size();) {
    const std::size_t len = char_at(unicode, i).second;
    bytes += static_cast<char>(unicode_to_byte_.at(unicode.substr(i, len)));
    i += len;
  }
  return bytes;
}

// ---- Markov source -----------------------------------------------------------------------------

MarkovSource make_markov_source(const LmSyntheticSource& c) {
  MarkovSource m;
  m.vocab = c.vocab;
  const auto V = static_cast<std::size_t>(c.vocab);
  const auto k = static_cast<std::size_t>(std::min(c.branching, c.vocab));
  std::mt19937_64 rng(mix_seed(static_cast<std::uint64_t>(c.seed), 0x6d61726b6f76ull));
  std::gamma_distribution<double> gamma(c.concentration, 1.0);
  std::vector<int> others(V);
  m.rows.resize(V);
  for (std::size_t s = 0; s < V; ++s) {
    // Successor s+1 is always allowed, so the chain is irreducible (it can cycle through all).
    std::vector<int> succ = {static_cast<int>((s + 1) % V)};
    std::iota(others.begin(), others.end(), 0);
    std::swap(others[(s + 1) % V], others[V - 1]);
    for (std::size_t i = 0; i + 1 < k; ++i) {  // partial Fisher-Yates over the rest
      const std::size_t j = i + static_cast<std::size_t>(rng() % (V - 1 - i));
      std::swap(others[i], others[j]);
      succ.push_back(others[i]);
    }
    std::vector<double> w(succ.size());
    double sum = 0;
    for (auto& x : w) sum += (x = std::max(gamma(rng), 1e-300));
    for (std::size_t i = 0; i < succ.size(); ++i) m.rows[s].push_back({succ[i], w[i] / sum});
  }
  // Stationary distribution by iterating the lazy chain (P + I)/2: same fixed point as P, and
  // it converges even when P is periodic.
  std::vector<double> pi(V, 1.0 / static_cast<double>(V)), next(V);
  for (int it = 0; it < 200000; ++it) {
    std::fill(next.begin(), next.end(), 0.0);
    for (std::size_t s = 0; s < V; ++s) {
      next[s] += 0.5 * pi[s];
      for (const auto& [t, p] : m.rows[s]) next[static_cast<std::size_t>(t)] += 0.5 * pi[s] * p;
    }
    double diff = 0;
    for (std::size_t s = 0; s < V; ++s) diff += std::fabs(next[s] - pi[s]);
    pi.swap(next);
    if (diff < 1e-14) break;
  }
  m.stationary = pi;
  m.entropy_rate = 0;
  for (std::size_t s = 0; s < V; ++s) {
    double h = 0;
    for (const auto& [t, p] : m.rows[s])
      if (p > 0) h -= p * std::log(p);
    m.entropy_rate += pi[s] * h;
  }
  return m;
}

std::vector<std::uint16_t> sample_markov(const MarkovSource& m, std::int64_t tokens,
                                         std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto draw = [&](const auto& items, auto prob) {
    double u = uniform01(rng), acc = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      acc += prob(items[i], i);
      if (u < acc) return i;
    }
    return items.size() - 1;
  };
  std::vector<std::uint16_t> out(static_cast<std::size_t>(tokens));
  std::size_t s = draw(m.stationary, [](double p, std::size_t) { return p; });
  for (auto& tok : out) {
    tok = static_cast<std::uint16_t>(s);
    const auto& row = m.rows[s];
    s = static_cast<std::size_t>(
        row[draw(row, [](const std::pair<int, double>& e, std::size_t) { return e.second; })]
            .first);
  }
  return out;
}

// ---- corpora -----------------------------------------------------------------------------------

namespace {

std::vector<std::uint16_t> tokenize_documents(const std::vector<std::string>& docs,
                                              const LmDataConfig& c, const Gpt2Bpe* bpe) {
  std::vector<std::uint16_t> out;
  for (const auto& doc : docs) {
    if (bpe) {
      if (!out.empty() && bpe->end_of_text() >= 0)
        out.push_back(static_cast<std::uint16_t>(bpe->end_of_text()));
      for (int id : bpe->encode(doc)) out.push_back(static_cast<std::uint16_t>(id));
    } else {
      for (unsigned char ch : doc) out.push_back(ch);
    }
  }
  return out;
}

}  // namespace

Corpus load_corpus(const LmDataConfig& c) {
  Corpus corpus;
  TokenBuffer all, val;
  if (c.source == "synthetic") {
    const MarkovSource m = make_markov_source(c.synthetic);
    all = TokenBuffer(sample_markov(m, c.synthetic.tokens,
                                    mix_seed(static_cast<std::uint64_t>(c.synthetic.seed), 1)));
    corpus.vocab = c.synthetic.vocab;
    corpus.entropy_floor = m.entropy_rate;
    corpus.description = "synthetic Markov source (vocab " + std::to_string(c.synthetic.vocab) +
                         ", branching " + std::to_string(c.synthetic.branching) + ")";
  } else if (c.source == "bin") {
    all = TokenBuffer::map_file(c.path);
    if (!c.val_path.empty()) val = TokenBuffer::map_file(c.val_path);
    std::uint16_t top = 0;
    for (std::size_t i = 0; i < all.size(); ++i) top = std::max(top, all.data()[i]);
    corpus.vocab = static_cast<std::int64_t>(top) + 1;
    if (c.tokenizer == "gpt2") corpus.vocab = std::max<std::int64_t>(corpus.vocab, 50257);
    corpus.description = "token file " + c.path;
  } else {
    std::unique_ptr<Gpt2Bpe> bpe;
    if (c.tokenizer == "gpt2") bpe = std::make_unique<Gpt2Bpe>(Gpt2Bpe::load(c.bpe_dir));
    all = TokenBuffer(tokenize_documents(text_documents(c.path), c, bpe.get()));
    if (!c.val_path.empty())
      val = TokenBuffer(tokenize_documents(text_documents(c.val_path), c, bpe.get()));
    corpus.vocab = bpe ? bpe->vocab_size() : 256;
    corpus.description = "text " + c.path + (bpe ? " (GPT-2 BPE)" : " (bytes)");
  }
  if (val.size() == 0) {
    const auto n_val = static_cast<std::size_t>(std::ceil(c.val_fraction * all.size()));
    corpus.train = all.slice(0, all.size() - n_val);
    corpus.val = all.slice(all.size() - n_val, n_val);
  } else {
    corpus.train = all.slice(0, all.size());
    corpus.val = std::move(val);
  }
  return corpus;
}

// ---- data order --------------------------------------------------------------------------------

DataOrder::DataOrder(std::size_t tokens, std::int64_t context, std::uint64_t seed)
    : tokens_(tokens), context_(context), seed_(seed) {
  // Room for any phase in [0, context) plus the one-token target shift.
  const auto ctx = static_cast<std::size_t>(context);
  windows_ = tokens_ >= 2 * ctx ? tokens_ / ctx - 1 : 0;
  if (windows_ == 0)
    throw std::runtime_error("the training split has " + std::to_string(tokens) +
                             " tokens, fewer than two windows of model.context " +
                             std::to_string(context) + "; use more data or a shorter context");
}

std::size_t DataOrder::window_start(std::int64_t g) {
  const std::int64_t epoch = g / static_cast<std::int64_t>(windows_);
  if (epoch != epoch_) {
    std::mt19937_64 rng(mix_seed(seed_, 0x64617461ull, static_cast<std::uint64_t>(epoch)));
    permutation_.resize(windows_);
    std::iota(permutation_.begin(), permutation_.end(), 0u);
    for (std::size_t i = windows_ - 1; i > 0; --i)  // Fisher-Yates, fixed across platforms
      std::swap(permutation_[i], permutation_[static_cast<std::size_t>(rng() % (i + 1))]);
    phase_ = static_cast<std::size_t>(rng() % static_cast<std::uint64_t>(context_));
    epoch_ = epoch;
  }
  const std::size_t k =
      permutation_[static_cast<std::size_t>(g % static_cast<std::int64_t>(windows_))];
  return phase_ + k * static_cast<std::size_t>(context_);
}

}  // namespace scaletune::trainer::lm
