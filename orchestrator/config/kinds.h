// The kinds of config files scaletune reads, and how a training config picks its struct.
//
//   training run   has `task:`     (lm | ppo | lora | synthetic ...)   -> scaletune train
//   sweep          has `trainer:`  plus `search:`               -> scaletune sweep
//   search only    has `search:`   (no trainer)                 -> scaletune ask-tell
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "orchestrator/config/binder.h"
#include "trainer/lm/lm_config.h"
#include "trainer/lora/lora_config.h"
#include "trainer/ppo/ppo_config.h"
#include "trainer/synthetic/synthetic.h"

namespace scaletune::config {

// A training config of any task, bound to that task's struct.
struct TrainConfig {
  std::variant<trainer::SyntheticConfig, trainer::LmConfig, trainer::PpoConfig, trainer::LoraConfig>
      value;

  std::string task() const;
  nlohmann::json to_json() const;
  std::string to_yaml(bool comments) const;
  std::vector<FieldInfo> fields() const;
};

// Task names `bind_train_config` accepts.
std::vector<std::string> train_tasks();

// Binds a training config; the struct is chosen by its `task:` key, or by `task` when given (a
// sweep's `train:` section takes its task from the sweep's `trainer:`; a different `task:` in
// the section is an error). Throws ConfigError.
TrainConfig bind_train_config(const Document& doc, const std::string& task = "");

// Checks a sweep's base `train:` section (the sub-document `train_doc`) against the config of
// `trainer` and that every key in `searched` is a numeric field of it. Returns the problems
// (empty when fine); the `command` trainer has no schema and passes.
std::vector<Problem> check_sweep_train(const Document& train_doc, const std::string& trainer,
                                       const std::vector<std::string>& searched);

enum class ConfigKind { kTrain, kSweep, kSearch };

// Tells the kind from the top-level keys. Throws ConfigError when it cannot tell.
ConfigKind detect_kind(const Document& doc);

// Binds a config of any kind and returns it resolved (defaults filled in) as YAML text.
std::string resolve_to_yaml(const Document& doc, bool comments);

}  // namespace scaletune::config
