// Loading a sweep config: every check that can run before anything starts (sweep_config.h).
#include <filesystem>
#include <map>
#include <vector>

#include "orchestrator/config/kinds.h"
#include "orchestrator/sweep/sweep_plan.h"

namespace scaletune::sweep {
namespace {

ParamValues centers(const search::SearchConfig& s) {
  ParamValues p;
  for (const auto& [name, spec] : s.search) p[name] = spec.center;
  return p;
}

// Trials run in their own directories, so a relative file path in `train:` (a base model, a data
// file) is made absolute against the directory the sweep starts in, which is what the user meant.
void absolutize_paths(const std::string& trainer, YAML::Node train) {
  static const std::map<std::string, std::vector<std::string>> kPathKeys = {
      {"lm", {"data.path", "data.val_path", "data.bpe_dir"}},
      {"lora", {"base.path", "base.bpe_dir", "data.path", "data.val_path", "lora.load"}}};
  const auto keys = kPathKeys.find(trainer);
  if (keys == kPathKeys.end() || !train.IsMap()) return;
  for (const std::string& key : keys->second) {
    const std::size_t dot = key.find('.');
    const std::string section = key.substr(0, dot), leaf = key.substr(dot + 1);
    if (!train[section] || !train[section].IsMap()) continue;
    YAML::Node s = train[section];
    if (!s[leaf] || !s[leaf].IsScalar() || s[leaf].Scalar().empty()) continue;
    const std::filesystem::path path(s[leaf].Scalar());
    if (path.is_relative()) s[leaf] = std::filesystem::absolute(path).lexically_normal().string();
  }
}

}  // namespace

SweepConfig load_sweep_config(const config::Document& doc) {
  SweepConfig c = config::bind<SweepConfig>(doc);
  absolutize_paths(c.trainer, c.train);
  std::vector<config::Problem> problems;
  auto problem = [&](const std::string& path, const std::string& message) {
    const YAML::Node& root = doc.root();
    problems.push_back({doc.where(root, path), doc.full_path(path), message});
  };
  if (c.resources.devices_rule.max > 0 && c.resources.devices_rule.key.empty())
    problem("resources.devices_rule.max", "is set but devices_rule.key is empty");
  if (!c.resources.devices_rule.key.empty() && c.resources.devices_per_trial != 1)
    problem("resources.devices_per_trial",
            "is set together with devices_rule; the rule decides the device count");
  if (c.resources.devices == "cpu" && c.resources.slots > 0) {
    // Every agent has exactly `slots` CPU slots: a trial that cannot span agents must fit them.
    // (Other allocations are known once the agents report, still before any trial starts.)
    if (!c.resources.span_nodes) {
      const std::string msg = check_allocation(c.resources, {c.resources.slots});
      if (!msg.empty()) problem("resources", msg);
    }
  }
  // The base section must be a valid config of the trainer, every searched key a numeric field
  // of it, and the config at the search center a valid run (catches bounds the trainer checks).
  std::vector<std::string> searched;
  for (const auto& [name, spec] : c.search.search) searched.push_back(name);
  for (auto& p : config::check_sweep_train(doc.child("train"), c.trainer, searched))
    problems.push_back(std::move(p));
  if (c.trainer != "command" && problems.empty()) {
    YAML::Node center = trial_config(c, 0, centers(c.search));
    YAML::Emitter out;
    out << center;
    try {
      config::bind_train_config(
          config::Document::parse(out.c_str(), doc.name() + " (train: at the search centers)"));
    } catch (const config::ConfigError& e) {
      for (const auto& p : e.problems()) problems.push_back(p);
    }
  }
  if (!c.resources.devices_rule.key.empty() && problems.empty()) {
    try {
      devices_for(c.resources, trial_config(c, 0, centers(c.search)));
    } catch (const std::exception& e) {
      problem("resources.devices_rule.key", e.what());
    }
  }
  if (!problems.empty()) throw config::ConfigError(std::move(problems));
  return c;
}

}  // namespace scaletune::sweep
