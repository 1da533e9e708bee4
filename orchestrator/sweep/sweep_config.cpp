// Loading a sweep config: every check that can run before anything starts (sweep_config.h).
#include <algorithm>

#include "orchestrator/config/kinds.h"
#include "orchestrator/sweep/sweep_plan.h"

namespace scaletune::sweep {
namespace {

ParamValues centers(const search::SearchConfig& s) {
  ParamValues p;
  for (const auto& [name, spec] : s.search) p[name] = spec.center;
  return p;
}

}  // namespace

SweepConfig load_sweep_config(const config::Document& doc) {
  SweepConfig c = config::bind<SweepConfig>(doc);
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
  if (c.resources.slots > 0) {
    // Under MPI the allocation is known only once agents report; a fixed slot count on a single
    // machine is known now.
    if (!c.resources.span_nodes) {
      const std::string msg = check_allocation(c.resources, {c.resources.slots});
      if (!msg.empty()) problem("resources", msg);
    }
  }
  if (c.trainer != "command") {
    // The base section must be a valid config of the trainer ...
    const config::Document train_doc = doc.child("train");
    std::vector<config::FieldInfo> fields;
    try {
      fields = config::bind_train_config(train_doc, c.trainer).fields();
    } catch (const config::ConfigError& e) {
      for (const auto& p : e.problems()) problems.push_back(p);
    }
    // ... every searched key one of its numeric fields ...
    if (!fields.empty()) {
      std::vector<std::string> numeric;
      for (const auto& f : fields)
        if (f.type == "number" || f.type == "integer") numeric.push_back(f.path);
      for (const auto& [name, spec] : c.search.search) {
        if (std::find(numeric.begin(), numeric.end(), name) != numeric.end()) continue;
        const std::string hint = config::nearest(name, numeric);
        problem("search." + name, "is not a numeric field of the " + c.trainer + " config" +
                                      (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
    }
    // ... and the config at the search center a valid run (catches bounds the trainer checks).
    if (problems.empty()) {
      YAML::Node center = trial_config(c, 0, centers(c.search));
      YAML::Emitter out;
      out << center;
      try {
        config::bind_train_config(config::Document::parse(
            out.c_str(), doc.name() + " (train: at the search centers)"));
      } catch (const config::ConfigError& e) {
        for (const auto& p : e.problems()) problems.push_back(p);
      }
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
