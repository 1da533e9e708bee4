// `scaletune finetune` and a `trainer: lora` sweep as a user runs them: the real program on a
// tiny base it trained itself. Checks where the tuned settings come from (--hparams with the
// config `extrapolate` wrote, or with a fit read at a compute), that --set wins over them, the
// artefacts and the summary line, bad input (exit 2, a reason, nothing written), and that the
// orchestrator tunes rank, alpha, dropout and lr of LoRA trials (configs/sweep_lora.yaml).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "orchestrator/store/records.h"
#include "tests/support/process.h"

namespace scaletune {
namespace {

namespace fs = std::filesystem;
using test::read_file;
using test::run_command;
using test::scaletune_bin;

const std::string kConfigs = std::string(SCALETUNE_SOURCE_DIR) + "/configs";

std::string write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// A 1 x 32 byte-level GPT (context 32) trained for a few steps: a real base, made in seconds.
class LoraCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(test::temp_dir("lora_cli"));
    const std::string cfg = write(*root_ + "/base.yaml",
                                  "task: lm\n"
                                  "threads: 1\n"
                                  "model: {n_layer: 1, d_model: 32, n_head: 4, context: 32}\n"
                                  "data: {source: synthetic, synthetic: {vocab: 256, branching: "
                                  "8, tokens: 20000}}\n"
                                  "train: {batch_size: 8, tokens: 8192}\n"
                                  "eval: {tokens: 1024}\n"
                                  "checkpoint: {safetensors: true}\n");
    const auto r = run_command(scaletune_bin() + " -q train --config " + cfg + " --out " + base());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete root_; }

  static std::string base() { return *root_ + "/base"; }
  static std::string dir(const std::string& name) {
    const std::string d = *root_ + "/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }
  // A fine-tune of a few steps on few examples: what is tested is where its settings come from.
  static std::string finetune(const std::string& args) {
    return scaletune_bin() + " -q finetune --config " + kConfigs +
           "/lora_tiny.yaml --set threads=1 --set train.steps=3 --set eval.examples=4"
           " --set data.builtin.examples=100 " +
           args;
  }

  static std::string* root_;
};
std::string* LoraCli::root_ = nullptr;

// A CSV of runs whose optimal lr and batch follow planted laws in compute (1e8 .. 3e11 FLOPs):
// lr* = 0.3118 C^-0.125, batch_tokens = 0.292 C^0.3271 (and N = 30 C^0.5, which extrapolate needs).
std::string planted_csv(const std::string& path) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> eps(0, 0.01);
  std::ofstream out(path);
  out << "run,C,N,loss,lr,batch_tokens\n";
  int id = 0;
  for (int k = 0; k < 8; ++k) {
    const double c = 1e8 * std::pow(10.0, 0.5 * k);
    const double lr_star = 0.3118 * std::pow(c, -0.125);
    for (double f : {0.5, 0.7071, 0.8409, 1.0, 1.1892, 1.4142, 2.0}) {
      const double lr = lr_star * f * std::exp(eps(rng));
      const double batch = 0.292 * std::pow(c, 0.3271) * std::exp(eps(rng));
      const double loss = 2 + 50 * std::pow(c, -0.2) + 0.1 * std::pow(std::log10(lr / lr_star), 2);
      out << "r" << id++ << "," << c << "," << 30 * std::sqrt(c) << "," << loss << "," << lr << ","
          << batch << "\n";
    }
  }
  return path;
}

TEST_F(LoraCli, WritesItsArtefactsAndOneSummaryLine) {
  const std::string out = dir("plain");
  const auto r = run_command(finetune("--base " + base() + " --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["status"], "ok");
  for (const char* key : {"accuracy_before", "accuracy", "val_loss_before", "val_loss",
                          "trainable_params", "trainable_fraction", "lr"})
    EXPECT_TRUE(s[key].is_number()) << key << ": " << r.out;
  EXPECT_DOUBLE_EQ(s["lr"].get<double>(), 3e-3);  // lora_tiny.yaml's own lr, no --hparams
  EXPECT_EQ(s["result"], out + "/result.json");
  EXPECT_EQ(s["adapter"], out + "/adapter.safetensors") << r.out;
  for (const char* f :
       {"result.json", "config.yaml", "adapter.safetensors", "model.safetensors", "finetune.log"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  const auto result = nlohmann::json::parse(read_file(out + "/result.json"));
  EXPECT_EQ(result["task"], "lora");
  EXPECT_EQ(result["status"], "ok");
  // The merged model is a base again: fine-tuning it is accepted.
  const auto again = run_command(finetune("--base " + out +
                                          "/model.safetensors --set "
                                          "eval.before=false --out " +
                                          dir("again")));
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST_F(LoraCli, HparamsFromAnExtrapolatedRunConfigAndSetWins) {
  const std::string d = dir("hparams_yaml");
  const std::string big = write(d + "/big_run.yaml",
                                "task: lm\noptim: {lr: 2.0e-3, schedule: linear}\n"
                                "train: {batch_size: 6, tokens: 1.0e12}\n");
  auto r = run_command(finetune("--base " + base() + " --hparams " + big +
                                " --set hparams.lr_multiplier=10 --out " + d + "/a"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out)["lr"].get<double>(), 2e-2, 1e-12);  // 10 x 2e-3
  std::string cfg = read_file(d + "/a/config.yaml");
  EXPECT_NE(cfg.find("batch_size: 6"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("schedule: linear"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("steps: 3"), std::string::npos) << cfg;  // train.tokens is not a LoRA length

  r = run_command(finetune("--base " + base() + " --hparams " + big +
                           " --set optim.lr=1e-4 --set train.batch_size=5 --out " + d + "/b"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out)["lr"].get<double>(), 1e-4);
  cfg = read_file(d + "/b/config.yaml");
  EXPECT_NE(cfg.find("batch_size: 5"), std::string::npos) << cfg;
}

TEST_F(LoraCli, HparamsFromAFitAreItsLawsAtTheGivenCompute) {
  const std::string d = dir("hparams_fit");
  auto r =
      run_command(scaletune_bin() + " -q fit --csv " + planted_csv(d + "/runs.csv") +
                  " --col lr=lr --col batch_tokens=batch_tokens --law power --bootstrap 20 --out " +
                  d + "/fit.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // What `extrapolate` predicts at 1e10 FLOPs is what finetune uses: lr x the multiplier, and the
  // token batch in sequences of the base's context (32).
  r = run_command(scaletune_bin() + " -q extrapolate --fit " + d + "/fit.json --compute 1e10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto p = nlohmann::json::parse(r.out);
  const double lr = p["params"]["lr"]["value"].get<double>();
  const double batch_tokens = p["batch_tokens"]["value"].get<double>();
  EXPECT_NEAR(lr / (0.3118 * std::pow(1e10, -0.125)), 1, 0.05);  // the planted law
  EXPECT_NEAR(batch_tokens / (0.292 * std::pow(1e10, 0.3271)), 1, 0.05);

  r = run_command(finetune("--base " + base() + " --hparams " + d +
                           "/fit.json --set hparams.compute=1e10 --set hparams.lr_multiplier=2"
                           " --out " +
                           d + "/ft"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out)["lr"].get<double>(), 2 * lr, 1e-9 * lr);
  const std::string cfg = read_file(d + "/ft/config.yaml");
  const long sequences = std::lround(batch_tokens / 32);
  EXPECT_NE(cfg.find("batch_size: " + std::to_string(sequences)), std::string::npos)
      << "expected " << sequences << " sequences\n"
      << cfg;

  // Without hparams.compute the laws are read at the base run's compute (its result.json).
  const double base_flops =
      nlohmann::json::parse(read_file(base() + "/result.json"))["cost"]["flops"].get<double>();
  char compute[32];
  std::snprintf(compute, sizeof(compute), "%.17g", base_flops);
  r = run_command(scaletune_bin() + " -q extrapolate --fit " + d + "/fit.json --compute " +
                  compute);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double lr_at_base = nlohmann::json::parse(r.out)["params"]["lr"]["value"].get<double>();
  r = run_command(
      finetune("--base " + base() + " --hparams " + d + "/fit.json --out " + d + "/ft_base"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // lora_tiny.yaml sets hparams.lr_multiplier: 1
  EXPECT_NEAR(nlohmann::json::parse(r.out)["lr"].get<double>(), lr_at_base, 1e-6 * lr_at_base);
}

// Divergence is a hyper-parameter failure (exit 3, status diverged, a reason): an absurd rate
// overflows the adapters to NaN. It is judged on the running mean of the loss, so one-example
// batches (a loss over 2 response tokens, jumping by nats from step to step) at a sane rate
// are not diverged. (The final LayerNorm bounds the logits, so a LoRA loss cannot run away
// without turning non-finite.)
TEST_F(LoraCli, DivergenceIsJudgedOnTheRunningLoss) {
  auto r = run_command(finetune(
      "--base " + base() + " --set optim.lr=1e30 --set train.steps=10 --out " + dir("diverged")));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  const auto diverged = nlohmann::json::parse(r.out);
  EXPECT_EQ(diverged["status"], "diverged") << r.out;
  EXPECT_NE(diverged["reason"].get<std::string>().find("training loss nan"), std::string::npos)
      << r.out;
  r = run_command(finetune("--base " + base() +
                           " --set train.batch_size=1 --set train.steps=60 --out " +
                           dir("tiny_batch")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["status"], "ok") << r.out;
}

TEST_F(LoraCli, BadInputIsExitTwoWithAReasonAndWritesNothing) {
  const std::string d = dir("bad");
  // A base file alone, without the result.json that says its compute.
  fs::create_directories(d + "/bare");
  fs::copy_file(base() + "/model.safetensors", d + "/bare/model.safetensors");
  write(d + "/fit.json", "{\"format\": \"something else\"}");
  write(d + "/empty.yaml", "task: lm\nmodel: {d_model: 64}\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "no base model: pass --base"},
      {"--base " + d + "/missing", "base model " + d + "/missing does not exist"},
      {"--base " + base() + " --data " + d + "/none.jsonl", "does not exist"},
      {"--base " + base() + " --hparams " + d + "/empty.yaml",
       "has neither optim.lr nor train.batch_size"},
      {"--base " + base() + " --hparams " + d + "/fit.json",
       "not a fit written by `scaletune fit`"},
      {"--base " + d + "/bare/model.safetensors --hparams " + d + "/fit.json",
       "set hparams.compute"},
      {"--base " + base() + " --set lora.rank=0", "lora.rank"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = run_command(finetune(args + " --out " + d + "/out"));
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(d + "/out")) << args;
  }
}

TEST_F(LoraCli, SweepTunesRankAlphaDropoutAndLrOfLoraTrials) {
  const std::string d = dir("sweep");
  // A relative base path, as a user types it: trials run in their own directories, so the sweep
  // must resolve it against the directory it starts in.
  const std::string relative = fs::relative(base(), d).string();
  const auto r =
      run_command("cd " + d + " && timeout 600 " + scaletune_bin() + " -q sweep --config " +
                  kConfigs + "/sweep_lora.yaml --set train.base.path=" + relative +
                  " --set train.train.steps=15 --set train.data.builtin.examples=200"
                  " --set train.eval.examples=8 --set budget.max_trials=4"
                  " --set resources.devices=cpu --set resources.slots=2"
                  " --set out_dir=out");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = store::load(d + "/out/records.h5");
  const auto trials = records.latest_trials();
  ASSERT_EQ(trials.size(), 4u);
  std::set<double> ranks, lrs;
  for (const auto& t : trials) {
    const fs::path log = fs::path(d) / t.log_path;  // relative to where the sweep ran, as out_dir
    ASSERT_EQ(t.status, store::TrialStatus::kOk) << t.reason << "\n" << read_file(log.string());
    EXPECT_TRUE(std::isfinite(t.objective));
    EXPECT_GT(t.cost, 0);
    for (const char* key : {"lora.rank", "lora.alpha", "lora.dropout", "optim.lr"})
      ASSERT_TRUE(t.params.count(key)) << key;
    const double rank = t.params.at("lora.rank");
    EXPECT_EQ(rank, std::round(rank));
    EXPECT_GE(rank, 2);
    EXPECT_LE(rank, 64);
    ranks.insert(rank);
    lrs.insert(t.params.at("optim.lr"));
    // The trial ran what was suggested, and reported exact match next to its objective.
    const fs::path trial_dir = log.parent_path();
    const auto result = nlohmann::json::parse(read_file((trial_dir / "result.json").string()));
    EXPECT_EQ(result["config"]["lora"]["rank"].get<double>(), rank);
    EXPECT_TRUE(result["metrics"].contains("accuracy")) << result.dump();
    EXPECT_TRUE(fs::exists(trial_dir / "adapter.safetensors"));
  }
  EXPECT_GE(lrs.size(), 3u);  // the searcher explored, not four copies of the center
  EXPECT_GE(ranks.size(), 2u);
}

}  // namespace
}  // namespace scaletune
