#include "orchestrator/sweep/sweep_plan.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "orchestrator/config/binder.h"
#include "trainer/core/flops.h"
#include "trainer/lm/lm_config.h"
#include "trainer/synthetic/synthetic.h"

namespace scaletune::sweep {
namespace {

// The value at a dotted key of a YAML map, or an undefined node.
YAML::Node lookup(const YAML::Node& root, const std::string& key) {
  YAML::Node cur = YAML::Clone(root);
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    const std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node next = cur[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    if (dot == std::string::npos) return next;
    cur.reset(next);
    start = dot + 1;
  }
}

// The LM trainer's torch-free estimates for a trial config: total parameters, or the training
// memory of one device (weights, gradients, AdamW moments and one micro-batch's activations).
double lm_estimate(const YAML::Node& cfg, const std::string& key) {
  if (!cfg["task"] || cfg["task"].Scalar() != "lm")
    throw std::invalid_argument("resources.devices_rule.key '" + key +
                                "' is an estimate of the lm trainer; use a config key for "
                                "other trainers");
  YAML::Emitter out;
  out << cfg;
  const auto lm = config::bind<trainer::LmConfig>(config::Document::parse(out.c_str(), "trial"));
  const std::int64_t data_vocab = lm.data.source == "synthetic" ? lm.data.synthetic.vocab
                                  : lm.data.tokenizer == "gpt2" ? 50257
                                                                : 256;
  const trainer::LmShape shape = lm.shape(data_vocab);
  if (key == "params") return static_cast<double>(trainer::lm_param_count(shape).total);
  const std::int64_t micro = lm.train.micro_batch > 0 ? lm.train.micro_batch : lm.train.batch_size;
  return trainer::lm_memory_bytes(shape, micro);
}

}  // namespace

std::string trial_task(const SweepConfig& config) { return config.trainer; }

CostEstimate estimate_cost(const SweepConfig& config, const YAML::Node& cfg) {
  CostEstimate e;
  try {
    YAML::Emitter out;
    out << cfg;
    const auto doc = config::Document::parse(out.c_str(), "trial");
    if (config.trainer == "synthetic") {
      const auto c = config::bind<trainer::SyntheticConfig>(doc);
      e.tokens = c.tokens;
      e.flops = e.flops_6n = 6.0 * c.n_params * c.tokens;
      e.wall_seconds = c.seconds + c.seconds_per_pflop * e.flops / 1e15;
    } else if (config.trainer == "lm") {
      const auto lm = config::bind<trainer::LmConfig>(doc);
      const std::int64_t vocab = lm.data.source == "synthetic" ? lm.data.synthetic.vocab
                                 : lm.data.tokenizer == "gpt2" ? 50257
                                                               : 256;
      const trainer::LmShape shape = lm.shape(vocab);
      const double per_token = trainer::lm_flops_per_token(shape);
      e.tokens = lm.train.tokens > 0 ? lm.train.tokens : lm.train.flops / per_token;
      e.flops = e.tokens * per_token;
      e.flops_6n =
          trainer::flops_6n_per_token(static_cast<double>(trainer::lm_param_count(shape).total)) *
          e.tokens;
    }
  } catch (const std::exception&) {
    return CostEstimate{};  // not estimable: the orchestrator falls back to other predictions
  }
  return e;
}

YAML::Node trial_config(const SweepConfig& config, std::int64_t trial, const ParamValues& params) {
  return render_trial_config(config.train, trial_task(config),
                             derive_seed(config.search.seed, trial), params);
}

int devices_for(const ResourcesConfig& r, const YAML::Node& cfg) {
  if (r.devices_rule.key.empty()) return r.devices_per_trial;
  double value = 0;
  if (r.devices_rule.key == "params" || r.devices_rule.key == "memory_bytes") {
    value = lm_estimate(cfg, r.devices_rule.key);
  } else {
    const YAML::Node node = lookup(cfg, r.devices_rule.key);
    if (!node.IsDefined() || !node.IsScalar() || !YAML::convert<double>::decode(node, value) ||
        !std::isfinite(value))
      throw std::invalid_argument("resources.devices_rule.key '" + r.devices_rule.key +
                                  "' is not a number in the trial's config");
  }
  int n = static_cast<int>(std::ceil(value / r.devices_rule.per_device - 1e-9));
  n = std::max(n, 1);
  if (r.devices_rule.max > 0) n = std::min(n, r.devices_rule.max);
  return n;
}

LaunchTrial launch_for(const SweepConfig& config, std::int64_t trial, int attempt,
                       const ParamValues& params, const YAML::Node& cfg,
                       const std::string& trial_dir) {
  LaunchTrial m;
  m.trial = trial;
  m.attempt = attempt;
  m.dir = trial_dir;
  m.config_file = "trial.yaml";
  YAML::Emitter out;
  out << cfg;
  m.config_text = std::string(out.c_str()) + "\n";
  m.timeout_seconds = config.resources.timeout_seconds;
  m.threads = config.resources.threads_per_trial;
  if (config.trainer == "command") {
    m.argv = config.command.argv;
    if (config.command.pass_arguments)
      for (auto& a : command_arguments(params)) m.argv.push_back(std::move(a));
    m.env = config.command.env;
    for (auto& [k, v] : command_environment(params)) m.env[k] = v;
    m.env["SCALETUNE_TRIAL_CONFIG"] = "trial.yaml";
    m.result_file = config.command.result_file;
  } else {
    // The same program in `train` mode: a fresh process per trial (no LibTorch in the agent).
    m.argv = {"@scaletune", "train", "--config", "trial.yaml", "--out", "."};
    m.result_file = "result.json";
  }
  return m;
}

std::string check_allocation(const ResourcesConfig& r, const std::vector<int>& agent_slots) {
  int total = 0, largest = 0;
  for (int n : agent_slots) {
    total += n;
    largest = std::max(largest, n);
  }
  const int wanted = r.devices_rule.key.empty() ? r.devices_per_trial
                     : r.devices_rule.max > 0   ? r.devices_rule.max
                                                : 1;
  const int room = r.span_nodes ? total : largest;
  if (total == 0) return "the allocation has no device slots";
  if (wanted > room) {
    const std::string what =
        r.devices_rule.key.empty() ? "resources.devices_per_trial" : "resources.devices_rule.max";
    return what + " is " + std::to_string(wanted) + " but the allocation can hold at most " +
           std::to_string(room) + " device(s) per trial (" + std::to_string(agent_slots.size()) +
           " agent(s), " + std::to_string(total) + " slot(s) in all" +
           (r.span_nodes ? "" : ", span_nodes: false") + "); lower it or ask for more devices";
  }
  return "";
}

}  // namespace scaletune::sweep
