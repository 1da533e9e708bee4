// Other tools read our records file: Debian's h5py (python3-h5py) and h5dump read the trials
// table, a curve and a text written by our code, after the writer closed and while a writer in
// another process is appending (then every committed row they see is whole). Each case skips
// when its tool is missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "orchestrator/store/records.h"
#include "tests/store/store_fixtures.h"
#include "tests/support/process.h"

namespace scaletune::store {
namespace {

using scaletune::test::run_command;

bool have_h5py() { return std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") == 0; }
bool have_h5dump() { return std::system("command -v h5dump >/dev/null 2>&1") == 0; }

// Runs a Python script with Debian's interpreter; the script is passed through a file so quoting
// stays simple.
scaletune::test::CommandResult run_python(const std::string& dir, const std::string& script,
                                          const std::string& args) {
  const std::string file = dir + "/script.py";
  std::ofstream(file) << script;
  return run_command("/usr/bin/python3 " + file + " " + args);
}

// What a user who knows h5py writes after reading docs/records.md.
constexpr const char* kReadWithH5py = R"(
import json, math, sys
import h5py

def text(s):
    return s.decode() if isinstance(s, bytes) else s

f = h5py.File(sys.argv[1], 'r')
overflow = f['overflow'][:] if 'overflow' in f else None

def value(cell):
    # A string cell of /trials (bytes); schema 3 keeps a long value whole in /overflow.
    if cell.startswith(b'@overflow:'):
        offset, length = (int(x) for x in cell[len(b'@overflow:'):].split(b':'))
        cell = overflow[offset:offset + length].tobytes()
    return cell.decode()

def num(x):
    x = float(x)
    return None if math.isnan(x) else x

assert text(f.attrs['format']) == 'scaletune-records', f.attrs['format']
trials = f['trials']
rows = trials[:trials.attrs['committed_rows']]
curves = f['curves']
points = curves[:curves.attrs['committed_rows']]
trial3 = points[points['trial_id'] == 3]
state = f['texts/search_state']
slot = state['slot%d' % state.attrs['current_slot']]
print(json.dumps({
    'schema_version': int(f.attrs['schema_version']),
    'params': [text(p) for p in f.attrs['params']],
    'config_yaml': text(f['meta/config_yaml'][()]),
    'trial_id': [int(x) for x in rows['trial_id']],
    'lr': [num(x) for x in rows['param.optimizer.lr']],
    'objective': [num(x) for x in rows['objective']],
    'cells_are_bytes': all(isinstance(s, bytes) for s in rows['status']),
    'has_overflow': overflow is not None,
    'status': [value(s) for s in rows['status']],
    'reason': [value(s) for s in rows['reason']],
    'host': [value(s) for s in rows['host']],
    'other_metrics': [json.loads(value(s)) for s in rows['other_metrics_json']],
    'val_loss': [num(x) for x in rows['metric.val_loss']],
    'slots': [value(s) for s in rows['slots']],
    'trial_dir': [value(s) for s in rows['trial_dir']],
    'curve_step': [int(x) for x in trial3['step']],
    'curve_train_loss': [num(x) for x in trial3['train_loss']],
    'search_state': bytes(slot[:]).decode(),
}))
)";

double or_nan(const nlohmann::json& j) { return j.is_null() ? kNaN : j.get<double>(); }

TEST(RecordsInterop, H5pyReadsTrialsCurveAndText) {
  if (!have_h5py()) GTEST_SKIP() << "python3-h5py is not installed (scripts/setup.sh installs it)";
  const auto dir = scaletune::test::temp_dir("store_interop_h5py");
  const std::string path = dir + "/records.h5";
  std::vector<TrialRecord> written;
  {
    auto w = RecordsWriter::create(path, test::sample_meta());
    for (int i = 0; i < 9; ++i) {
      written.push_back(test::sample_trial_v2(i));  // some values go to /overflow
      if (i == 4) written.back().reason = "@overflow:0:1 is how a long value is marked";
      if (i == 5) written.back().host = std::string(70, 'h') + "\xC3\xA9";
      w.append_trial(written.back());
    }
    w.append_curve(3, 0, test::sample_curve(3, 4));
    w.append_curve(5, 0, test::sample_curve(5, 2));
    w.put_text("search_state", "{\"observations\": 9}");
  }
  const auto r = run_python(dir, kReadWithH5py, path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema_version"], kSchemaVersion);
  EXPECT_TRUE(j["cells_are_bytes"].get<bool>());  // fixed-size strings come back as bytes
  EXPECT_TRUE(j["has_overflow"].get<bool>());
  EXPECT_EQ(j["params"], nlohmann::json(test::sample_meta().params));
  EXPECT_EQ(j["config_yaml"], test::sample_meta().config_yaml);
  ASSERT_EQ(j["trial_id"].size(), written.size());
  for (std::size_t i = 0; i < written.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    EXPECT_EQ(j["trial_id"][i], written[i].trial_id);
    EXPECT_EQ(j["lr"][i].get<double>(), written[i].params.at("optimizer.lr"));
    EXPECT_TRUE(test::same(or_nan(j["objective"][i]), written[i].objective));
    EXPECT_EQ(j["status"][i], to_string(written[i].status));
    EXPECT_EQ(j["reason"][i], written[i].reason);
    EXPECT_EQ(j["host"][i], written[i].host);
    const auto val_loss =
        written[i].metrics.count("val_loss") ? written[i].metrics.at("val_loss") : kNaN;
    EXPECT_TRUE(test::same(or_nan(j["val_loss"][i]), val_loss));
    std::string slots;
    for (const auto& x : written[i].slots) slots += (slots.empty() ? "" : ",") + x;
    EXPECT_EQ(j["slots"][i], slots);  // docs/records.md: comma-joined, rank 0 first
    EXPECT_EQ(j["trial_dir"][i], written[i].trial_dir);
    for (const auto& [name, v] : written[i].metrics) {
      if (name == "val_loss" || name == "train_loss") continue;  // declared: own columns
      EXPECT_EQ(j["other_metrics"][i][name].get<double>(), v) << name;
    }
  }
  const auto curve = test::sample_curve(3, 4);
  ASSERT_EQ(j["curve_step"].size(), curve.size());
  for (std::size_t i = 0; i < curve.size(); ++i) {
    EXPECT_EQ(j["curve_step"][i], curve[i].step);
    EXPECT_EQ(j["curve_train_loss"][i].get<double>(), curve[i].train_loss);
  }
  EXPECT_EQ(j["search_state"], "{\"observations\": 9}");
}

TEST(RecordsInterop, H5dumpReadsTheFile) {
  if (!have_h5dump()) GTEST_SKIP() << "h5dump is not installed (package hdf5-tools)";
  const auto dir = scaletune::test::temp_dir("store_interop_h5dump");
  const std::string path = dir + "/records.h5";
  {
    auto w = RecordsWriter::create(path, test::sample_meta());
    for (int i = 0; i < 4; ++i) w.append_trial(test::sample_trial(i));
  }
  const auto r = run_command("h5dump -d /trials " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"param.optimizer.lr\""), std::string::npos) << r.out.substr(0, 2000);
  // Fixed-size cells: h5dump prints their NUL padding as \000.
  EXPECT_NE(r.out.find("\"node-3\\000"), std::string::npos);
  EXPECT_NE(r.out.find("committed_rows"), std::string::npos);
}

// h5py polls the file while store_crash_writer appends as fast as it can: every read succeeds,
// and the committed rows it sees are whole and in order.
constexpr const char* kPollWithH5py = R"(
import sys, time
import h5py

def text(s):
    return s.decode() if isinstance(s, bytes) else s

reads, failed, seen, last = 0, 0, [], -1
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        with h5py.File(sys.argv[1], 'r') as f:
            t = f['trials']
            rows = t[:t.attrs['committed_rows']]
    except (OSError, KeyError):  # opened in the middle of a flush (docs/records.md): try again
        failed += 1
        continue
    for k, row in enumerate(rows):
        op = round(row['param.optimizer.lr'] * 1000 - 1)  # sample_trial(op)
        assert row['trial_id'] == op // 2, (k, row)
        assert text(row['status']) in ('running', 'ok', 'failed'), (k, row)
        assert text(row['host']) == 'node-%d' % (op % 4), (k, row)
    assert len(rows) >= last, (len(rows), last)
    last = len(rows)
    seen.append(last)
    reads += 1
print(reads, failed, seen[0], seen[-1])
)";

// The writer child; killed when the test ends, also when an assertion returns early.
struct Writer {
  pid_t pid = -1;
  Writer() = default;
  Writer(Writer&& o) noexcept : pid(o.pid) { o.pid = -1; }
  Writer(const Writer&) = delete;
  ~Writer() { stop(); }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
  }
};

Writer start_writer(const std::string& path, long last_op) {
  Writer w;
  w.pid = ::fork();
  if (w.pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);  // keep the test's own output streams free of the child
    const std::string b = std::to_string(last_op);
    // 1 ms between operations: far faster than a sweep, slow enough that readers keep up.
    ::execl(STORE_CRASH_WRITER, STORE_CRASH_WRITER, path.c_str(), "0", b.c_str(), "1000",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return w;
}

// Waits until the writer has created the file and committed a first row.
void wait_for_rows(const std::string& path) {
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < limit) {
    try {
      if (std::filesystem::exists(path) && !load(path, {false}).trials.empty()) return;
    } catch (const StoreError&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  FAIL() << "the writer committed nothing in 30 s";
}

TEST(RecordsInterop, ReadersDuringWrites) {
  const auto dir = scaletune::test::temp_dir("store_interop_live");
  const std::string path = dir + "/records.h5";
  Writer w = start_writer(path, 30000);  // about 30 s at most if the test dies early
  wait_for_rows(path);

  // Our reader: every table of every snapshot is a prefix of what the writer appends.
  std::size_t first_rows = 0, rows = 0;
  for (int i = 0; i < 40; ++i) {
    Records r;
    ASSERT_NO_THROW(r = load(path));
    std::string why;
    ASSERT_TRUE(test::tables_are_prefixes(r, &why)) << "snapshot " << i << ": " << why;
    rows = r.trials.size();
    if (i == 0) first_rows = rows;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(rows, first_rows) << "the writer made no progress while we read";

  if (have_h5dump()) {
    // Like h5py, h5dump can open the file in the middle of a flush; a second try then works.
    auto dump = [](const std::string& args) {
      scaletune::test::CommandResult r;
      for (int attempt = 0; attempt < 3; ++attempt) {
        r = run_command("h5dump " + args);
        if (r.exit_code == 0) break;
      }
      return r;
    };
    for (int i = 0; i < 10; ++i) {
      const auto r = dump("-d /trials -A " + path);  // -A: header and attributes
      ASSERT_EQ(r.exit_code, 0) << "h5dump read " << i << ": " << r.err;
      EXPECT_NE(r.out.find("committed_rows"), std::string::npos);
      const auto curves = dump("-d /curves -s 0 -c 3 " + path);
      ASSERT_EQ(curves.exit_code, 0) << "h5dump read " << i << ": " << curves.err;
      EXPECT_NE(curves.out.find("\"train_loss\""), std::string::npos);
    }
  }
  if (have_h5py()) {
    const auto r = run_python(dir, kPollWithH5py, path + " 1.5");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    long reads = 0, failed = 0, first = 0, last = 0;
    std::istringstream(r.out) >> reads >> failed >> first >> last;
    std::printf("h5py during writes: %ld reads, %ld retried, rows %ld -> %ld\n", reads, failed,
                first, last);
    EXPECT_GE(reads, 3) << r.out;
    EXPECT_LT(failed, reads) << "most h5py opens must succeed at once: " << r.out;
    EXPECT_GT(last, first) << "h5py saw no new rows: " << r.out;
  }
  w.stop();
  Records r;
  ASSERT_NO_THROW(r = load(path));
  std::int64_t end = 0;
  EXPECT_TRUE(test::matches_some_prefix(r, &end));  // a killed writer leaves an exact prefix
}

}  // namespace
}  // namespace scaletune::store
