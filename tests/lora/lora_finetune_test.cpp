// End to end on the built-in tasks: a tiny GPT pretrained on the built-in synthetic corpus is
// fine-tuned with LoRA and the response-masked loss; its validation loss on held-out
// instructions falls by several nats, the base file stays untouched, and the exported adapter
// (loaded onto the base) and the merged model reproduce the fine-tuned model exactly.
//
// Not asserted yet: issue 9's exact-match gain. At this budget (a 2 x 64 base, 150 steps) neither
// LoRA nor full fine-tuning gets past learning the answers' letter distribution (about 3-4 nats
// per token), so greedy exact match stays at 0 before and after; it is printed, not asserted.
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
  c.data.synthetic.branching = 2;  // sharp predictions: an embedding with a usable logit range
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
  c.data.prompt_template = "short";
  c.data.builtin.tasks = {"copy", "upper"};
  c.data.builtin.min_len = 3;
  c.data.builtin.max_len = 4;
  c.data.builtin.examples = 1500;
  c.lora.rank = 8;
  c.lora.alpha = 16;
  c.lora.dropout = 0.0;
  c.optim.lr = 3e-3;
  c.train.batch_size = 16;
  c.train.steps = 150;
  c.eval.examples = 60;
  c.eval.max_new_tokens = 6;
  c.log_every = 50;
  return c;
}

std::string file_bytes(const std::string& path) { return test::read_file(path); }

TEST(LoraFinetune, LowersHeldOutResponseLossAndExportsReproduceIt) {
  const std::string dir = test::temp_dir("lora_finetune");
  const std::string base = pretrain_base(dir + "/base");
  const std::string base_before = file_bytes(base);

  const auto end = train_lora({finetune_config(base), dir + "/ft", {}, nullptr});
  const TrainResult& r = end.result;
  ASSERT_EQ(r.status, RunStatus::kOk) << r.reason;
  const double before = r.metrics.at("accuracy_before"), after = r.metrics.at("accuracy");
  std::printf("exact match %.3f -> %.3f, val loss %.3f -> %.3f\n", before, after,
              r.metrics.at("val_loss_before"), r.metrics.at("val_loss"));
  EXPECT_GE(after, before);
  EXPECT_LT(r.metrics.at("val_loss"), r.metrics.at("val_loss_before") - 2.0);  // nats per token
  EXPECT_LT(r.metrics.at("trainable_fraction"), 0.2);
  EXPECT_EQ(r.metrics.at("trainable_params"), 2 * 8 * (256 + 128 + 2 * (64 + 256)));
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
