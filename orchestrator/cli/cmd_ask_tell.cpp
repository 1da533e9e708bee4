// scaletune ask-tell --config FILE [--state FILE]
//
// The CARBS searcher over JSON lines, so a training script in any language can use it: one
// request per stdin line, one response per stdout line (docs/search.md has an example session).
//   {"cmd":"suggest"}                                ->
//   {"id":..,"params":{..},"predicted":{..},"kind":..}
//   {"cmd":"observe","id":..,"output":..,"cost":..}  -> {"ok":true}   ("failed":true,
//   "infra_failed":true,
//                                                       or "params":{..} instead of "id")
//   {"cmd":"forget","id":..}  {"cmd":"pareto"}  {"cmd":"save"}
// A bad request gets {"error":"..."} and the session goes on. With --state the state is loaded
// when the file exists and rewritten (atomically) after every request that changes it, so a
// killed session loses nothing it acknowledged.
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "orchestrator/cli/command.h"
#include "orchestrator/config/binder.h"
#include "orchestrator/search/carbs.h"

namespace scaletune::cli {
namespace {

using nlohmann::json;
using search::Carbs;

class RequestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Integer parameters go out as JSON integers (epochs: 14, not 14.0).
json params_json(const Carbs& carbs, const std::map<std::string, double>& params) {
  json out = json::object();
  for (const auto& [name, spec] : carbs.config().search) {
    const double v = params.at(name);
    if (spec.integer && spec.space != "logit" && std::fabs(v) < 9e15)
      out[name] = static_cast<long long>(v);
    else
      out[name] = v;
  }
  return out;
}

double number(const json& req, const char* key, double fallback) {
  if (!req.contains(key)) return fallback;
  const json& v = req.at(key);
  if (v.is_null()) return std::nan("");
  if (!v.is_number())
    throw RequestError(std::string("\"") + key + "\" must be a number, got " + v.dump());
  return v.get<double>();
}

bool flag(const json& req, const char* key) {
  if (!req.contains(key)) return false;
  if (!req.at(key).is_boolean())
    throw RequestError(std::string("\"") + key + "\" must be true or false");
  return req.at(key).get<bool>();
}

std::string id_of(const json& req) {
  if (!req.contains("id")) return "";
  if (!req.at("id").is_string()) throw RequestError("\"id\" must be a string");
  return req.at("id").get<std::string>();
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write search state " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Session {
 public:
  Session(Carbs carbs, std::string state_path)
      : carbs_(std::move(carbs)), state_path_(std::move(state_path)) {}

  // One request line -> one response (never throws for bad input).
  json handle(const std::string& line) {
    json req;
    try {
      req = json::parse(line);
    } catch (const std::exception& e) {
      return {{"error", std::string("malformed JSON: ") + e.what()}};
    }
    try {
      if (!req.is_object() || !req.contains("cmd") || !req.at("cmd").is_string())
        throw RequestError(
            "a request is a JSON object with \"cmd\": suggest, observe, forget, pareto or save");
      const std::string cmd = req.at("cmd").get<std::string>();
      if (cmd == "suggest") return suggest();
      if (cmd == "observe") return observe(req);
      if (cmd == "forget") {
        const std::string id = id_of(req);
        if (id.empty()) throw RequestError("forget needs \"id\"");
        carbs_.forget(id);
        persist();
        return {{"ok", true}};
      }
      if (cmd == "pareto") return pareto();
      if (cmd == "save") {
        std::string path = req.contains("path") && req.at("path").is_string()
                               ? req.at("path").get<std::string>()
                               : state_path_;
        if (path.empty())
          throw RequestError("save needs a file: start with --state FILE or pass \"path\"");
        write_atomically(path, carbs_.save_state());
        return {{"ok", true}, {"path", path}};
      }
      const std::string hint =
          config::nearest(cmd, {"suggest", "observe", "forget", "pareto", "save"});
      throw RequestError("unknown cmd '" + cmd + "'" +
                         (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    } catch (const RequestError& e) {
      return {{"error", e.what()}};
    } catch (const search::SearchError& e) {
      return {{"error", e.what()}};
    }
  }

  void persist() const {
    if (!state_path_.empty()) write_atomically(state_path_, carbs_.save_state());
  }

 private:
  json suggest() {
    const search::Suggestion s = carbs_.suggest();
    persist();
    json out = {{"id", s.id},
                {"params", params_json(carbs_, s.params)},
                {"predicted",
                 {{"output", number_or_null(s.predicted_output)},
                  {"cost", number_or_null(s.predicted_cost)},
                  {"p_success", number_or_null(s.p_success)}}},
                {"kind", search::kind_name(s.kind)}};
    if (!s.fallback_reason.empty()) out["fallback_reason"] = s.fallback_reason;
    return out;
  }

  json observe(const json& req) {
    const std::string id = id_of(req);
    if (flag(req, "infra_failed")) {  // infrastructure failure: forget, never model
      if (id.empty()) throw RequestError("infra_failed needs the suggestion's \"id\"");
      carbs_.forget(id);
      persist();
      return {{"ok", true}};
    }
    search::Observation o;
    o.suggestion_id = id;
    o.failed = flag(req, "failed");
    o.output = number(req, "output", std::nan(""));
    if (!o.failed && !req.contains("output"))
      throw RequestError("observe needs \"output\" (or \"failed\": true)");
    o.cost = number(req, "cost", 1.0);
    if (req.contains("params")) {
      const json& p = req.at("params");
      if (!p.is_object()) throw RequestError("\"params\" must be an object of name -> number");
      for (auto it = p.begin(); it != p.end(); ++it) {
        if (!it.value().is_number())
          throw RequestError("parameter '" + it.key() + "' must be a number, got " +
                             it.value().dump());
        o.params[it.key()] = it.value().get<double>();
      }
    }
    if (id.empty() && o.params.empty())
      throw RequestError("observe needs \"id\" (a suggestion) or \"params\" (an external point)");
    carbs_.observe(o);
    persist();
    return {{"ok", true}};
  }

  json pareto() const {
    json front = json::array();
    for (const auto& p : carbs_.pareto())
      front.push_back({{"params", params_json(carbs_, p.params)},
                       {"output", p.output},
                       {"cost", p.cost},
                       {"count", p.count}});
    return {{"front", front}};
  }

  Carbs carbs_;
  std::string state_path_;
};

}  // namespace

Command add_ask_tell_command(CLI::App& app) {
  struct Options {
    std::string config;
    std::string state;
    std::vector<std::string> overrides;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "ask-tell", "Run the CARBS searcher over JSON lines on stdin/stdout (docs/search.md)");
  sub->add_option("--config", opts->config, "Search config (YAML with search:, direction:, ...)")
      ->required();
  sub->add_option("--state", opts->state,
                  "State file: loaded when it exists, rewritten after every change");
  sub->add_option("--set", opts->overrides, "Override a config key (repeatable)");
  return {
      sub, "ask-tell", [opts] {
        const auto doc = config::Document::load_file(opts->config, opts->overrides);
        const auto config = config::bind<search::SearchConfig>(doc);
        std::unique_ptr<Carbs> carbs;
        if (!opts->state.empty() && std::filesystem::exists(opts->state)) {
          try {
            carbs = std::make_unique<Carbs>(Carbs::load_state(read_text(opts->state)));
          } catch (const search::SearchError& e) {
            throw UsageError("cannot resume from " + opts->state + ": " + e.what());
          }
          if (config::to_json(carbs->config()) != config::to_json(config))
            throw UsageError("state " + opts->state + " was made with a different config than " +
                             opts->config + "; use a new --state file for a new search");
          spdlog::info("resumed from {}: {} successes, {} failures, {} outstanding", opts->state,
                       carbs->num_successes(), carbs->num_failures(), carbs->num_outstanding());
        } else {
          try {
            carbs = std::make_unique<Carbs>(config);
          } catch (const search::SearchError& e) {
            throw UsageError(e.what());
          }
        }
        Session session(std::move(*carbs), opts->state);
        session.persist();
        std::string line;
        while (std::getline(std::cin, line)) {
          if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
          std::cout << session.handle(line).dump() << "\n" << std::flush;
        }
        return kExitOk;
      }};
}

}  // namespace scaletune::cli
