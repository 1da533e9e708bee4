#include "orchestrator/config/kinds.h"

#include <algorithm>

#include "orchestrator/search/search_config.h"
#include "orchestrator/sweep/sweep_config.h"

namespace scaletune::config {

std::string TrainConfig::task() const {
  return std::visit([](const auto& c) { return c.task; }, value);
}

nlohmann::json TrainConfig::to_json() const {
  return std::visit([](const auto& c) { return config::to_json(c); }, value);
}

std::string TrainConfig::to_yaml(bool comments) const {
  return std::visit([&](const auto& c) { return config::to_yaml(c, comments); }, value);
}

std::vector<FieldInfo> TrainConfig::fields() const {
  return std::visit([](const auto& c) { return list_fields(c); }, value);
}

std::vector<std::string> train_tasks() { return {"synthetic", "lm", "ppo", "lora"}; }

TrainConfig bind_train_config(const Document& doc, const std::string& forced_task) {
  const std::string written = doc.peek("task", "");
  if (!forced_task.empty() && !written.empty() && written != forced_task) {
    throw ConfigError({{doc.where(doc.root(), "task"), doc.full_path("task"),
                        "is '" + written + "' but the sweep's trainer is '" + forced_task +
                            "'; remove it or make them agree"}});
  }
  const std::string task = forced_task.empty() ? written : forced_task;
  const auto tasks = train_tasks();
  if (task == "synthetic") return TrainConfig{bind<trainer::SyntheticConfig>(doc)};
  if (task == "lm") return TrainConfig{bind<trainer::LmConfig>(doc)};
  if (task == "ppo") return TrainConfig{bind<trainer::PpoConfig>(doc)};
  if (task == "lora") return TrainConfig{bind<trainer::LoraConfig>(doc)};
  std::string list;
  for (const auto& t : tasks) list += (list.empty() ? "" : ", ") + t;
  const std::string hint = nearest(task, tasks);
  throw ConfigError(
      {{doc.where(doc.root(), "task"), doc.full_path("task"),
        (task.empty() ? std::string("missing; set it to one of [") + list + "]"
                      : "unknown task '" + task + "'; expected one of [" + list + "]" +
                            (hint.empty() ? "" : " (did you mean '" + hint + "'?)"))}});
}

std::vector<Problem> check_sweep_train(const Document& train_doc, const std::string& trainer,
                                       const std::vector<std::string>& searched) {
  if (trainer == "command") return {};
  std::vector<FieldInfo> fields;
  try {
    fields = bind_train_config(train_doc, trainer).fields();
  } catch (const ConfigError& e) {
    return e.problems();
  }
  std::vector<std::string> numeric;
  for (const auto& f : fields)
    if (f.type == "number" || f.type == "integer") numeric.push_back(f.path);
  std::vector<Problem> problems;
  for (const auto& name : searched) {
    if (std::find(numeric.begin(), numeric.end(), name) != numeric.end()) continue;
    const std::string hint = nearest(name, numeric);
    problems.push_back({train_doc.name(), "search." + name,
                        "is not a numeric field of the " + trainer + " config" +
                            (hint.empty() ? "" : "; did you mean '" + hint + "'?")});
  }
  return problems;
}

ConfigKind detect_kind(const Document& doc) {
  const YAML::Node& root = doc.root();
  auto has = [&](const char* key) {
    for (auto it = root.begin(); it != root.end(); ++it)
      if (it->first.Scalar() == key) return true;
    return false;
  };
  if (has("trainer")) return ConfigKind::kSweep;
  if (has("task")) return ConfigKind::kTrain;
  if (has("search")) return ConfigKind::kSearch;
  throw ConfigError({{doc.name(), "",
                      "cannot tell what this config is for: a training run has a `task:` key, a "
                      "sweep has `trainer:` and `search:`, an ask-tell search has `search:`"}});
}

std::string resolve_to_yaml(const Document& doc, bool comments) {
  switch (detect_kind(doc)) {
    case ConfigKind::kTrain:
      return bind_train_config(doc).to_yaml(comments);
    case ConfigKind::kSearch:
      return config::to_yaml(bind<search::SearchConfig>(doc), comments);
    case ConfigKind::kSweep: {
      // The checks that need no allocation; `scaletune sweep` adds the rest before starting
      // (orchestrator/sweep/sweep_plan.h).
      const auto sweep = bind<sweep::SweepConfig>(doc);
      std::vector<std::string> searched;
      for (const auto& [name, spec] : sweep.search.search) searched.push_back(name);
      auto problems = check_sweep_train(doc.child("train"), sweep.trainer, searched);
      if (!problems.empty()) throw ConfigError(std::move(problems));
      return config::to_yaml(sweep, comments);
    }
    default:
      break;
  }
  throw ConfigError(
      {{doc.name(), "", "sweep and search configs are not supported by this build yet"}});
}

}  // namespace scaletune::config
