#include "trainer/core/result.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace scaletune::trainer {
namespace {

// JSON has no NaN; nlohmann writes it as null, and null reads back as NaN.
double number_or_nan(const nlohmann::json& j) { return j.is_number() ? j.get<double>() : kNaN; }

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

const char* to_string(RunStatus status) {
  switch (status) {
    case RunStatus::kOk:
      return "ok";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kDiverged:
      return "diverged";
    case RunStatus::kOom:
      return "oom";
  }
  return "failed";
}

RunStatus parse_run_status(const std::string& text) {
  if (text == "ok") return RunStatus::kOk;
  if (text == "failed") return RunStatus::kFailed;
  if (text == "diverged") return RunStatus::kDiverged;
  if (text == "oom") return RunStatus::kOom;
  throw std::invalid_argument("status must be one of ok, failed, diverged, oom; got '" + text +
                              "'");
}

double TrainResult::objective_value() const {
  auto it = metrics.find(objective);
  return it == metrics.end() ? kNaN : it->second;
}

nlohmann::json TrainResult::to_json() const {
  nlohmann::json j;
  j["status"] = to_string(status);
  j["reason"] = reason;
  j["task"] = task;
  j["objective"] = objective;
  j["metrics"] = nlohmann::json::object();
  for (const auto& [k, v] : metrics) j["metrics"][k] = finite_or_null(v);
  j["cost"] = {{"flops", cost.flops},
               {"flops_6n", cost.flops_6n},
               {"tokens", cost.tokens},
               {"device_seconds", cost.device_seconds},
               {"wall_seconds", cost.wall_seconds},
               {"devices", cost.devices}};
  nlohmann::json c = nlohmann::json::object();
  for (const char* key : {"step", "tokens", "flops", "wall_seconds", "train_loss", "val_loss",
                          "train_return", "eval_return"})
    c[key] = nlohmann::json::array();
  for (const auto& p : curve) {
    c["step"].push_back(p.step);
    c["tokens"].push_back(finite_or_null(p.tokens));
    c["flops"].push_back(finite_or_null(p.flops));
    c["wall_seconds"].push_back(finite_or_null(p.wall_seconds));
    c["train_loss"].push_back(finite_or_null(p.train_loss));
    c["val_loss"].push_back(finite_or_null(p.val_loss));
    c["train_return"].push_back(finite_or_null(p.train_return));
    c["eval_return"].push_back(finite_or_null(p.eval_return));
  }
  j["curve"] = std::move(c);
  j["config"] = config.is_null() ? nlohmann::json::object() : config;
  j["info"] = info;
  return j;
}

TrainResult TrainResult::from_json(const nlohmann::json& j) {
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key))
      throw std::invalid_argument(std::string("result has no '") + key + "' field");
    return j.at(key);
  };
  TrainResult r;
  r.status = parse_run_status(need("status").get<std::string>());
  r.reason = j.value("reason", "");
  r.task = j.value("task", "");
  r.objective = j.value("objective", "");
  for (const auto& [k, v] : need("metrics").items()) r.metrics[k] = number_or_nan(v);
  const auto& cost = need("cost");
  r.cost.flops = number_or_nan(cost.value("flops", nlohmann::json(0.0)));
  r.cost.flops_6n = number_or_nan(cost.value("flops_6n", nlohmann::json(0.0)));
  r.cost.tokens = number_or_nan(cost.value("tokens", nlohmann::json(0.0)));
  r.cost.device_seconds = number_or_nan(cost.value("device_seconds", nlohmann::json(0.0)));
  r.cost.wall_seconds = number_or_nan(cost.value("wall_seconds", nlohmann::json(0.0)));
  r.cost.devices = cost.value("devices", 1);
  if (j.contains("curve") && j["curve"].is_object()) {
    const auto& c = j["curve"];
    const std::size_t n = c.contains("step") ? c["step"].size() : 0;
    auto column = [&](const char* key, std::size_t i) {
      return c.contains(key) && i < c[key].size() ? number_or_nan(c[key][i]) : kNaN;
    };
    for (std::size_t i = 0; i < n; ++i) {
      CurvePoint p;
      p.step = c["step"][i].is_number() ? c["step"][i].get<std::int64_t>() : 0;
      p.tokens = column("tokens", i);
      p.flops = column("flops", i);
      p.wall_seconds = column("wall_seconds", i);
      p.train_loss = column("train_loss", i);
      p.val_loss = column("val_loss", i);
      p.train_return = column("train_return", i);
      p.eval_return = column("eval_return", i);
      r.curve.push_back(p);
    }
  }
  if (j.contains("config")) r.config = j["config"];
  if (j.contains("info") && j["info"].is_object())
    for (const auto& [k, v] : j["info"].items())
      r.info[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return r;
}

void write_result(const TrainResult& result, const std::string& path) {
  // A temporary name of this process's own: two writers never share (and interleave) one.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << result.to_json().dump(2) << "\n";
    out.flush();
    if (!out) throw std::runtime_error("failed writing " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

TrainResult read_result(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("no result file at " + path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + " is not valid JSON: " + e.what());
  }
  try {
    return TrainResult::from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace scaletune::trainer
