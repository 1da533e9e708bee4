// Helpers of the PPO benchmarks: run the Python reference and read its JSON line.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace scaletune::bench {

// Runs bench/ppo/cleanrl_ppo.py with `args` under Debian's python3; returns its JSON line, or
// null (with a note on stderr) when Python, torch or numpy is missing.
inline nlohmann::json run_python_reference(const std::string& args) {
  const std::string cmd =
      "/usr/bin/python3 " SCALETUNE_SOURCE_DIR "/bench/ppo/cleanrl_ppo.py " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return nullptr;
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe)) out += buf;
  const int rc = pclose(pipe);
  const auto start = out.rfind('{');
  if (rc != 0 || start == std::string::npos) {
    std::fprintf(stderr, "python reference failed (%s):\n%s\n", cmd.c_str(), out.c_str());
    return nullptr;
  }
  return nlohmann::json::parse(out.substr(start), nullptr, false);
}

}  // namespace scaletune::bench
