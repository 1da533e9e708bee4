// The torch-free half of LoRA fine-tuning: JSONL parsing (Alpaca and chat) with errors that name
// the line, the prompt templates, the loss mask over response tokens, right-padded batches, the
// built-in tasks, the trainable-parameter formula, the lr rule and the example configs.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "orchestrator/config/kinds.h"
#include "tests/support/process.h"
#include "trainer/lora/instruct.h"
#include "trainer/lora/lora_config.h"

namespace scaletune::trainer::lora {
namespace {

std::string write_jsonl(const std::string& name, const std::string& text) {
  const std::string path = test::temp_dir("lora_data_" + name) + "/data.jsonl";
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& path) {
  try {
    read_jsonl(path, "alpaca");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(LoraData, JsonlErrorsNameTheLine) {
  const std::string good = R"({"instruction": "Say hi.", "output": "hi"})";
  auto path = write_jsonl("bad_json", good + "\n\n" + "{\"instruction\": \n");
  EXPECT_NE(error_of(path).find(path + ":3: not valid JSON"), std::string::npos) << error_of(path);
  path = write_jsonl("missing", good + "\n" + R"({"instruction": "x"})" + "\n");
  EXPECT_NE(error_of(path).find(path + ":2: missing \"output\""), std::string::npos)
      << error_of(path);
  path = write_jsonl("type", R"({"instruction": "x", "output": 3})"
                             "\n");
  EXPECT_NE(error_of(path).find(":1: \"output\" must be a string"), std::string::npos)
      << error_of(path);
  path = write_jsonl("role", good + "\n" + R"({"messages": [{"role": "bot", "content": "x"}]})");
  EXPECT_NE(error_of(path).find(":2: messages[0]: unknown role 'bot'"), std::string::npos)
      << error_of(path);
  path = write_jsonl("no_assistant", R"({"messages": [{"role": "user", "content": "x"}]})");
  EXPECT_NE(error_of(path).find(":1: no assistant message"), std::string::npos) << error_of(path);
  path = write_jsonl("array", "[1, 2]\n");
  EXPECT_NE(error_of(path).find(":1: each line must be a JSON object"), std::string::npos);
}

TEST(LoraData, AlpacaAndChatRecords) {
  const auto path = write_jsonl(
      "records",
      R"({"instruction": "Add.", "input": "1+2", "output": "3"})"
      "\n"
      R"({"instruction": "Greet.", "output": "hello"})"
      "\n"
      R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}]})"
      "\n");
  const auto ex = read_jsonl(path, "alpaca");
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].prompt(),
            "Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\nAdd.\n\n### Input:\n1+2\n\n### Response:\n");
  EXPECT_EQ(ex[0].answer(), "3");
  EXPECT_EQ(ex[1].prompt(),
            "Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.\n\n### Instruction:\nGreet.\n\n### Response:\n");
  EXPECT_EQ(ex[2].prompt(), "System: Be brief.\nUser: Hi\nAssistant: Hey\nUser: Bye\nAssistant: ");
  EXPECT_EQ(ex[2].answer(), "Ciao");
  EXPECT_EQ(read_jsonl(path, "compact")[0].prompt(), "Add. 1+2 = ");
  EXPECT_EQ(read_jsonl(path, "compact")[1].prompt(), "Greet. = ");
  const auto short_ex = read_jsonl(path, "short");
  EXPECT_EQ(short_ex[0].prompt(), "Instruction: Add.\nInput: 1+2\nResponse: ");
  EXPECT_EQ(short_ex[1].prompt(), "Instruction: Greet.\nResponse: ");
}

TEST(LoraData, LossMaskCoversResponseTokensOnly) {
  const Tokenizer tok = Tokenizer::bytes();
  const Example ex = alpaca_example("Copy.", "ab", "ab", "short");
  const Encoded e = encode(ex, tok);
  const std::string prompt = "Instruction: Copy.\nInput: ab\nResponse: ";
  ASSERT_EQ(e.tokens.size(), prompt.size() + 3);  // "ab" + end of text
  EXPECT_EQ(e.prompt.size(), prompt.size());
  EXPECT_EQ(e.tokens.back(), tok.end_of_text());
  for (std::size_t t = 0; t < e.tokens.size(); ++t)
    EXPECT_EQ(e.weight[t], t >= prompt.size() ? 1 : 0) << t;
  // Chat: every assistant turn is trained on, nothing else.
  Example chat;
  chat.segments = {{"User: a\n", false}, {"Assistant: ", false}, {"x", true}, {"\n", false},
                   {"User: b\n", false}, {"Assistant: ", false}, {"yz", true}};
  const Encoded c = encode(chat, tok);
  int trained = 0;
  for (auto w : c.weight) trained += w;
  EXPECT_EQ(trained, 1 + 1 + 2 + 1);                // x, eot, yz, eot
  EXPECT_EQ(c.prompt.size(), c.tokens.size() - 3);  // generation starts before "yz"
}

TEST(LoraData, BatchesAreRightPaddedWithZeroWeight) {
  const Tokenizer tok = Tokenizer::bytes();
  const Encoded a = encode(alpaca_example("C.", "abcd", "abcd", "short"), tok);
  const Encoded b = encode(alpaca_example("C.", "a", "a", "short"), tok);
  const Batch batch = make_batch({&a, &b}, tok.end_of_text());
  ASSERT_EQ(batch.rows, 2);
  ASSERT_EQ(batch.cols, static_cast<std::int64_t>(a.tokens.size()) - 1);
  for (std::int64_t t = 0; t < batch.cols; ++t) {
    EXPECT_EQ(batch.x[t], a.tokens[t]);
    EXPECT_EQ(batch.y[t], a.tokens[t + 1]);
    EXPECT_EQ(batch.w[t], a.weight[t + 1]);
  }
  const auto nb = static_cast<std::int64_t>(b.tokens.size()) - 1;
  double weight_b = 0;
  for (std::int64_t t = 0; t < batch.cols; ++t) {
    weight_b += batch.w[batch.cols + t];
    if (t >= nb) {
      EXPECT_EQ(batch.w[batch.cols + t], 0.0f);
      EXPECT_EQ(batch.x[batch.cols + t], tok.end_of_text());
    }
  }
  EXPECT_EQ(weight_b, 2.0);  // "a" and the end of text
}

TEST(LoraData, BuiltinTasksAreDeterministicAndCorrect) {
  LoraBuiltinData c;
  c.tasks = {"copy", "reverse", "sort", "upper", "first", "last", "add", "context"};
  c.examples = 800;
  const auto a = builtin_examples(c, "short");
  const auto b = builtin_examples(c, "short");
  ASSERT_EQ(a.size(), 800u);
  std::set<std::string> prompts;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt(), b[i].prompt());
    prompts.insert(a[i].prompt());
    const std::string p = a[i].prompt();
    const auto input_at = p.find("Input: ") + 7;
    const std::string input = p.substr(input_at, p.find('\n', input_at) - input_at);
    const std::string& task = a[i].task;
    std::string want;
    if (task == "copy") want = input;
    if (task == "reverse") want = std::string(input.rbegin(), input.rend());
    if (task == "sort") {
      want = input;
      std::sort(want.begin(), want.end());
    }
    if (task == "upper") {
      want = input;
      for (auto& ch : want) ch = static_cast<char>(std::toupper(ch));
    }
    if (task == "first") want = input.substr(0, 1);
    if (task == "last") want = input.substr(input.size() - 1);
    if (task == "add") {
      const auto plus = input.find('+');
      want = std::to_string(std::stoi(input.substr(0, plus)) + std::stoi(input.substr(plus + 1)));
    }
    if (task == "context") {  // "a=3 b=7 c=1. b?"
      const char key = input[input.size() - 2];
      want = std::string(1, input[input.find(std::string(1, key) + "=") + 2]);
    }
    EXPECT_EQ(a[i].answer(), want) << task << " " << input;
  }
  EXPECT_EQ(prompts.size(), a.size());  // distinct prompts: no leakage into validation
  c.seed = 8;
  EXPECT_NE(builtin_examples(c, "short")[0].prompt() + builtin_examples(c, "short")[1].prompt(),
            a[0].prompt() + a[1].prompt());
}

TEST(LoraData, DatasetSplitsAndDropsTooLongExamples) {
  LoraDataConfig c;
  c.prompt_template = "short";
  c.builtin.examples = 100;
  c.val_fraction = 0.2;
  const Dataset d = load_dataset(c, Tokenizer::bytes(), 1024);
  EXPECT_EQ(d.train.size(), 80u);
  EXPECT_EQ(d.val.size(), 20u);
  EXPECT_EQ(d.dropped, 0);
  const Dataset tight = load_dataset(c, Tokenizer::bytes(), 56);  // long words do not fit
  EXPECT_GT(tight.dropped, 0);
  for (const auto& e : tight.train) EXPECT_LE(e.tokens.size(), 57u);
}

TEST(LoraConfig, TrainableParameterFormula) {
  LmShape s;
  s.n_layer = 2, s.d_model = 64, s.d_ff = 256;
  // qkv: r (d + 3d); attn_out: r (d + d); mlp: r (d + d_ff) twice.
  EXPECT_EQ(lora_trainable_params(s, 4, {"qkv"}), 2 * 4 * (64 + 192));
  EXPECT_EQ(lora_trainable_params(s, 4, {"attn_out"}), 2 * 4 * 128);
  EXPECT_EQ(lora_trainable_params(s, 4, {"mlp"}), 2 * 2 * 4 * (64 + 256));
  EXPECT_EQ(lora_trainable_params(s, 8, {"qkv", "attn_out", "mlp"}), 2 * 8 * (256 + 128 + 640));
}

TEST(LoraConfig, LearningRateRule) {
  LoraConfig c;
  EXPECT_DOUBLE_EQ(lora_lr_from_full(c, 3e-4), 3e-3);
  c.hparams.lr_multiplier = 2;
  EXPECT_DOUBLE_EQ(lora_lr_from_full(c, 3e-4), 6e-4);
  c.lora.method = "full";
  EXPECT_DOUBLE_EQ(lora_lr_from_full(c, 3e-4), 3e-4);
}

TEST(LoraConfig, ExampleConfigsBindAndBadKeysAreNamed) {
  for (const char* name : {"lora_tiny.yaml", "lora_gpt2.yaml", "lora_sweep_trial.yaml"}) {
    const auto doc =
        config::Document::load_file(std::string(SCALETUNE_SOURCE_DIR) + "/configs/" + name);
    const auto cfg = config::bind_train_config(doc);
    EXPECT_EQ(cfg.task(), "lora") << name;
  }
  const auto doc = config::Document::parse("task: lora\nlora: {targets: [qkv, attn]}\n", "x.yaml");
  try {
    config::bind_train_config(doc);
    FAIL() << "unknown target accepted";
  } catch (const config::ConfigError& e) {
    std::string all;
    for (const auto& p : e.problems()) all += p.str();
    EXPECT_NE(all.find("unknown target 'attn'"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace scaletune::trainer::lora
