#include "trainer/lora/instruct.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <unordered_set>

namespace scaletune::trainer::lora {
namespace {

// Stanford Alpaca's two prompts (Taori et al. 2023), verbatim.
constexpr const char* kAlpacaInput =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n";
constexpr const char* kAlpacaNoInput =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n";

std::string render_prompt(const std::string& instruction, const std::string& input,
                          const std::string& template_name) {
  if (template_name == "compact")
    return instruction + " " + (input.empty() ? "" : input + " ") + "= ";
  if (template_name == "short")
    return "Instruction: " + instruction + "\n" + (input.empty() ? "" : "Input: " + input + "\n") +
           "Response: ";
  if (input.empty()) return kAlpacaNoInput + instruction + "\n\n### Response:\n";
  return kAlpacaInput + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

std::string where(const std::string& path, std::size_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

std::string string_field(const nlohmann::json& j, const char* key, bool required,
                         const std::string& at) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      throw std::runtime_error(at + "missing \"" + std::string(key) +
                               "\" (an Alpaca record needs \"instruction\" and \"output\", a "
                               "chat record needs \"messages\")");
    return {};
  }
  if (!it->is_string())
    throw std::runtime_error(at + "\"" + std::string(key) + "\" must be a string, not " +
                             it->type_name());
  return it->get<std::string>();
}

Example chat_example(const nlohmann::json& messages, const std::string& at) {
  if (!messages.is_array() || messages.empty())
    throw std::runtime_error(at + "\"messages\" must be a non-empty array of {role, content}");
  Example e;
  e.task = "chat";
  bool any_assistant = false;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string mat = at + "messages[" + std::to_string(i) + "]: ";
    if (!m.is_object()) throw std::runtime_error(mat + "must be an object {role, content}");
    const std::string role = string_field(m, "role", true, mat);
    const std::string content = string_field(m, "content", true, mat);
    if (role == "system") {
      e.segments.push_back({"System: " + content + "\n", false});
    } else if (role == "user") {
      e.segments.push_back({"User: " + content + "\n", false});
    } else if (role == "assistant") {
      e.segments.push_back({"Assistant: ", false});
      e.segments.push_back({content, true});
      e.segments.push_back({"\n", false});
      any_assistant = true;
    } else {
      throw std::runtime_error(mat + "unknown role '" + role +
                               "'; expected system, user or assistant");
    }
  }
  if (!any_assistant) throw std::runtime_error(at + "no assistant message: nothing to train on");
  while (!e.segments.empty() && !e.segments.back().response) e.segments.pop_back();
  return e;
}

std::string random_word(std::mt19937_64& rng, std::int64_t min_len, std::int64_t max_len) {
  std::uniform_int_distribution<std::int64_t> len(min_len, max_len);
  std::uniform_int_distribution<int> letter(0, 25);
  std::string w(static_cast<std::size_t>(len(rng)), 'a');
  for (auto& c : w) c = static_cast<char>('a' + letter(rng));
  return w;
}

// One example of `task` as (instruction, input, output).
std::array<std::string, 3> make_task(const std::string& task, std::mt19937_64& rng,
                                     const LoraBuiltinData& c) {
  if (task == "copy") {
    const auto w = random_word(rng, c.min_len, c.max_len);
    return {"Repeat the word.", w, w};
  }
  if (task == "reverse") {
    const auto w = random_word(rng, c.min_len, c.max_len);
    return {"Reverse the word.", w, std::string(w.rbegin(), w.rend())};
  }
  if (task == "sort") {
    const auto w = random_word(rng, c.min_len, c.max_len);
    auto s = w;
    std::sort(s.begin(), s.end());
    return {"Sort the letters.", w, s};
  }
  if (task == "upper") {
    const auto w = random_word(rng, c.min_len, c.max_len);
    auto u = w;
    for (auto& ch : u) ch = static_cast<char>(ch - 'a' + 'A');
    return {"Uppercase the word.", w, u};
  }
  if (task == "first") {
    const auto w = random_word(rng, c.min_len, c.max_len);
    return {"First letter.", w, w.substr(0, 1)};
  }
  if (task == "last") {
    const auto w = random_word(rng, c.min_len, c.max_len);
    return {"Last letter.", w, w.substr(w.size() - 1)};
  }
  if (task == "add") {
    std::uniform_int_distribution<int> n(0, 99);
    const int a = n(rng), b = n(rng);
    return {"Add the numbers.", std::to_string(a) + "+" + std::to_string(b), std::to_string(a + b)};
  }
  if (task == "context") {
    std::string keys = "abcdefghijklmnopqrstuvwxyz";
    std::shuffle(keys.begin(), keys.end(), rng);
    std::uniform_int_distribution<int> digit(0, 9), pick(0, 2);
    std::string ctx, value;
    const int asked = pick(rng);
    for (int k = 0; k < 3; ++k) {
      const std::string v = std::to_string(digit(rng));
      ctx += (k ? " " : "") + std::string(1, keys[static_cast<std::size_t>(k)]) + "=" + v;
      if (k == asked) value = v;
    }
    return {"Answer from the context.",
            ctx + ". " + std::string(1, keys[static_cast<std::size_t>(asked)]) + "?", value};
  }
  throw std::invalid_argument(
      "unknown built-in task '" + task +
      "'; choose from copy, reverse, sort, upper, first, last, add, context");
}

}  // namespace

std::string Example::prompt() const {
  std::string p;
  std::size_t last = segments.size();
  for (std::size_t i = segments.size(); i-- > 0;)
    if (segments[i].response) {
      last = i;
      break;
    }
  for (std::size_t i = 0; i < last; ++i) p += segments[i].text;
  return p;
}

std::string Example::answer() const {
  for (std::size_t i = segments.size(); i-- > 0;)
    if (segments[i].response) return segments[i].text;
  return {};
}

Example alpaca_example(const std::string& instruction, const std::string& input,
                       const std::string& output, const std::string& template_name) {
  Example e;
  e.task = "alpaca";
  e.segments.push_back({render_prompt(instruction, input, template_name), false});
  e.segments.push_back({output, true});
  return e;
}

std::vector<Example> read_jsonl(const std::string& path, const std::string& template_name) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read instruction data " + path + ": check the path");
  std::vector<Example> out;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = where(path, n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(at + "not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw std::runtime_error(at + "each line must be a JSON object");
    if (j.contains("messages")) {
      out.push_back(chat_example(j["messages"], at));
      continue;
    }
    const std::string instruction = string_field(j, "instruction", true, at);
    const std::string input = string_field(j, "input", false, at);
    const std::string output = string_field(j, "output", true, at);
    out.push_back(alpaca_example(instruction, input, output, template_name));
  }
  if (out.empty()) throw std::runtime_error(path + ": no examples (the file has no records)");
  return out;
}

std::vector<Example> builtin_examples(const LoraBuiltinData& c, const std::string& template_name) {
  if (c.tasks.empty()) throw std::invalid_argument("data.builtin.tasks is empty");
  std::mt19937_64 rng(static_cast<std::uint64_t>(c.seed));
  std::vector<Example> out;
  std::unordered_set<std::string> seen;
  const std::int64_t max_attempts = 50 * c.examples;
  for (std::int64_t attempt = 0;
       static_cast<std::int64_t>(out.size()) < c.examples && attempt < max_attempts; ++attempt) {
    const std::string& task = c.tasks[static_cast<std::size_t>(attempt) % c.tasks.size()];
    const auto [instruction, input, output] = make_task(task, rng, c);
    if (!seen.insert(instruction + "\n" + input).second) continue;  // distinct prompts
    Example e = alpaca_example(instruction, input, output, template_name);
    e.task = task;
    out.push_back(std::move(e));
  }
  return out;
}

Tokenizer Tokenizer::bytes() { return Tokenizer(); }

Tokenizer Tokenizer::gpt2(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string bpe_dir = dir;
  // Hugging Face names the same two files vocab.json and merges.txt.
  if (!fs::exists(dir + "/encoder.json") && fs::exists(dir + "/vocab.json") &&
      fs::exists(dir + "/merges.txt")) {
    const fs::path tmp =
        fs::temp_directory_path() /
        ("scaletune-bpe-" + std::to_string(std::hash<std::string>{}(fs::absolute(dir).string())));
    fs::create_directories(tmp);
    for (const auto& [from, to] :
         {std::pair<const char*, const char*>{"vocab.json", "encoder.json"},
          {"merges.txt", "vocab.bpe"}}) {
      const fs::path link = tmp / to;
      std::error_code ec;
      fs::remove(link, ec);
      fs::create_symlink(fs::absolute(fs::path(dir) / from), link);
    }
    bpe_dir = tmp.string();
  }
  Tokenizer t;
  t.bpe_ = std::make_shared<const lm::Gpt2Bpe>(lm::Gpt2Bpe::load(bpe_dir));
  t.eot_ = t.bpe_->end_of_text();
  if (t.eot_ < 0) throw std::runtime_error(dir + ": the BPE vocabulary has no <|endoftext|> token");
  t.vocab_ = t.bpe_->vocab_size();
  t.name_ = "gpt2";
  return t;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  if (bpe_) return bpe_->encode(text);
  std::vector<int> ids;
  ids.reserve(text.size());
  for (unsigned char c : text)
    if (c != 0) ids.push_back(c);  // NUL is the end-of-text token
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::vector<int> kept;
  for (int id : ids) {
    if (id == eot_) break;
    kept.push_back(id);
  }
  if (bpe_) return bpe_->decode(kept);
  std::string s;
  for (int id : kept) s.push_back(static_cast<char>(id));
  return s;
}

Encoded encode(const Example& example, const Tokenizer& tok) {
  Encoded e;
  std::size_t last = 0;
  for (std::size_t i = 0; i < example.segments.size(); ++i)
    if (example.segments[i].response) last = i;
  for (std::size_t i = 0; i < example.segments.size(); ++i) {
    const Segment& s = example.segments[i];
    if (i == last) e.prompt = e.tokens;
    auto ids = tok.encode(s.text);
    if (s.response) ids.push_back(tok.end_of_text());
    e.tokens.insert(e.tokens.end(), ids.begin(), ids.end());
    e.weight.insert(e.weight.end(), ids.size(), s.response ? 1 : 0);
  }
  e.answer = example.answer();
  e.task = example.task;
  return e;
}

Dataset load_dataset(const LoraDataConfig& c, const Tokenizer& tok, std::int64_t context) {
  Dataset d;
  std::vector<Example> train, val;
  if (c.source == "builtin") {
    train = builtin_examples(c.builtin, c.prompt_template);
    std::string tasks;
    for (const auto& t : c.builtin.tasks) tasks += (tasks.empty() ? "" : ",") + t;
    d.description = "built-in tasks " + tasks;
  } else {
    train = read_jsonl(c.path, c.prompt_template);
    d.description = c.path;
    if (!c.val_path.empty()) val = read_jsonl(c.val_path, c.prompt_template);
  }
  if (val.empty()) {
    if (c.source == "jsonl") {  // files are often sorted by topic; built-in ones are random
      std::mt19937_64 rng(0x5eed);
      std::shuffle(train.begin(), train.end(), rng);
    }
    auto n_val = static_cast<std::size_t>(
        std::max<double>(1.0, std::round(c.val_fraction * static_cast<double>(train.size()))));
    if (train.size() < 2)
      throw std::runtime_error(d.description + ": need at least 2 examples to hold one out");
    n_val = std::min(n_val, train.size() - 1);
    val.assign(train.end() - static_cast<std::ptrdiff_t>(n_val), train.end());
    train.resize(train.size() - n_val);
  }
  // A sequence of L tokens gives L - 1 next-token pairs; it fits when L - 1 <= context.
  auto keep = [&](const std::vector<Example>& in, std::vector<Encoded>& out) {
    for (const auto& ex : in) {
      Encoded e = encode(ex, tok);
      if (static_cast<std::int64_t>(e.tokens.size()) - 1 > context) {
        ++d.dropped;
        continue;
      }
      out.push_back(std::move(e));
    }
  };
  keep(train, d.train);
  keep(val, d.val);
  if (d.train.empty() || d.val.empty())
    throw std::runtime_error(d.description + ": no example fits the model's context of " +
                             std::to_string(context) + " tokens");
  return d;
}

Batch make_batch(const std::vector<const Encoded*>& examples, int pad) {
  Batch b;
  b.rows = static_cast<std::int64_t>(examples.size());
  for (const auto* e : examples)
    b.cols = std::max<std::int64_t>(b.cols, static_cast<std::int64_t>(e->tokens.size()) - 1);
  const auto n = static_cast<std::size_t>(b.rows * b.cols);
  b.x.assign(n, pad);
  b.y.assign(n, pad);
  b.w.assign(n, 0.0f);
  for (std::int64_t r = 0; r < b.rows; ++r) {
    const Encoded& e = *examples[static_cast<std::size_t>(r)];
    for (std::size_t t = 0; t + 1 < e.tokens.size(); ++t) {
      const auto i = static_cast<std::size_t>(r * b.cols) + t;
      b.x[i] = e.tokens[t];
      b.y[i] = e.tokens[t + 1];
      b.w[i] = e.weight[t + 1];
    }
  }
  return b;
}

}  // namespace scaletune::trainer::lora
