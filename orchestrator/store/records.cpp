// The records file: schema, single writer and snapshot reader (orchestrator/store/records.h,
// layout in docs/records.md).
//
// Durability protocol (why each append costs two flushes): see table.h. Readers need no
// cooperation from the writer: the writer takes no HDF5 file lock (it serialises writers with
// its own lock file instead), so h5py, h5dump and load() can open the file while it is written,
// and every table is read only up to its `committed_rows`.
#include "orchestrator/store/records.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "orchestrator/store/hdf5.h"
#include "orchestrator/store/overflow.h"
#include "orchestrator/store/table.h"
#include "scaletune_version.h"

namespace scaletune::store {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kTrialChunkRows = 64;
constexpr std::uint64_t kCurveChunkRows = 1024;
constexpr unsigned kChunkIndexK = 8192;
constexpr hsize_t kTextChunkBytes = 16384;
constexpr hsize_t kAllocationBlock = 1 << 20;
// How far past the end of the file readers may read after a crash (see open_file).
constexpr hsize_t kEndSlack = 16 << 20;
// A resuming writer makes the file that much longer (a sparse hole), so h5py can read it too.
constexpr hsize_t kWriterEndSlack = 1 << 20;
constexpr const char* kParamPrefix = "param.";
constexpr const char* kMetricPrefix = "metric.";
constexpr const char* kOtherMetrics = "other_metrics_json";
constexpr const char* kCurrentSlot = "current_slot";
constexpr const char* kSlotNames[2] = {"slot0", "slot1"};
// Up to this many texts live in the /texts object header itself (compact link storage), where
// adding one is a single in-place write; beyond it HDF5 moves the links to a heap.
constexpr unsigned kCompactTexts = 64;

std::string file_what(const std::string& path) { return "records file '" + path + "'"; }

// An error that retrying cannot fix (missing, foreign, newer file); load() does not retry it.
class DefinitiveError : public StoreError {
 public:
  using StoreError::StoreError;
};

// ---- columns ----

// The trials columns of a schema version (docs/records.md, "Schema history").
//
// Schema 3 stores strings in fixed-size cells: a row's bytes then sit in the table's chunk like
// its numbers, and no kill can tear a global heap collection committed rows point into. A value
// longer than its cell goes to /overflow whole (overflow.h), so a width only trades file size
// (every row pays it; 64 rows make a chunk) against how often a value needs a second dataset.
// Measured on the records files of the sweep, cli and slurm tests (154 rows; longest value in
// bytes): status 11, failure_kind 7, reason 39, host 2, log_path 78, suggestion_id 3, slots 17,
// trial_dir 68, other_metrics_json 542 (an LM trial's metrics; most rows 2 to 270). Hence:
// status holds the longest name ("infra_failed"); host holds HOST_NAME_MAX (64) bytes; paths
// and slots (8 GPUs of a long host name) get 256, about three times the deep test paths; the
// metrics JSON gets 1024, twice an LM trial's, so LM rows do not all overflow. A reason is short
// unless it carries a traceback, which then goes to /overflow.
std::vector<Column> trial_columns(const SweepMeta& meta, int version) {
  auto text = [version](const char* name, std::size_t width) {
    return version >= 3 ? Column{name, ColumnType::kFixedString, width}
                        : Column{name, ColumnType::kString};
  };
  std::vector<Column> c = {
      {"seq", ColumnType::kInt64},
      {"trial_id", ColumnType::kInt64},
      {"attempt", ColumnType::kInt32},
      text("status", 16),
      text("failure_kind", 32),
      text("reason", 256),
      {"objective", ColumnType::kFloat64},
      {"cost", ColumnType::kFloat64},
      {"flops", ColumnType::kFloat64},
      {"flops_6n", ColumnType::kFloat64},
      {"tokens", ColumnType::kFloat64},
      {"device_seconds", ColumnType::kFloat64},
      {"wall_seconds", ColumnType::kFloat64},
      {"start_time", ColumnType::kFloat64},
      {"end_time", ColumnType::kFloat64},
      text("host", 64),
      {"devices", ColumnType::kInt32},
      text("log_path", 256),
      text("suggestion_id", 64),
  };
  if (version >= 2) {
    c.push_back(text("slots", 256));
    c.push_back(text("trial_dir", 256));
  }
  for (const auto& p : meta.params) c.push_back({kParamPrefix + p, ColumnType::kFloat64});
  for (const auto& m : meta.metrics) c.push_back({kMetricPrefix + m, ColumnType::kFloat64});
  c.push_back(text(kOtherMetrics, 1024));
  return c;
}

// `columns` with each string column typed as `table` stores it (variable-length before schema
// 3, and the widths of the build that wrote the file), so that reading converts nothing.
std::vector<Column> as_stored(std::vector<Column> columns, const Table& table) {
  const std::vector<Column> stored = table.file_columns();
  for (auto& c : columns) {
    for (const auto& f : stored) {
      if (f.name == c.name && is_string(c.type) && is_string(f.type)) {
        c.type = f.type;
        c.width = f.width;
      }
    }
  }
  return columns;
}

std::vector<Column> curve_columns() {
  return {{"seq", ColumnType::kInt64},
          {"trial_id", ColumnType::kInt64},
          {"attempt", ColumnType::kInt32},
          {"step", ColumnType::kInt64},
          {"tokens", ColumnType::kFloat64},
          {"flops", ColumnType::kFloat64},
          {"wall_seconds", ColumnType::kFloat64},
          {"train_loss", ColumnType::kFloat64},
          {"val_loss", ColumnType::kFloat64},
          {"train_return", ColumnType::kFloat64},
          {"eval_return", ColumnType::kFloat64}};
}

// HDF5 C strings end at the first NUL; replace NULs so no text is cut short silently.
std::string no_nul(const std::string& s) {
  if (s.find('\0') == std::string::npos) return s;
  std::string out;
  for (char c : s) {
    if (c == '\0') {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    } else {
      out += c;
    }
  }
  return out;
}

// The `slots` column: the ranks' "host/device" names joined by commas (names have none).
std::string join_slots(const std::vector<std::string>& slots) {
  std::string out;
  for (const auto& s : slots) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::vector<std::string> split_slots(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Undeclared metrics as a JSON object; non-finite values as the strings "nan", "inf", "-inf"
// because JSON has no such numbers.
std::string metrics_json(const std::map<std::string, double>& metrics) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : metrics) {
    if (std::isfinite(v)) {
      j[k] = v;
    } else {
      j[k] = std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    }
  }
  return j.dump();
}

std::map<std::string, double> parse_metrics_json(const std::string& text,
                                                 const std::string& where) {
  std::map<std::string, double> out;
  if (text.empty()) return out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw StoreError(where + ": '" + kOtherMetrics + "' is not a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (v.is_number()) {
      out[k] = v.get<double>();
    } else if (v.is_string() && v.get<std::string>() == "inf") {
      out[k] = std::numeric_limits<double>::infinity();
    } else if (v.is_string() && v.get<std::string>() == "-inf") {
      out[k] = -std::numeric_limits<double>::infinity();
    } else {
      out[k] = kNaN;
    }
  }
  return out;
}

void check_name(const std::string& kind, const std::string& name, const std::string& where) {
  if (name.empty()) throw StoreError(where + ": empty " + kind + " name");
}

void validate_meta(const SweepMeta& meta, const std::string& where) {
  if (meta.direction != "minimize" && meta.direction != "maximize") {
    throw StoreError(where + ": direction '" + meta.direction +
                     "' is neither 'minimize' nor 'maximize'");
  }
  std::set<std::string> seen;
  for (const auto& p : meta.params) {
    check_name("parameter", p, where);
    if (!seen.insert(p).second) throw StoreError(where + ": parameter '" + p + "' listed twice");
  }
  seen.clear();
  for (const auto& m : meta.metrics) {
    check_name("metric", m, where);
    if (!seen.insert(m).second) throw StoreError(where + ": metric '" + m + "' listed twice");
  }
}

void check_text_name(const std::string& name, const std::string& where) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  std::all_of(name.begin(), name.end(),
                              [](char c) {
                                return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
                                       c == '-' || c == '.';
                              }) &&
                  name != "." && name != "..";
  if (!ok) {
    throw StoreError(where + ": text name '" + name +
                     "' must be 1-64 characters of letters, digits, '_', '-' or '.'");
  }
}

// ---- file access ----

h5::Id file_access(const std::string& what) {
  h5::Id fapl(h5::check_id(H5Pcreate(H5P_FILE_ACCESS), what));
  // 1.8 object headers carry checksums, so a torn header is an error, never silent garbage; and
  // the superblock has no "open for writing" flag that would lock out readers (1.10's has).
  h5::check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18), what);
  // Grow the file in 1 MiB blocks for metadata and for small raw data (chunks, strings): a
  // reader that opened the file a moment ago knows the file's end as of then, and an append
  // that stays inside the current block never points past it.
  h5::check(H5Pset_meta_block_size(fapl.get(), kAllocationBlock), what);
  h5::check(H5Pset_small_data_block_size(fapl.get(), kAllocationBlock), what);
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) || \
    (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 12 && H5_VERS_RELEASE >= 1) || \
    (H5_VERS_MAJOR == 1 && H5_VERS_MINOR > 12) || H5_VERS_MAJOR > 1
  // No HDF5 file lock: the writer's lock would stop readers from opening the file during a
  // sweep (HDF5_USE_FILE_LOCKING=FALSE would be needed). Writers exclude each other with
  // PATH.lock instead.
  h5::check(H5Pset_file_locking(fapl.get(), false, true), what);
#endif
  return fapl;
}

// Exclusive lock on PATH.lock for the writer's lifetime; the kernel drops it when the process
// dies, so a killed writer never blocks the next one.
class WriterLock {
 public:
  explicit WriterLock(const std::string& path) : path_(path + ".lock") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw StoreError(file_what(path) + ": cannot create the writer lock '" + path_ +
                       "': " + std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK) {
        throw StoreError(file_what(path) + ": another process is writing it (it holds '" + path_ +
                         "'); stop that sweep first, or read the file with `load`/h5py instead");
      }
      throw StoreError(file_what(path) + ": cannot lock '" + path_ + "': " + std::strerror(err));
    }
  }
  WriterLock(WriterLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
    other.fd_ = -1;
  }
  WriterLock& operator=(WriterLock&&) = delete;
  WriterLock(const WriterLock&) = delete;
  ~WriterLock() {
    if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// What kind of non-HDF5 file this is, for the error message.
std::string describe_non_hdf5(const std::string& path, std::uintmax_t size) {
  if (size == 0) return "is empty (0 bytes)";
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  in.read(head, sizeof head);
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got >= 8 && std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0) {
    return "starts like an HDF5 file but is cut short (" + std::to_string(size) + " bytes)";
  }
  return "is not an HDF5 file (" + std::to_string(size) + " bytes)";
}

// Opens PATH for reading or appending after checking what kind of file it is. Errors that
// retrying cannot fix are DefinitiveError.
h5::Id open_file(const std::string& path, unsigned flags) {
  const std::string what = file_what(path);
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    throw DefinitiveError(what +
                          " does not exist: check the path (a sweep writes records.h5 "
                          "in its output directory)");
  }
  if (fs::is_directory(status)) {
    throw DefinitiveError(what + " is a directory: pass the records.h5 file inside it");
  }
  const auto size = fs::file_size(path, ec);
  if (ec) throw DefinitiveError(what + " cannot be read: " + ec.message());
  if (::access(path.c_str(), (flags & H5F_ACC_RDWR) ? (R_OK | W_OK) : R_OK) != 0) {
    throw DefinitiveError(what + " cannot be opened: " + std::strerror(errno));
  }
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) {
    throw DefinitiveError(what + " " + describe_non_hdf5(path, size) +
                          ": it is not a records file, or it was damaged; restore it from a "
                          "copy or rerun the sweep into a new file");
  }
  h5::Id fapl = file_access(what);
  const hid_t id = H5Fopen(path.c_str(), flags, fapl.get());
  if (id < 0) {
    const std::string reason = h5::error_text();
    if (reason.find("truncated") != std::string::npos) {
      throw StoreError(what + " is truncated (" + std::to_string(size) + " bytes; " + reason +
                       "): it was cut short by a full disk or an interrupted copy; restore the "
                       "complete file");
    }
    throw StoreError(what + " is damaged or unreadable (" + reason +
                     "); if a sweep is writing it, try again");
  }
  h5::Id file(id);
  // A writer killed in the middle of a flush can leave a global heap collection of committed
  // strings grown in place on disk (new size in its header) while the superblock's
  // end-of-allocation, and even the file, still end before the new part. HDF5 then refuses to
  // read the collection ("actual len exceeds EOA"), committed strings included. Moving the end of
  // allocation past the end of the file makes it readable: bytes past the end read as zeros,
  // which the heap parses as free space. A writer's next flush extends the file to match (sparse).
  // (A file shorter than its superblock says was refused above as truncated.)
  h5::check(H5Fincrement_filesize(file.get(), (flags & H5F_ACC_RDWR) ? kWriterEndSlack : kEndSlack),
            what + ": cannot read the end of the file");
  return file;
}

// Checks the root attributes that mark our files and returns the schema version.
int check_format(hid_t file, const std::string& path) {
  const std::string what = file_what(path);
  h5::Id root(h5::check_id(H5Gopen2(file, "/", H5P_DEFAULT), what));
  if (!h5::has_attribute(root.get(), "format", what)) {
    throw DefinitiveError(what +
                          " is an HDF5 file but not a scaletune records file (it has no "
                          "'format' attribute): pass the records.h5 a sweep wrote");
  }
  std::string format;
  try {
    format = h5::read_string_attribute(root.get(), "format", what);
  } catch (const StoreError&) {
    format = "(unreadable)";
  }
  if (format != kFormatName) {
    throw DefinitiveError(what + " is an HDF5 file of another tool (format '" + format +
                          "', expected '" + kFormatName + "'): pass the records.h5 a sweep wrote");
  }
  const auto version = h5::read_int_attribute(root.get(), "schema_version", what);
  if (version > kSchemaVersion) {
    throw DefinitiveError(what + " was written by a newer scaletune (schema version " +
                          std::to_string(version) + "; this build reads up to " +
                          std::to_string(kSchemaVersion) +
                          "): read it with the scaletune version that wrote it, or newer");
  }
  if (version < 1) {
    throw DefinitiveError(what + " has an invalid schema version " + std::to_string(version));
  }
  return static_cast<int>(version);
}

SweepMeta read_meta(hid_t file, const std::string& what) {
  SweepMeta meta;
  h5::Id root(h5::check_id(H5Gopen2(file, "/", H5P_DEFAULT), what));
  meta.scaletune_version = h5::read_string_attribute(root.get(), "scaletune_version", what);
  meta.created = h5::read_double_attribute(root.get(), "created", what);
  meta.direction = h5::read_string_attribute(root.get(), "direction", what);
  meta.objective = h5::read_string_attribute(root.get(), "objective", what);
  meta.cost_metric = h5::read_string_attribute(root.get(), "cost_metric", what);
  meta.params = h5::read_strings_attribute(root.get(), "params", what);
  meta.metrics = h5::read_strings_attribute(root.get(), "metrics", what);
  h5::Id group(h5::check_id(H5Gopen2(file, "meta", H5P_DEFAULT), what + ": cannot open /meta"));
  meta.config_yaml = h5::read_string_dataset(group.get(), "config_yaml", what + " /meta");
  meta.search_space_json =
      h5::read_string_dataset(group.get(), "search_space_json", what + " /meta");
  return meta;
}

// Reads a table's committed rows, checking the table is consistent with its commit count.
void read_committed(const Table& table, Rows& rows, const std::string& what) {
  const auto committed = table.committed();
  const auto extent = table.extent();
  if (committed > extent) {
    throw StoreError(what + ": /" + table.name() + " says " + std::to_string(committed) +
                     " rows are committed but holds " + std::to_string(extent));
  }
  table.read(committed, rows);
  // `seq` is the 1-based row number. A reader racing a B-tree split can be shown a chunk as
  // not yet allocated, which HDF5 returns as zeros; the check turns that into a retry.
  const int seq = rows.find("seq");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows.get_int(i, seq) != static_cast<std::int64_t>(i + 1)) {
      throw StoreError(what + ": /" + table.name() + " row " + std::to_string(i) +
                       " changed while it was read (seq " + std::to_string(rows.get_int(i, seq)) +
                       "); if a sweep is writing the file, try again");
    }
  }
}

struct TrialIndex {
  int trial_id, attempt, status, failure_kind, reason, objective, cost, flops, flops_6n, tokens,
      device_seconds, wall_seconds, start_time, end_time, host, devices, log_path, suggestion_id,
      other_metrics;
  int slots, trial_dir;  // -1 in files of schema version 1
  std::vector<int> params, metrics;

  TrialIndex(const Rows& r, const SweepMeta& meta)
      : trial_id(r.find("trial_id")),
        attempt(r.find("attempt")),
        status(r.find("status")),
        failure_kind(r.find("failure_kind")),
        reason(r.find("reason")),
        objective(r.find("objective")),
        cost(r.find("cost")),
        flops(r.find("flops")),
        flops_6n(r.find("flops_6n")),
        tokens(r.find("tokens")),
        device_seconds(r.find("device_seconds")),
        wall_seconds(r.find("wall_seconds")),
        start_time(r.find("start_time")),
        end_time(r.find("end_time")),
        host(r.find("host")),
        devices(r.find("devices")),
        log_path(r.find("log_path")),
        suggestion_id(r.find("suggestion_id")),
        other_metrics(r.find(kOtherMetrics)),
        slots(r.find("slots")),
        trial_dir(r.find("trial_dir")) {
    for (const auto& p : meta.params) params.push_back(r.find(kParamPrefix + p));
    for (const auto& m : meta.metrics) metrics.push_back(r.find(kMetricPrefix + m));
  }
};

struct CurveIndex {
  int trial_id, attempt, step, tokens, flops, wall_seconds, train_loss, val_loss, train_return,
      eval_return;
  explicit CurveIndex(const Rows& r)
      : trial_id(r.find("trial_id")),
        attempt(r.find("attempt")),
        step(r.find("step")),
        tokens(r.find("tokens")),
        flops(r.find("flops")),
        wall_seconds(r.find("wall_seconds")),
        train_loss(r.find("train_loss")),
        val_loss(r.find("val_loss")),
        train_return(r.find("train_return")),
        eval_return(r.find("eval_return")) {}
};

// The bytes of /overflow that the markers in `rows` point into ("" when there are none).
std::string read_overflow(hid_t file, const Rows& rows, const std::string& what) {
  std::uint64_t end = 0;
  for (std::size_t c = 0; c < rows.columns().size(); ++c) {
    if (rows.columns()[c].type != ColumnType::kFixedString) continue;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto m = parse_overflow_marker(rows.get_string(i, static_cast<int>(c)),
                                           what + ": /trials row " + std::to_string(i));
      if (m) end = std::max(end, m->first + m->second);
    }
  }
  if (end == 0) return "";
  const auto overflow = Overflow::open(file, what);
  if (!overflow) throw StoreError(what + ": /trials points into /overflow, which is missing");
  const auto size = overflow->size();
  if (size < end) {
    throw StoreError(what + ": /trials points to byte " + std::to_string(end) +
                     " of /overflow, which holds " + std::to_string(size) +
                     "; if a sweep is writing the file, try again");
  }
  return overflow->read(end);
}

// String cells of /trials with /overflow markers replaced by the values they stand for.
struct TrialText {
  const Rows& rows;
  const std::string& overflow;  // read_overflow()
  const std::string& what;

  std::string operator()(std::size_t row, int column) const {
    std::string cell = rows.get_string(row, column);
    if (rows.columns()[column].type != ColumnType::kFixedString ||
        cell.rfind(kOverflowPrefix, 0) != 0) {
      return cell;
    }
    const std::string where = what + ": /trials row " + std::to_string(row);
    const auto [offset, length] = *parse_overflow_marker(cell, where);
    std::string value = overflow.substr(offset, length);  // read_overflow read up to the end
    // A reader can be shown a chunk of /overflow as not yet allocated (like /trials, see
    // read_committed), which HDF5 returns as zeros; stored values have no NUL (no_nul).
    if (value.find('\0') != std::string::npos) {
      throw StoreError(where +
                       ": its /overflow bytes read as zeros; if a sweep is writing the "
                       "file, try again");
    }
    return value;
  }
};

std::vector<TrialRecord> decode_trials(const Rows& rows, const SweepMeta& meta,
                                       const std::string& overflow, const std::string& what) {
  const TrialIndex ix(rows, meta);
  const TrialText text{rows, overflow, what};
  std::vector<TrialRecord> out(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    TrialRecord& t = out[i];
    t.trial_id = rows.get_int(i, ix.trial_id);
    t.attempt = static_cast<int>(rows.get_int(i, ix.attempt));
    const std::string status = text(i, ix.status);
    try {
      t.status = parse_trial_status(status);
    } catch (const StoreError& e) {
      throw StoreError(what + ": /trials row " + std::to_string(i) + ": " + e.what());
    }
    t.failure_kind = text(i, ix.failure_kind);
    t.reason = text(i, ix.reason);
    t.objective = rows.get_double(i, ix.objective);
    t.cost = rows.get_double(i, ix.cost);
    t.flops = rows.get_double(i, ix.flops);
    t.flops_6n = rows.get_double(i, ix.flops_6n);
    t.tokens = rows.get_double(i, ix.tokens);
    t.device_seconds = rows.get_double(i, ix.device_seconds);
    t.wall_seconds = rows.get_double(i, ix.wall_seconds);
    t.start_time = rows.get_double(i, ix.start_time);
    t.end_time = rows.get_double(i, ix.end_time);
    t.host = text(i, ix.host);
    t.devices = static_cast<int>(rows.get_int(i, ix.devices));
    t.log_path = text(i, ix.log_path);
    t.suggestion_id = text(i, ix.suggestion_id);
    if (ix.slots >= 0) t.slots = split_slots(text(i, ix.slots));
    if (ix.trial_dir >= 0) t.trial_dir = text(i, ix.trial_dir);
    for (std::size_t p = 0; p < meta.params.size(); ++p) {
      const double v = rows.get_double(i, ix.params[p]);
      if (!std::isnan(v)) t.params[meta.params[p]] = v;
    }
    t.metrics =
        parse_metrics_json(text(i, ix.other_metrics), what + ": /trials row " + std::to_string(i));
    for (std::size_t m = 0; m < meta.metrics.size(); ++m) {
      const double v = rows.get_double(i, ix.metrics[m]);
      if (!std::isnan(v)) t.metrics[meta.metrics[m]] = v;
    }
  }
  return out;
}

std::vector<CurveRow> decode_curves(const Rows& rows) {
  const CurveIndex ix(rows);
  std::vector<CurveRow> out(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CurveRow& c = out[i];
    c.trial_id = rows.get_int(i, ix.trial_id);
    c.attempt = static_cast<int>(rows.get_int(i, ix.attempt));
    c.point.step = rows.get_int(i, ix.step);
    c.point.tokens = rows.get_double(i, ix.tokens);
    c.point.flops = rows.get_double(i, ix.flops);
    c.point.wall_seconds = rows.get_double(i, ix.wall_seconds);
    c.point.train_loss = rows.get_double(i, ix.train_loss);
    c.point.val_loss = rows.get_double(i, ix.val_loss);
    c.point.train_return = rows.get_double(i, ix.train_return);
    c.point.eval_return = rows.get_double(i, ix.eval_return);
  }
  return out;
}

// ---- texts: /texts/NAME holds two byte slots and `current_slot` says which one is valid ----

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

std::vector<std::string> text_names(hid_t texts, const std::string& what) {
  std::vector<std::string> names;
  hsize_t index = 0;
  h5::check(H5Literate(texts, H5_INDEX_NAME, H5_ITER_INC, &index, collect_link, &names),
            what + ": cannot list /texts");
  return names;
}

std::string read_slot(hid_t group, int slot, const std::string& where) {
  h5::Id dataset(h5::check_id(H5Dopen2(group, kSlotNames[slot], H5P_DEFAULT), where));
  h5::Id space(h5::check_id(H5Dget_space(dataset.get()), where));
  hsize_t n = 0;
  h5::check(H5Sget_simple_extent_dims(space.get(), &n, nullptr), where);
  std::string text(n, '\0');
  if (n > 0) {
    h5::check(H5Dread(dataset.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()),
              where);
  }
  return text;
}

// The current value of one text, or nullopt when its first put never completed (a crash in the
// middle of creating it: the group is unreadable or has no current slot yet).
std::optional<std::string> read_text(hid_t texts, const std::string& name,
                                     const std::string& what) {
  const std::string where = what + ": cannot read /texts/" + name;
  const hid_t id = H5Gopen2(texts, name.c_str(), H5P_DEFAULT);
  if (id < 0) return std::nullopt;
  h5::Id group(id);
  const htri_t has = H5Aexists(group.get(), kCurrentSlot);
  if (has <= 0) return std::nullopt;
  const auto slot = h5::read_int_attribute(group.get(), kCurrentSlot, where);
  if (slot < 0) return std::nullopt;
  if (slot > 1) throw StoreError(where + ": current_slot is " + std::to_string(slot));
  return read_slot(group.get(), static_cast<int>(slot), where);
}

Records read_once(const std::string& path, const LoadOptions& options) {
  const std::string what = file_what(path);
  h5::Id file = open_file(path, H5F_ACC_RDONLY);
  Records r;
  r.path = path;
  r.schema_version = check_format(file.get(), path);
  r.meta = read_meta(file.get(), what);
  {
    Table trials = Table::open(file.get(), "trials", what);
    Rows rows(as_stored(trial_columns(r.meta, r.schema_version), trials));
    read_committed(trials, rows, what);
    r.trials = decode_trials(rows, r.meta, read_overflow(file.get(), rows, what), what);
  }
  if (options.curves) {
    Table curves = Table::open(file.get(), "curves", what);
    Rows rows(curve_columns());
    read_committed(curves, rows, what);
    r.curves = decode_curves(rows);
  }
  h5::Id texts(
      h5::check_id(H5Gopen2(file.get(), "texts", H5P_DEFAULT), what + ": cannot open /texts"));
  for (const auto& name : text_names(texts.get(), what)) {
    if (auto value = read_text(texts.get(), name, what)) r.texts[name] = std::move(*value);
  }
  return r;
}

}  // namespace

// ---- public: status ----

const char* to_string(TrialStatus status) {
  switch (status) {
    case TrialStatus::kRunning:
      return "running";
    case TrialStatus::kOk:
      return "ok";
    case TrialStatus::kFailed:
      return "failed";
    case TrialStatus::kInfraFailed:
      return "infra_failed";
    case TrialStatus::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

TrialStatus parse_trial_status(const std::string& text) {
  for (auto s : {TrialStatus::kRunning, TrialStatus::kOk, TrialStatus::kFailed,
                 TrialStatus::kInfraFailed, TrialStatus::kInterrupted}) {
    if (text == to_string(s)) return s;
  }
  throw StoreError("unknown trial status '" + text +
                   "' (expected running, ok, failed, infra_failed or interrupted)");
}

// ---- public: Records ----

std::vector<TrialRecord> Records::latest_trials() const {
  std::map<std::int64_t, const TrialRecord*> last;
  for (const auto& t : trials) last[t.trial_id] = &t;
  std::vector<TrialRecord> out;
  out.reserve(last.size());
  for (const auto& [id, t] : last) out.push_back(*t);
  return out;
}

std::vector<trainer::CurvePoint> Records::curve(std::int64_t trial_id, int attempt) const {
  if (attempt < 0) {
    for (const auto& c : curves) {
      if (c.trial_id == trial_id) attempt = std::max(attempt, c.attempt);
    }
  }
  std::vector<trainer::CurvePoint> out;
  for (const auto& c : curves) {
    if (c.trial_id == trial_id && c.attempt == attempt) out.push_back(c.point);
  }
  return out;
}

std::map<std::int64_t, std::vector<trainer::CurvePoint>> Records::latest_curves() const {
  std::map<std::int64_t, int> last_attempt;
  for (const auto& c : curves) {
    auto [it, inserted] = last_attempt.emplace(c.trial_id, c.attempt);
    if (!inserted) it->second = std::max(it->second, c.attempt);
  }
  std::map<std::int64_t, std::vector<trainer::CurvePoint>> out;
  for (const auto& c : curves) {
    if (c.attempt == last_attempt[c.trial_id]) out[c.trial_id].push_back(c.point);
  }
  return out;
}

std::optional<std::string> Records::text(const std::string& name) const {
  auto it = texts.find(name);
  if (it == texts.end()) return std::nullopt;
  return it->second;
}

Records load(const std::string& path, const LoadOptions& options) {
  auto guard = h5::lock();
  // A reader racing a writer can catch the file in the middle of a flush (an object header
  // newer than the chunk index it points to, ...). That shows as an HDF5 error and passes on a
  // second look; a file that is really damaged fails every time.
  constexpr int kAttempts = 8;
  for (int attempt = 1;; ++attempt) {
    try {
      return read_once(path, options);
    } catch (const DefinitiveError&) {
      throw;
    } catch (const StoreError&) {
      if (attempt == kAttempts) throw;
    }
    guard.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(10 * attempt));
    guard.lock();
  }
}

// ---- public: RecordsWriter ----

struct RecordsWriter::Impl {
  std::string path;
  std::string what;
  SweepMeta meta;
  WriterOptions options;
  int version;  // the file's schema version: the layout of the rows appended
  WriterLock lock;
  h5::Id file;
  std::optional<Table> trials;
  std::optional<Table> curves;
  std::optional<Overflow> overflow;  // schema >= 3
  std::uint64_t trial_rows = 0;
  std::uint64_t curve_rows = 0;
  std::uint64_t overflow_bytes = 0;  // end of the /overflow bytes committed rows point into
  std::vector<Column> trial_layout;
  std::set<std::string> params;
  std::set<std::string> declared_metrics;

  Impl(std::string p, SweepMeta m, WriterOptions o, int v, WriterLock l)
      : path(std::move(p)),
        what(file_what(path)),
        meta(std::move(m)),
        options(o),
        version(v),
        lock(std::move(l)),
        trial_layout(trial_columns(meta, version)),
        params(meta.params.begin(), meta.params.end()),
        declared_metrics(meta.metrics.begin(), meta.metrics.end()) {}

  // Makes everything written so far durable: to the OS (survives the process), and to the disk
  // with options.fsync (survives the machine).
  void flush(const std::string& action) {
    h5::check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), what + ": cannot flush after " + action);
    if (options.fsync) {
      void* handle = nullptr;
      h5::check(H5Fget_vfd_handle(file.get(), H5P_DEFAULT, &handle), what + ": cannot fsync");
      if (handle == nullptr || ::fsync(*static_cast<int*>(handle)) != 0) {
        throw StoreError(what + ": fsync after " + action + " failed: " + std::strerror(errno));
      }
    }
  }

  void open_tables() {
    trials.emplace(Table::open(file.get(), "trials", what));
    curves.emplace(Table::open(file.get(), "curves", what));
    overflow = Overflow::open(file.get(), what);
    if (version >= 3 && !overflow) throw StoreError(what + ": /overflow is missing");
  }

  // Rows then flush then commit count then flush (table.h explains why).
  void append(Table& table, std::uint64_t& committed, const Rows& rows, const std::string& action) {
    table.write(committed, rows);
    flush(action);
    table.commit(committed + rows.size());
    flush(action);
    committed += rows.size();
  }
};

RecordsWriter::RecordsWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordsWriter::RecordsWriter(RecordsWriter&&) noexcept = default;
RecordsWriter& RecordsWriter::operator=(RecordsWriter&& other) noexcept {
  if (this != &other) {
    auto guard = h5::lock();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

RecordsWriter::~RecordsWriter() {
  auto guard = h5::lock();
  impl_.reset();  // closes the HDF5 file (errors are swallowed: destructors never throw)
}

void RecordsWriter::close() {
  auto guard = h5::lock();
  if (!impl_) return;
  impl_->trials.reset();
  impl_->curves.reset();
  impl_->overflow.reset();
  const bool ok = impl_->file.reset();
  const std::string what = impl_->what;
  impl_.reset();
  if (!ok) throw StoreError(what + ": cannot close: " + h5::error_text());
}

const SweepMeta& RecordsWriter::meta() const { return impl_->meta; }
const std::string& RecordsWriter::path() const { return impl_->path; }

RecordsWriter RecordsWriter::create(const std::string& path, const SweepMeta& meta_in,
                                    const WriterOptions& options) {
  auto guard = h5::lock();
  const std::string what = file_what(path);
  SweepMeta meta = meta_in;
  if (meta.scaletune_version.empty()) meta.scaletune_version = SCALETUNE_VERSION;
  if (meta.created == 0) {
    meta.created =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  validate_meta(meta, what);
  if (options.schema_version < kOldestSchemaVersion || options.schema_version > kSchemaVersion) {
    throw StoreError(what + ": cannot write schema version " +
                     std::to_string(options.schema_version) + " (this build writes " +
                     std::to_string(kOldestSchemaVersion) + " to " +
                     std::to_string(kSchemaVersion) + ")");
  }
  const auto parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec)
    throw StoreError(what + ": cannot create directory '" + parent.string() + "': " + ec.message());
  WriterLock lock(path);
  if (fs::exists(path)) {
    throw StoreError(what + " already exists: resume it (open_existing) or choose a new path");
  }

  // Build the complete skeleton under a temporary name and rename it into place, so PATH is
  // never a half-made file.
  const std::string tmp = path + ".creating";
  fs::remove(tmp, ec);
  {
    h5::Id fapl = file_access(what);
    // Chunk indexes are version-1 B-trees, whose node splits HDF5 writes in no safe order: a
    // writer killed during one can hide committed chunks. With nodes of up to 2 * kChunkIndexK
    // chunks the index never splits before /trials holds 1M rows or /curves 16M points.
    h5::Id fcpl(h5::check_id(H5Pcreate(H5P_FILE_CREATE), what));
    h5::check(H5Pset_istore_k(fcpl.get(), kChunkIndexK), what);
    h5::Id file(h5::check_id(H5Fcreate(tmp.c_str(), H5F_ACC_EXCL, fcpl.get(), fapl.get()),
                             what + ": cannot create '" + tmp + "'"));
    h5::Id root(h5::check_id(H5Gopen2(file.get(), "/", H5P_DEFAULT), what));
    h5::write_attribute(root.get(), "format", std::string(kFormatName), what);
    h5::write_attribute(root.get(), "schema_version", std::int64_t{options.schema_version}, what);
    h5::write_attribute(root.get(), "scaletune_version", meta.scaletune_version, what);
    h5::write_attribute(root.get(), "created", meta.created, what);
    h5::write_attribute(root.get(), "direction", meta.direction, what);
    h5::write_attribute(root.get(), "objective", meta.objective, what);
    h5::write_attribute(root.get(), "cost_metric", meta.cost_metric, what);
    h5::write_attribute(root.get(), "params", meta.params, what);
    h5::write_attribute(root.get(), "metrics", meta.metrics, what);
    {
      h5::Id group(h5::check_id(
          H5Gcreate2(file.get(), "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), what));
      h5::write_string_dataset(group.get(), "config_yaml", no_nul(meta.config_yaml), what);
      h5::write_string_dataset(group.get(), "search_space_json", no_nul(meta.search_space_json),
                               what);
    }
    {
      Rows trials(trial_columns(meta, options.schema_version));
      Table::create(file.get(), "trials", trials, kTrialChunkRows, what);
      Rows curves(curve_columns());
      Table::create(file.get(), "curves", curves, kCurveChunkRows, what);
      if (options.schema_version >= 3) Overflow::create(file.get(), what);
    }
    {
      h5::Id gcpl(h5::check_id(H5Pcreate(H5P_GROUP_CREATE), what));
      h5::check(H5Pset_link_phase_change(gcpl.get(), kCompactTexts, kCompactTexts - 1), what);
      h5::check(H5Pset_est_link_info(gcpl.get(), kCompactTexts, 24), what);
      h5::Id group(h5::check_id(
          H5Gcreate2(file.get(), "texts", H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), what));
    }
    h5::check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), what);
    if (!file.reset()) throw StoreError(what + ": cannot close '" + tmp + "': " + h5::error_text());
  }
  if (options.fsync) {
    const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) throw StoreError(what + ": cannot rename '" + tmp + "' into place: " + ec.message());

  auto impl = std::make_unique<Impl>(path, meta, options, options.schema_version, std::move(lock));
  impl->file = open_file(path, H5F_ACC_RDWR);
  impl->open_tables();
  return RecordsWriter(std::move(impl));
}

RecordsWriter::Resumed RecordsWriter::open_existing(const std::string& path,
                                                    const WriterOptions& options) {
  auto guard = h5::lock();
  const std::string what = file_what(path);
  WriterLock lock(path);
  Records records = load(path);
  // load() refused newer versions; an older file keeps its layout (its readers still work).
  if (records.schema_version < kOldestSchemaVersion) {
    throw StoreError(what + " has schema version " + std::to_string(records.schema_version) +
                     "; this build appends to versions " + std::to_string(kOldestSchemaVersion) +
                     " to " + std::to_string(kSchemaVersion) + ": start a new records file");
  }
  // Rebuild the file from what is committed, then swap it in. Trimming the rows a killed writer
  // left in flight and overwriting them in place is not safe: writing a row where a string was
  // written before makes HDF5 free the old string in the global heap, and the collection it
  // points to may be the one the kill tore ("bad global heap collection signature", or a reader
  // spinning in H5HG_read). A fresh file never touches what the dead writer wrote; the rename is
  // atomic, so a kill during the rebuild leaves the old file as it was.
  std::uint64_t overflow_bytes = 0;  // what the rebuilt rows' values take in /overflow
  {
    const std::string fresh = path + ".resume.tmp";
    std::error_code ec;
    fs::remove(fresh, ec);
    WriterOptions o = options;
    o.schema_version = records.schema_version;
    RecordsWriter w = create(fresh, records.meta, o);
    for (const auto& t : records.trials) w.append_trial(t);
    for (std::size_t i = 0; i < records.curves.size();) {
      std::vector<trainer::CurvePoint> points;
      const CurveRow& first = records.curves[i];
      for (; i < records.curves.size() && records.curves[i].trial_id == first.trial_id &&
             records.curves[i].attempt == first.attempt;
           ++i)
        points.push_back(records.curves[i].point);
      w.append_curve(first.trial_id, first.attempt, points);
    }
    for (const auto& [name, text] : records.texts) w.put_text(name, text);
    overflow_bytes = w.impl_->overflow_bytes;
    w.close();
    fs::remove(fresh + ".lock", ec);
    fs::rename(fresh, path, ec);
    if (ec) throw StoreError(what + ": cannot move the rebuilt file into place: " + ec.message());
  }
  auto impl =
      std::make_unique<Impl>(path, records.meta, options, records.schema_version, std::move(lock));
  impl->file = open_file(path, H5F_ACC_RDWR);
  impl->open_tables();
  impl->trial_rows = impl->trials->committed();
  impl->curve_rows = impl->curves->committed();
  impl->overflow_bytes = overflow_bytes;  // /overflow is allocated ahead (overflow.h)
  return Resumed{RecordsWriter(std::move(impl)), std::move(records)};
}

void RecordsWriter::append_trial(const TrialRecord& t) {
  auto guard = h5::lock();
  Impl& im = *impl_;
  for (const auto& [name, value] : t.params) {
    if (!im.params.count(name)) {
      std::string known;
      for (const auto& p : im.meta.params) known += (known.empty() ? "" : ", ") + p;
      throw StoreError(im.what + ": trial " + std::to_string(t.trial_id) + " has parameter '" +
                       name + "', which is not a column of this sweep (parameters: " +
                       (known.empty() ? "none" : known) + ")");
    }
  }
  Rows rows(im.trial_layout);
  rows.resize(1);
  const TrialIndex ix(rows, im.meta);
  // A value too long for its fixed-size cell (or one that looks like a marker) goes to /overflow
  // whole, and the cell holds the marker naming its bytes (overflow.h).
  std::string spill;
  // Every string goes through no_nul (a NUL would end an HDF5 C string).
  auto text = [&](int column, const std::string& raw) {
    const std::string value = no_nul(raw);
    const Column& c = rows.columns()[column];
    if (c.type == ColumnType::kFixedString && needs_overflow(value, c.width)) {
      rows.set(0, column, overflow_marker(im.overflow_bytes + spill.size(), value.size()));
      spill += value;
    } else {
      rows.set(0, column, value);
    }
  };
  rows.set(0, rows.find("seq"), static_cast<std::int64_t>(im.trial_rows + 1));
  rows.set(0, ix.trial_id, std::int64_t{t.trial_id});
  rows.set(0, ix.attempt, std::int64_t{t.attempt});
  text(ix.status, std::string(to_string(t.status)));
  text(ix.failure_kind, t.failure_kind);
  text(ix.reason, t.reason);
  rows.set(0, ix.objective, t.objective);
  rows.set(0, ix.cost, t.cost);
  rows.set(0, ix.flops, t.flops);
  rows.set(0, ix.flops_6n, t.flops_6n);
  rows.set(0, ix.tokens, t.tokens);
  rows.set(0, ix.device_seconds, t.device_seconds);
  rows.set(0, ix.wall_seconds, t.wall_seconds);
  rows.set(0, ix.start_time, t.start_time);
  rows.set(0, ix.end_time, t.end_time);
  text(ix.host, t.host);
  rows.set(0, ix.devices, std::int64_t{t.devices});
  text(ix.log_path, t.log_path);
  text(ix.suggestion_id, t.suggestion_id);
  if (ix.slots >= 0) text(ix.slots, join_slots(t.slots));
  if (ix.trial_dir >= 0) text(ix.trial_dir, t.trial_dir);
  for (std::size_t p = 0; p < im.meta.params.size(); ++p) {
    auto it = t.params.find(im.meta.params[p]);
    if (it != t.params.end()) rows.set(0, ix.params[p], it->second);
  }
  std::map<std::string, double> other;
  for (const auto& [name, value] : t.metrics) {
    if (!im.declared_metrics.count(name)) other[name] = value;
  }
  for (std::size_t m = 0; m < im.meta.metrics.size(); ++m) {
    auto it = t.metrics.find(im.meta.metrics[m]);
    if (it != t.metrics.end()) rows.set(0, ix.metrics[m], it->second);
  }
  text(ix.other_metrics, metrics_json(other));
  const std::string action = "appending trial " + std::to_string(t.trial_id);
  // Before the rows and the flush that precedes their commit: a committed row's marker never
  // points to bytes that are not on disk.
  if (!spill.empty()) im.overflow->write(im.overflow_bytes, spill);
  im.append(*im.trials, im.trial_rows, rows, action);
  im.overflow_bytes += spill.size();
}

void RecordsWriter::append_curve(std::int64_t trial_id, int attempt,
                                 const std::vector<trainer::CurvePoint>& points) {
  if (points.empty()) return;
  auto guard = h5::lock();
  Impl& im = *impl_;
  Rows rows(curve_columns());
  rows.resize(points.size());
  const CurveIndex ix(rows);
  const int seq = rows.find("seq");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    rows.set(i, seq, static_cast<std::int64_t>(im.curve_rows + i + 1));
    rows.set(i, ix.trial_id, std::int64_t{trial_id});
    rows.set(i, ix.attempt, std::int64_t{attempt});
    rows.set(i, ix.step, std::int64_t{p.step});
    rows.set(i, ix.tokens, p.tokens);
    rows.set(i, ix.flops, p.flops);
    rows.set(i, ix.wall_seconds, p.wall_seconds);
    rows.set(i, ix.train_loss, p.train_loss);
    rows.set(i, ix.val_loss, p.val_loss);
    rows.set(i, ix.train_return, p.train_return);
    rows.set(i, ix.eval_return, p.eval_return);
  }
  im.append(*im.curves, im.curve_rows, rows,
            "appending the curve of trial " + std::to_string(trial_id));
}

void RecordsWriter::put_text(const std::string& name, const std::string& text) {
  auto guard = h5::lock();
  Impl& im = *impl_;
  check_text_name(name, im.what);
  const std::string where = im.what + ": cannot store /texts/" + name;
  h5::Id texts(h5::check_id(H5Gopen2(im.file.get(), "texts", H5P_DEFAULT), where));
  const bool exists = h5::check_tri(H5Lexists(texts.get(), name.c_str(), H5P_DEFAULT), where) > 0;
  if (!exists) {
    // Step 1: the empty text (two slots, no current one); a crash leaves it absent.
    h5::Id group(h5::check_id(
        H5Gcreate2(texts.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), where));
    const hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = kTextChunkBytes;
    h5::Id space(h5::check_id(H5Screate_simple(1, &zero, &unlimited), where));
    h5::Id dcpl(h5::check_id(H5Pcreate(H5P_DATASET_CREATE), where));
    h5::check(H5Pset_chunk(dcpl.get(), 1, &chunk), where);
    for (const char* slot : kSlotNames) {
      h5::Id d(h5::check_id(H5Dcreate2(group.get(), slot, H5T_STD_U8LE, space.get(), H5P_DEFAULT,
                                       dcpl.get(), H5P_DEFAULT),
                            where));
    }
    h5::write_attribute(group.get(), kCurrentSlot, std::int64_t{-1}, where);
    im.flush("creating text " + name);
  }
  h5::Id group(h5::check_id(H5Gopen2(texts.get(), name.c_str(), H5P_DEFAULT), where));
  const auto current = h5::read_int_attribute(group.get(), kCurrentSlot, where);
  const int next = current == 0 ? 1 : 0;
  // Step 2: the new value into the slot no reader uses; step 3: point `current_slot` at it.
  {
    h5::Id dataset(h5::check_id(H5Dopen2(group.get(), kSlotNames[next], H5P_DEFAULT), where));
    const hsize_t n = text.size();
    h5::check(H5Dset_extent(dataset.get(), &n), where);
    if (n > 0) {
      h5::check(
          H5Dwrite(dataset.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()),
          where);
    }
  }
  im.flush("storing text " + name);
  h5::overwrite_attribute(group.get(), kCurrentSlot, next, where);
  im.flush("storing text " + name);
}

}  // namespace scaletune::store
