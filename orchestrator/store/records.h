// The records file of a sweep: one HDF5 file holding the sweep's metadata, an append-only trials
// table (one column per parameter), per-trial learning curves and named text blobs (the
// searcher's state, fitted laws). Schema: docs/records.md (readable with h5py, no scaletune code).
//
// One writer (RecordsWriter), any number of readers (load), also while the writer is running.
// Every writer call is durable when it returns: the data is flushed to the operating system, so
// it survives the writer being killed (kill -9, OOM killer, a Slurm timeout); with
// WriterOptions::fsync it also survives the machine losing power. A crash loses at most the one
// append that was in flight.
//
// Not here: what a trial means (orchestrator/sweep), the search (orchestrator/search), fits.
// The HDF5 library used is the serial build: every call into this module is serialised by one
// process-wide mutex, so it is safe to call from several threads, but never faster.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/core/result.h"

namespace scaletune::store {

// Version of the file layout written by this build. A reader accepts files with a schema version
// up to this one and refuses newer ones (docs/records.md lists what each version added). A
// writer appending to an older file keeps that file's layout (columns it lacks are not written).
inline constexpr int kSchemaVersion = 3;
inline constexpr int kOldestSchemaVersion = 1;
// Value of the root attribute `format`, which tells our files apart from other HDF5 files.
inline constexpr const char* kFormatName = "scaletune-records";

// Every expected failure of this module: a missing, truncated, foreign or newer file, a second
// writer, a record that does not fit the sweep. The message names the file and says what to do.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What a sweep is, written once when the file is created.
struct SweepMeta {
  std::string config_yaml;             // the resolved sweep config (after --set overrides)
  std::string scaletune_version;       // of the program that created the file
  double created = 0;                  // unix seconds
  std::string search_space_json;       // the search-space definition, as the searcher wrote it
  std::string direction = "minimize";  // "minimize" | "maximize" (the objective)
  std::string objective;               // name of the objective metric, e.g. "val_loss"
  std::string cost_metric;             // name of the cost the search trades off, e.g. "flops"
  std::vector<std::string> params;     // search parameters: one trials column each
  std::vector<std::string> metrics;    // declared metrics: one trials column each
};

enum class TrialStatus {
  kRunning,      // started, no result yet (superseded by a later row of the same trial)
  kOk,           // finished and reported its objective
  kFailed,       // the settings failed (diverged, OOM, invalid): data for the search
  kInfraFailed,  // the machine failed (node lost, agent died): not the settings' fault
  kInterrupted,  // stopped by the sweep (shutdown, time limit): may be resumed
};

const char* to_string(TrialStatus status);  // "running" | "ok" | "failed" | "infra_failed" | ...
// Throws StoreError naming the accepted values.
TrialStatus parse_trial_status(const std::string& text);

// One row of the trials table. A trial usually has two rows: `running` when it starts and its
// final row when it ends; the last row written for a trial id is the one that counts.
struct TrialRecord {
  std::int64_t trial_id = 0;
  int attempt = 0;  // 0 for the first run of a trial, +1 for each retry after an infra failure
  TrialStatus status = TrialStatus::kRunning;
  std::string failure_kind;  // e.g. "diverged", "oom", "timeout", "node_lost"; empty when ok
  std::string reason;        // human-readable why; any length
  std::map<std::string, double> params;  // keys must be in SweepMeta::params; absent -> NaN
  double objective = kNaN;               // NaN when the trial reported none
  double cost = kNaN;                    // the value of SweepMeta::cost_metric
  double flops = kNaN;
  double flops_6n = kNaN;
  double tokens = kNaN;
  double device_seconds = kNaN;
  double wall_seconds = kNaN;
  double start_time = kNaN;  // unix seconds
  double end_time = kNaN;    // unix seconds; NaN while running
  std::string host;
  int devices = 0;
  std::vector<std::string> slots;  // "host/device" of each rank, rank 0 first (schema >= 2)
  std::string trial_dir;           // the trial's working directory (schema >= 2)
  std::string log_path;
  std::string suggestion_id;  // the searcher's id for the suggestion this trial evaluates
  // Every metric the trial reported. Declared metrics (SweepMeta::metrics) get a column; the
  // others are kept in a JSON text column, so none is lost. A NaN declared metric reads back as
  // absent (a column cannot tell "reported NaN" from "not reported").
  std::map<std::string, double> metrics;
};

// One point of a learning curve, with the trial it belongs to.
struct CurveRow {
  std::int64_t trial_id = 0;
  int attempt = 0;
  trainer::CurvePoint point;
};

// A consistent snapshot of a records file, read into memory.
struct Records {
  std::string path;
  int schema_version = 0;
  SweepMeta meta;
  std::vector<TrialRecord> trials;           // every row, in the order written
  std::vector<CurveRow> curves;              // every curve point, in the order written
  std::map<std::string, std::string> texts;  // name -> latest value

  // One row per trial id, the last one written (a running row is superseded by its final row),
  // ordered by trial id.
  std::vector<TrialRecord> latest_trials() const;
  // The curve of one attempt of a trial in the order written; attempt -1 means the last attempt
  // that has curve points. Empty when there is none.
  std::vector<trainer::CurvePoint> curve(std::int64_t trial_id, int attempt = -1) const;
  // Every trial's curve (its last attempt with points) in one pass: use this rather than
  // curve() per trial when reading many curves.
  std::map<std::int64_t, std::vector<trainer::CurvePoint>> latest_curves() const;
  // The latest value of a named text, or nullopt.
  std::optional<std::string> text(const std::string& name) const;
};

struct LoadOptions {
  bool curves = true;  // false skips the curves table (fast status polling of big sweeps)
};

// Reads a records file; works while a writer is appending to it. Each table is read up to its
// committed rows, so every row is whole; the tables are read one after the other, so the curves
// may hold points appended just after the last trial row read. Throws StoreError for a missing
// file, a non-HDF5 or truncated file, an HDF5 file of another tool, or a newer schema version.
Records load(const std::string& path, const LoadOptions& options = {});

struct WriterOptions {
  // Also fsync after every call, so records survive a power loss or kernel crash, not just the
  // writer's death. Costs a disk round trip per call (milliseconds on disks, more on NFS).
  bool fsync = false;
  // The layout `create` writes (kOldestSchemaVersion..kSchemaVersion): an older one for readers
  // that are not upgraded yet; its rows lack the newer columns. open_existing ignores it and keeps
  // the file's own version.
  int schema_version = kSchemaVersion;
};

// The single writer of a records file. Holds an exclusive lock (`PATH.lock`, released when the
// process dies) so a second writer fails with StoreError instead of corrupting the file.
// Move-only; the destructor closes the file and never throws.
class RecordsWriter {
 public:
  // Creates a new file (and missing parent directories). Throws StoreError when PATH exists.
  static RecordsWriter create(const std::string& path, const SweepMeta& meta,
                              const WriterOptions& options = {});

  struct Resumed;
  // Opens an existing file to append more (resume after a crash or a stop). Returns the writer
  // and what is recorded so far. An append that was in flight when the previous writer died is
  // discarded here.
  static Resumed open_existing(const std::string& path, const WriterOptions& options = {});

  RecordsWriter(RecordsWriter&&) noexcept;
  RecordsWriter& operator=(RecordsWriter&&) noexcept;
  RecordsWriter(const RecordsWriter&) = delete;
  RecordsWriter& operator=(const RecordsWriter&) = delete;
  ~RecordsWriter();

  // Appends one row to the trials table. Throws StoreError for a parameter that is not a column
  // of this sweep (nothing is written then).
  void append_trial(const TrialRecord& record);
  // Appends points to the curves table, all or none.
  void append_curve(std::int64_t trial_id, int attempt,
                    const std::vector<trainer::CurvePoint>& points);
  // Stores a named text (e.g. "search_state", "fit"); the previous value stays readable until
  // the new one is complete, so a crash leaves one or the other, never a mix.
  void put_text(const std::string& name, const std::string& text);

  const SweepMeta& meta() const;
  const std::string& path() const;
  // Closes the file now, reporting errors (the destructor swallows them). Idempotent.
  void close();

 private:
  struct Impl;
  explicit RecordsWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct RecordsWriter::Resumed {
  RecordsWriter writer;
  Records records;
};

}  // namespace scaletune::store
