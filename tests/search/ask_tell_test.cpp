// Runs the real `scaletune ask-tell` program: the JSON-lines protocol, errors that keep the
// session going, state files that resume exactly, and `scaletune validate` on a search config.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/process.h"

namespace scaletune::test {
namespace {

using nlohmann::json;

const std::string kConfig = std::string(SCALETUNE_SOURCE_DIR) + "/configs/search_lr_epochs.yaml";

std::vector<json> session(const std::string& dir, const std::vector<std::string>& lines,
                          const std::string& flags, int* exit_code = nullptr,
                          std::string* err = nullptr) {
  const std::string in = dir + "/in.jsonl";
  std::ofstream f(in);
  for (const auto& l : lines) f << l << "\n";
  f.close();
  const auto r = run_command(scaletune_bin() + " ask-tell " + flags + " < " + in);
  if (exit_code) *exit_code = r.exit_code;
  if (err) *err = r.err;
  std::vector<json> out;
  std::stringstream ss(r.out);
  std::string line;
  while (std::getline(ss, line)) out.push_back(json::parse(line));
  return out;
}

// A noiseless B1 objective, computed from the suggestion's parameters.
std::string observe_line(const json& s) {
  const double lr = s["params"]["lr"], m = s["params"]["momentum"];
  const double e = s["params"]["epochs"].get<double>();
  const double v = 0.2 + 2 / std::sqrt(e) +
                   0.5 * std::pow(std::log10(lr) - std::log10(3e-3) + 0.3 * std::log10(e / 10), 2) +
                   0.3 * std::pow(std::log10(m / (1 - m)) - std::log10(19.0), 2);
  json o = {{"cmd", "observe"}, {"id", s["id"]}, {"output", v}, {"cost", e}};
  return o.dump();
}

TEST(AskTell, ProtocolAndErrors) {
  const std::string dir = temp_dir("ask_tell_protocol");
  const auto out = session(
      dir,
      {R"({"cmd":"suggest"})", "this is not json", R"({"cmd":"sugest"})",
       R"({"cmd":"observe","id":"nope","output":1,"cost":2})",
       R"({"cmd":"observe","params":{"lr":0.001,"momentum":0.9,"epoch":4},"output":1,"cost":4})",
       R"({"cmd":"observe","params":{"lr":"fast","momentum":0.9,"epochs":4},"output":1,"cost":4})",
       R"({"cmd":"observe","params":{"lr":0.001,"momentum":0.9,"epochs":4},"output":"x","cost":4})",
       R"({"cmd":"observe","params":{"lr":0.001,"momentum":0.9,"epochs":4},"output":0.9,"cost":4})",
       R"({"cmd":"pareto"})", R"({"cmd":"save"})"},
      "--config " + kConfig);
  ASSERT_EQ(out.size(), 10u);
  const json& s = out[0];
  EXPECT_EQ(s["kind"], "random");
  EXPECT_TRUE(s["params"]["epochs"].is_number_integer()) << s.dump();  // integers stay integers
  EXPECT_TRUE(s["predicted"]["output"].is_null());
  EXPECT_NE(out[1]["error"].get<std::string>().find("malformed JSON"), std::string::npos);
  EXPECT_NE(out[2]["error"].get<std::string>().find("did you mean 'suggest'"), std::string::npos);
  EXPECT_NE(out[3]["error"].get<std::string>().find("unknown suggestion id 'nope'"),
            std::string::npos);
  EXPECT_NE(out[4]["error"].get<std::string>().find("did you mean 'epochs'"), std::string::npos);
  EXPECT_NE(out[5]["error"].get<std::string>().find("'lr' must be a number"), std::string::npos);
  EXPECT_NE(out[6]["error"].get<std::string>().find("\"output\" must be a number"),
            std::string::npos);
  EXPECT_EQ(out[7], (json{{"ok", true}}));
  ASSERT_EQ(out[8]["front"].size(), 1u);  // the one external observation
  EXPECT_EQ(out[8]["front"][0]["cost"], 4.0);
  EXPECT_EQ(out[8]["front"][0]["params"]["epochs"], 4);
  EXPECT_NE(out[9]["error"].get<std::string>().find("--state"), std::string::npos);
}

TEST(AskTell, StateResumesExactlyAndKeepsOutstandingSuggestions) {
  const std::string dir = temp_dir("ask_tell_state");
  // Uninterrupted: 7 rounds of suggest + observe, then one more suggest.
  std::vector<json> straight;
  {
    const std::string state = dir + "/straight.json";
    for (int i = 0; i < 8; ++i) {
      // One process per request pair: each run resumes from the state file.
      auto out =
          session(dir, {R"({"cmd":"suggest"})"}, "--config " + kConfig + " --state " + state);
      ASSERT_EQ(out.size(), 1u);
      straight.push_back(out[0]);
      if (i < 7) {
        auto ok = session(dir, {observe_line(out[0])}, "--config " + kConfig + " --state " + state);
        ASSERT_EQ(ok.size(), 1u);
        EXPECT_EQ(ok[0], (json{{"ok", true}})) << ok[0].dump();
      }
    }
  }
  // The same in one process.
  std::vector<json> one;
  {
    const std::string state = dir + "/one.json";
    // Requests depend on responses, so drive it round by round with a growing script: the
    // objective is deterministic, so replaying earlier rounds reproduces them.
    std::vector<std::string> script;
    for (int i = 0; i < 8; ++i) {
      script.push_back(R"({"cmd":"suggest"})");
      std::remove(state.c_str());
      auto out = session(dir, script, "--config " + kConfig);
      ASSERT_EQ(out.size(), script.size());
      const json s = out.back();
      one.push_back(s);
      if (i < 7) script.push_back(observe_line(s));
    }
  }
  ASSERT_EQ(one.size(), straight.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i]["id"], straight[i]["id"]) << i;
    EXPECT_EQ(one[i]["params"], straight[i]["params"]) << i;
  }
  EXPECT_NE(straight[4]["kind"], "random");  // a model step (trend, then bo) is covered too

  // An outstanding suggestion survives the end of the process and can be observed later.
  const std::string state = dir + "/pending.json";
  auto first = session(dir, {R"({"cmd":"suggest"})"}, "--config " + kConfig + " --state " + state);
  ASSERT_EQ(first.size(), 1u);
  auto later = session(dir, {observe_line(first[0]), observe_line(first[0])},
                       "--config " + kConfig + " --state " + state);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0], (json{{"ok", true}}));
  EXPECT_TRUE(later[1].contains("error"));  // observed twice: the second is refused
}

TEST(AskTell, InfraFailureForgetsAndFailedTrialsAreRecorded) {
  const std::string dir = temp_dir("ask_tell_failures");
  const std::string state = dir + "/s.json";
  auto a = session(dir, {R"({"cmd":"suggest"})", R"({"cmd":"suggest"})"},
                   "--config " + kConfig + " --state " + state);
  ASSERT_EQ(a.size(), 2u);
  auto b = session(dir,
                   {json{{"cmd", "observe"}, {"id", a[0]["id"]}, {"infra_failed", true}}.dump(),
                    json{{"cmd", "observe"}, {"id", a[0]["id"]}, {"output", 1}}.dump(),
                    json{{"cmd", "observe"}, {"id", a[1]["id"]}, {"failed", true}}.dump()},
                   "--config " + kConfig + " --state " + state);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0], (json{{"ok", true}}));
  EXPECT_TRUE(b[1].contains("error"));  // forgotten: cannot be observed any more
  EXPECT_EQ(b[2], (json{{"ok", true}}));
  const json st = json::parse(read_file(state));
  EXPECT_EQ(st["failures"].size(), 1u);
  EXPECT_EQ(st["successes"].size(), 0u);
  EXPECT_EQ(st["outstanding"].size(), 0u);
}

TEST(AskTell, BadConfigAndMismatchedStateAreUsageErrors) {
  const std::string dir = temp_dir("ask_tell_bad");
  std::ofstream(dir + "/bad.yaml") << "search:\n  lr: {space: log, center: -1}\n";
  int code = 0;
  std::string err;
  session(dir, {}, "--config " + dir + "/bad.yaml", &code, &err);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("search.lr"), std::string::npos) << err;
  EXPECT_NE(err.find("center -1 must lie strictly inside"), std::string::npos) << err;

  const std::string state = dir + "/s.json";
  session(dir, {R"({"cmd":"suggest"})"}, "--config " + kConfig + " --state " + state, &code);
  EXPECT_EQ(code, 0);
  session(dir, {}, "--config " + kConfig + " --set seed=9 --state " + state, &code, &err);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("different config"), std::string::npos) << err;
}

TEST(AskTell, ValidateResolvesASearchConfig) {
  const auto r = run_command(scaletune_bin() + " validate " + std::string(SCALETUNE_SOURCE_DIR) +
                             "/configs/search_minimal.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("optim.lr:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("num_random_samples: 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("direction: minimize"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace scaletune::test
