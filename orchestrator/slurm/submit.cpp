// sbatch invocation and its output (submit.h).
#include "orchestrator/slurm/submit.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "orchestrator/util/process.h"

namespace scaletune::slurm {
namespace {

struct Captured {
  util::ExitStatus status;
  std::string output;  // stdout and stderr interleaved, as the user would see them
  bool timed_out = false;
};

// Runs a short-lived program to completion (or `timeout_seconds`) and captures its output.
Captured capture(const std::vector<std::string>& argv, double timeout_seconds) {
  char path[] = "/tmp/scaletune-sbatch-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw SubmitError("cannot create a temporary file in /tmp for sbatch's output");
  close(fd);
  Captured c;
  {
    util::SpawnOptions options;
    options.argv = argv;
    options.log_path = path;
    util::ChildProcess child = util::ChildProcess::spawn(options);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
    while (true) {
      if (auto status = child.poll()) {
        c.status = *status;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline && !child.stop_requested()) {
        c.timed_out = true;
        child.stop(std::chrono::seconds(2));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  c.output = text.str();
  std::remove(path);
  return c;
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

// sbatch's message for a partition that does not exist (Slurm 20-24):
//   "sbatch: error: invalid partition specified: NAME"
std::optional<std::string> invalid_partition(const std::string& output) {
  const std::string marker = "invalid partition specified: ";
  const std::size_t at = output.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const std::size_t start = at + marker.size();
  const std::size_t end = output.find_first_of(" \r\n", start);
  return output.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

std::optional<Submission> parse_sbatch_output(const std::string& output) {
  std::optional<Submission> found;
  std::stringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    line = trim(line);
    const std::size_t semicolon = line.find(';');
    const std::string id = line.substr(0, semicolon);
    if (id.empty() ||
        !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); }))
      continue;
    Submission s;
    s.job_id = id;
    if (semicolon != std::string::npos) s.cluster = line.substr(semicolon + 1);
    found = s;
  }
  if (found) found->output = output;
  return found;
}

std::vector<std::string> list_partitions(double timeout_seconds) {
  if (util::find_program("sinfo").empty()) return {};
  Captured c;
  try {
    c = capture({"sinfo", "-h", "-o", "%R"}, timeout_seconds);
  } catch (const std::exception&) {
    return {};
  }
  if (!c.status.success()) return {};
  std::vector<std::string> names;
  std::stringstream lines(c.output);
  std::string line;
  while (std::getline(lines, line)) {
    line = trim(line);
    if (!line.empty() && std::find(names.begin(), names.end(), line) == names.end())
      names.push_back(line);
  }
  return names;
}

Submission submit_script(const std::string& script_path, const SubmitOptions& options) {
  if (util::find_program(options.sbatch).empty())
    throw SubmitError("'" + options.sbatch +
                      "' not found on PATH: run `scaletune submit` where Slurm's client "
                      "commands are installed (a login node), or use --dry-run to print the "
                      "batch script");
  std::vector<std::string> argv = {options.sbatch, "--parsable"};
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  argv.push_back(script_path);
  Captured c;
  try {
    c = capture(argv, options.timeout_seconds);
  } catch (const util::SpawnError& e) {
    throw SubmitError(std::string("cannot run sbatch: ") + e.what());
  }
  const std::string output = trim(c.output);
  if (c.timed_out)
    throw SubmitError("sbatch did not finish within " +
                      std::to_string(static_cast<int>(options.timeout_seconds)) +
                      " s (is slurmctld reachable? try `sinfo`); its output:\n" + output);
  if (!c.status.success()) {
    if (const auto partition = invalid_partition(output)) {
      std::string message = "partition '" + *partition + "' does not exist on this cluster";
      const auto known = list_partitions();
      if (!known.empty()) {
        message += "; partitions:";
        for (const auto& p : known) message += " " + p;
      }
      throw SubmitError(message + " (pass one with --partition, or none for the default)\n" +
                        "sbatch said: " + output);
    }
    throw SubmitError("sbatch rejected the job (" + c.status.describe() + "):\n" + output);
  }
  auto submission = parse_sbatch_output(c.output);
  if (!submission)
    throw SubmitError(
        "sbatch succeeded but printed no job id (expected `sbatch --parsable` "
        "output such as 1234); it printed:\n" +
        output);
  return *submission;
}

}  // namespace scaletune::slurm
