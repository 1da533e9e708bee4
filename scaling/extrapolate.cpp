// Extrapolation to a target compute; intervals come from pushing every bootstrap replicate of a
// law to the target and taking percentiles (no delta method).
#include "scaling/extrapolate.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace scaletune::scaling {

namespace {

// The last dotted component, lower-cased: "optim.lr" -> "lr".
std::string leaf(const std::string& name) {
  std::string s = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_lr(const std::string& name) {
  const std::string s = leaf(name);
  return s == "lr" || s == "learning_rate" || s == "peak_lr" || s == "eta";
}

bool is_batch(const std::string& name) {
  const std::string s = leaf(name);
  return s == "batch_tokens" || s == "batch_size" || s == "batch" || s == "tokens_per_step";
}

Estimate estimate(const Law& law, double compute, double level, const std::string& quantity) {
  Estimate e;
  e.value = law.at(compute, law.coef, kNaN, kNaN, quantity);
  e.law = (quantity.empty() ? law.y : quantity) + " " + law.method;
  e.flags = law.flags;
  std::vector<double> reps;
  for (double v : law.replicate_values(compute, quantity))
    if (std::isfinite(v)) reps.push_back(v);
  if (reps.size() >= 2) {
    e.lo = quantile(reps, (1 - level) / 2);
    e.hi = quantile(reps, (1 + level) / 2);
  }
  return e;
}

// The first law of `y` among `methods` without flags; failing that the first fitted one.
const Law* choose(const FitResult& fit, const std::string& y,
                  const std::vector<std::string>& methods) {
  const Law* fallback = nullptr;
  for (const auto& m : methods) {
    const Law* law = fit.find(y, m);
    if (!law || law->coef.empty()) continue;
    if (!law->flagged()) return law;
    if (!fallback) fallback = law;
  }
  return fallback;
}

nlohmann::json to_json(const Estimate& e) {
  nlohmann::json j = {{"value", e.value}, {"interval", {e.lo, e.hi}}, {"law", e.law}};
  if (!e.flags.empty()) j["flags"] = e.flags;
  return j;
}

}  // namespace

ModelShape shape_for_params(double n, double aspect_ratio, int head_dim) {
  ModelShape s;
  if (!(n > 0) || !(aspect_ratio > 0) || head_dim <= 0) return s;
  // N = 12 L d^2 with d = r L  =>  d = (12^-1 N r)^(1/3).
  const double d = std::cbrt(n * aspect_ratio / 12.0);
  s.d_model = std::max(head_dim, static_cast<int>(std::lround(d / head_dim)) * head_dim);
  s.n_head = s.d_model / head_dim;
  s.n_layer = std::max(1, static_cast<int>(std::lround(n / (12.0 * s.d_model * s.d_model))));
  s.params = 12.0 * s.n_layer * static_cast<double>(s.d_model) * s.d_model;
  return s;
}

Prediction extrapolate(const FitResult& fit, const ExtrapolateOptions& o) {
  if (!(o.compute > 0)) throw std::invalid_argument("--compute must be a positive FLOP count");
  const double level = fit.options.level;
  Prediction p;
  p.compute = o.compute;
  p.decades_beyond = std::log10(o.compute / fit.max_compute);
  if (p.decades_beyond > o.max_decades) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "extrapolating %.1f decades beyond the largest run (%.3g FLOPs); errors grow "
                  "like |exponent error| x ln(C/C_max), treat the intervals as optimistic",
                  p.decades_beyond, fit.max_compute);
    p.warnings.push_back(buf);
  }
  // Model size and tokens: the parametric surface if determined, then IsoFLOPs, envelope, front.
  // For approach3* the surface gives N_opt, D_opt (law y = "loss"); the others have N and D laws.
  // A law that gives no finite N at this compute (a surface fit that ran off to an infinite
  // coefficient on a small sweep) is passed over for the next one.
  const Law* d_law = nullptr;
  std::vector<std::string> unusable;
  for (const bool need_determined : {true, false}) {
    for (const std::string m :
         {"approach3", "approach3_likelihood", "approach2", "approach1", "pareto_front"}) {
      const bool surface = m.rfind("approach3", 0) == 0;
      const Law* nl = fit.find(surface ? "loss" : "N", m);
      if (!nl || nl->coef.empty() || (need_determined && nl->flagged())) continue;
      const Estimate n = estimate(*nl, o.compute, level, "N");
      if (!n.ok()) {
        if (std::find(unusable.begin(), unusable.end(), m) == unusable.end()) unusable.push_back(m);
        continue;
      }
      p.n = n;
      d_law = surface ? nl : fit.find("D", m);
      break;
    }
    if (p.n.ok()) break;
  }
  if (d_law && !d_law->coef.empty()) p.d = estimate(*d_law, o.compute, level, "D");
  if (p.n.ok())
    for (const auto& m : unusable)
      p.warnings.push_back(m +
                           " gives no finite model size at this compute; it comes from the law \"" +
                           p.n.law + "\"");
  if (!p.n.ok() && !unusable.empty()) {
    std::string names;
    for (const auto& m : unusable) names += (names.empty() ? "" : ", ") + m;
    throw std::invalid_argument("no law of the fit gives a finite model size N at this compute (" +
                                names +
                                "); the sweep needs trials at more compute scales (a larger "
                                "budget), then fit again");
  }
  if (!p.n.ok())
    throw std::invalid_argument(
        "the fit has no law for the model size N (needs N per run: --col N=COLUMN, or records "
        "with n_params)");
  if (!p.d.ok()) {
    p.d.value = o.compute / (6 * p.n.value);
    p.d.lo = std::isfinite(p.n.hi) ? o.compute / (6 * p.n.hi) : kNaN;
    p.d.hi = std::isfinite(p.n.lo) ? o.compute / (6 * p.n.lo) : kNaN;
    p.d.law = "D = C / (6 N)";
  }
  // Expected loss.
  if (const Law* law = choose(fit, "loss", {"approach3", "approach3_likelihood"})) {
    if (!law->flagged() || !fit.find("loss", "pareto_front"))
      p.loss = estimate(*law, o.compute, level, "loss");
  }
  if (!p.loss.ok())
    if (const Law* law = fit.find("loss", "pareto_front"); law && !law->coef.empty())
      p.loss = estimate(*law, o.compute, level, "loss");
  // Hyper-parameters: the near-optimal band (DeepSeek) first, then the Pareto front.
  for (const auto& law : fit.laws) {
    if (law.form != "power" || law.y == "N" || law.y == "D" || p.params.count(law.y)) continue;
    if (const Law* chosen = choose(fit, law.y, {"near_optimal_band", "pareto_front"}))
      p.params[law.y] = estimate(*chosen, o.compute, level, "");
  }
  for (const auto& [name, e] : p.params) {
    if (p.lr_param.empty() && is_lr(name)) p.lr_param = name;
    if (p.batch_param.empty() && is_batch(name)) p.batch_param = name;
    if (!e.flags.empty())
      p.warnings.push_back("the law for " + name + " is flagged (" + e.flags.front() +
                           "): its prediction is not reliable");
  }
  if (!p.n.flags.empty())
    p.warnings.push_back("the law for N is flagged (" + p.n.flags.front() + ")");
  if (!p.batch_param.empty()) {
    const Estimate& b = p.params[p.batch_param];
    const std::string s = leaf(p.batch_param);
    p.batch_in_tokens = s == "batch_tokens" || s == "tokens_per_step";
    const double scale = p.batch_in_tokens ? 1.0 : o.seq_len;
    p.batch_tokens = b;
    p.batch_tokens.value *= scale;
    p.batch_tokens.lo *= scale;
    p.batch_tokens.hi *= scale;
    p.steps = std::ceil(p.d.value / p.batch_tokens.value);
  }
  p.shape = shape_for_params(p.n.value, o.aspect_ratio, o.head_dim);
  if (o.available_tokens > 0 && p.d.value > o.available_tokens) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "D_opt = %.3g tokens exceeds the %.3g available: the run would repeat data "
                  "(%.1f epochs); use a data-constrained law or a larger dataset",
                  p.d.value, o.available_tokens, p.d.value / o.available_tokens);
    p.warnings.push_back(buf);
  }
  return p;
}

nlohmann::json to_json(const Prediction& p) {
  nlohmann::json j;
  j["compute"] = p.compute;
  j["decades_beyond_data"] = p.decades_beyond;
  j["N"] = to_json(p.n);
  j["D"] = to_json(p.d);
  j["loss"] = to_json(p.loss);
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, e] : p.params) params[k] = to_json(e);
  j["params"] = params;
  if (!p.lr_param.empty()) j["lr_param"] = p.lr_param;
  if (!p.batch_param.empty()) {
    j["batch_param"] = p.batch_param;
    j["batch_tokens"] = to_json(p.batch_tokens);
    j["steps"] = p.steps;
  }
  j["shape"] = {{"n_layer", p.shape.n_layer},
                {"d_model", p.shape.d_model},
                {"n_head", p.shape.n_head},
                {"params", p.shape.params}};
  j["warnings"] = p.warnings;
  return j;
}

}  // namespace scaletune::scaling
