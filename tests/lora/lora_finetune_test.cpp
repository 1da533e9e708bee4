// End to end on the built-in tasks: a tiny GPT pretrained on the built-in synthetic Markov corpus
// is fine-tuned with LoRA and the response-masked loss on `first` and `last` (the first or last
// letter of a 3-letter word, compact template); greedy exact match on held-out words (prompts
// never seen in training) rises from 0 to near 1, the base file stays untouched, and the exported
// adapter (loaded onto the base) and the merged model reproduce the fine-tuned model.
//
// Why these settings (measured, docs/lora.md "Measured accuracy"): the task needs attention to
// route one input letter to the output, which a Markov-pretrained base never learned; rank 8-16
// adapters plateau at the answers' letter distribution (exact match 0.01-0.17 after 300 steps),
// rank 32 at lr 3e-3 reaches 1.00 in 500 steps on seeds 2, 3, 4. Rates of 1e-2 and above stall.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/process.h"
#include "trainer/lm/train_lm.h"
#include "trainer/lora/finetune.h"

namespace scaletune::trainer::lora {
namespace {

std::string pretrain_base(const std::string& dir) {
  LmConfig c;
  c.threads = 2;
  c.seed = 1;
  c.model.n_layer = 2, c.model.d_model = 64, c.model.n_head = 4, c.model.context = 64;
  c.data.synthetic.vocab = 256;  // covers every byte, so the byte tokenizer fits the model
  c.data.synthetic.tokens = 60000;
  c.data.synthetic.branching = 8;  // as the main job's sweep (configs/main_sweep.yaml)
  c.train.batch_size = 16;
  c.train.tokens = 16 * 64 * 60;
  c.optim.lr = 1e-2;
  c.eval.tokens = 2048;
  c.log_every = 1000;
  c.checkpoint.safetensors = true;
  const auto end = lm::train_lm({c, dir, false, {}, nullptr});
  EXPECT_EQ(end.result.status, RunStatus::kOk) << end.result.reason;
  return dir + "/model.safetensors";
}

LoraConfig finetune_config(const std::string& base) {
  LoraConfig c;
  c.threads = 2;
  c.seed = 2;
  c.base.path = base;
  c.data.prompt_template = "compact";
  c.data.builtin.tasks = {"first", "last"};
  c.data.builtin.min_len = 3;
  c.data.builtin.max_len = 3;  // 3-5 letters: 0.31 after 500 steps
  c.data.builtin.examples = 1500;
  c.lora.rank = 32;
  c.lora.alpha = 64;
  c.lora.dropout = 0.0;
  c.optim.lr = 3e-3;
  c.train.batch_size = 16;
  c.train.steps = 500;
  c.eval.examples = 100;
  c.eval.max_new_tokens = 4;
  c.log_every = 50;
  return c;
}

std::string file_bytes(const std::string& path) { return test::read_file(path); }

TEST(LoraFinetune, RaisesHeldOutExactMatchAndExportsReproduceIt) {
  const std::string dir = test::temp_dir("lora_finetune");
  const std::string base = pretrain_base(dir + "/base");
  const std::string base_before = file_bytes(base);

  const auto end = train_lora({finetune_config(base), dir + "/ft", {}, nullptr});
  const TrainResult& r = end.result;
  ASSERT_EQ(r.status, RunStatus::kOk) << r.reason;
  const double before = r.metrics.at("accuracy_before"), after = r.metrics.at("accuracy");
  std::printf("exact match %.3f -> %.3f, val loss %.3f -> %.3f\n", before, after,
              r.metrics.at("val_loss_before"), r.metrics.at("val_loss"));
  EXPECT_LE(before, 0.05);         // the base answers in Markov text, not a letter and <eot>
  EXPECT_GE(after, before + 0.5);  // measured 1.00 on seeds 2, 3 and 4
  EXPECT_GE(r.metrics.at("accuracy.first"), 0.5);
  EXPECT_GE(r.metrics.at("accuracy.last"), 0.5);
  EXPECT_LT(r.metrics.at("val_loss"), r.metrics.at("val_loss_before") - 5.0);  // nats per token
  EXPECT_LT(r.metrics.at("trainable_fraction"), 0.6);  // rank 32 on a 64-wide model is large
  EXPECT_EQ(r.metrics.at("trainable_params"), 2 * 32 * (256 + 128 + 2 * (64 + 256)));
  EXPECT_LT(r.metrics.at("merge_max_abs_diff"), 1e-4);
  EXPECT_EQ(file_bytes(base), base_before);  // the base is never written

  // The adapter loaded separately onto the base, and the merged export, answer the same.
  LoraConfig again = finetune_config(base);
  again.lora.load = dir + "/ft/adapter.safetensors";
  again.train.steps = 0;
  again.eval.before = false;
  again.output.merged = again.output.adapter = false;
  auto loaded = train_lora({again, dir + "/adapter_on_base", {}, nullptr});
  ASSERT_EQ(loaded.result.status, RunStatus::kOk) << loaded.result.reason;
  EXPECT_NEAR(loaded.result.metrics.at("val_loss"), r.metrics.at("val_loss"), 1e-4);
  EXPECT_NEAR(loaded.result.metrics.at("accuracy"), after, 0.02);
  again.lora.load.clear();
  again.base.path = dir + "/ft/model.safetensors";
  auto merged = train_lora({again, dir + "/merged", {}, nullptr});
  ASSERT_EQ(merged.result.status, RunStatus::kOk) << merged.result.reason;
  EXPECT_NEAR(merged.result.metrics.at("val_loss"), r.metrics.at("val_loss"), 1e-4);
  EXPECT_NEAR(merged.result.metrics.at("accuracy"), after, 0.02);
}

}  // namespace
}  // namespace scaletune::trainer::lora
