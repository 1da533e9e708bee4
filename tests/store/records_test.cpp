// The records file through its API: round trip of every field, append-only rows and
// latest_trials, resuming, texts, the writer lock, and clear errors for files we cannot read.
#include "orchestrator/store/records.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "tests/store/store_fixtures.h"
#include "tests/support/process.h"

namespace scaletune::store {
namespace {

using test::same;
using test::sample_curve;
using test::sample_meta;
using test::sample_trial;
using test::sample_trial_v2;

std::string fresh_file(const std::string& name) {
  return scaletune::test::temp_dir("store_" + name) + "/records.h5";
}

void expect_same_trial(const TrialRecord& a, const TrialRecord& b) {
  EXPECT_EQ(a.trial_id, b.trial_id);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.failure_kind, b.failure_kind);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.params, b.params);
  EXPECT_TRUE(same(a.objective, b.objective)) << a.objective << " vs " << b.objective;
  EXPECT_TRUE(same(a.cost, b.cost));
  EXPECT_TRUE(same(a.flops, b.flops));
  EXPECT_TRUE(same(a.flops_6n, b.flops_6n));
  EXPECT_TRUE(same(a.tokens, b.tokens));
  EXPECT_TRUE(same(a.device_seconds, b.device_seconds));
  EXPECT_TRUE(same(a.wall_seconds, b.wall_seconds));
  EXPECT_TRUE(same(a.start_time, b.start_time));
  EXPECT_TRUE(same(a.end_time, b.end_time));
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.devices, b.devices);
  EXPECT_EQ(a.slots, b.slots);
  EXPECT_EQ(a.trial_dir, b.trial_dir);
  EXPECT_EQ(a.log_path, b.log_path);
  EXPECT_EQ(a.suggestion_id, b.suggestion_id);
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (const auto& [k, v] : a.metrics) {
    ASSERT_TRUE(b.metrics.count(k)) << k;
    EXPECT_TRUE(same(v, b.metrics.at(k))) << k;
  }
}

void expect_same_point(const trainer::CurvePoint& a, const trainer::CurvePoint& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_TRUE(same(a.tokens, b.tokens));
  EXPECT_TRUE(same(a.flops, b.flops));
  EXPECT_TRUE(same(a.wall_seconds, b.wall_seconds));
  EXPECT_TRUE(same(a.train_loss, b.train_loss));
  EXPECT_TRUE(same(a.val_loss, b.val_loss));
  EXPECT_TRUE(same(a.train_return, b.train_return));
  EXPECT_TRUE(same(a.eval_return, b.eval_return));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(no StoreError)";
}

TEST(TrialStatus, RoundTripsAndRejectsUnknown) {
  for (auto s : {TrialStatus::kRunning, TrialStatus::kOk, TrialStatus::kFailed,
                 TrialStatus::kInfraFailed, TrialStatus::kInterrupted}) {
    EXPECT_EQ(parse_trial_status(to_string(s)), s);
  }
  EXPECT_STREQ(to_string(TrialStatus::kInfraFailed), "infra_failed");
  const std::string e = error_of([] { parse_trial_status("done"); });
  EXPECT_NE(e.find("'done'"), std::string::npos) << e;
  EXPECT_NE(e.find("infra_failed"), std::string::npos) << e;
}

TEST(Records, RoundTripsEveryField) {
  const auto path = fresh_file("roundtrip");
  auto meta = sample_meta();
  meta.config_yaml = std::string(200000, 'c') + "\nend: true\n";  // long text
  std::vector<TrialRecord> written;
  {
    auto w = RecordsWriter::create(path, meta);
    for (int i = 0; i < 12; ++i) {
      written.push_back(sample_trial_v2(i));
      w.append_trial(written.back());
    }
    TrialRecord odd = sample_trial_v2(100);
    odd.reason = std::string(100000, 'r') + "é\xE2\x82\xAC";  // long, UTF-8
    odd.metrics["inf_metric"] = std::numeric_limits<double>::infinity();
    odd.metrics["nan_metric"] = kNaN;
    odd.metrics["neg_inf"] = -std::numeric_limits<double>::infinity();
    odd.params.erase("p2");  // absent parameter -> NaN column -> absent again
    odd.objective = kNaN;
    odd.status = TrialStatus::kInfraFailed;
    odd.host = "";
    written.push_back(odd);
    w.append_trial(odd);
    w.append_curve(3, 0, sample_curve(3, 5));
    w.append_curve(4, 1, sample_curve(4, 2));
  }
  const Records r = load(path);
  EXPECT_EQ(r.schema_version, kSchemaVersion);
  EXPECT_EQ(r.meta.config_yaml, meta.config_yaml);
  EXPECT_EQ(r.meta.scaletune_version, meta.scaletune_version);
  EXPECT_EQ(r.meta.created, meta.created);
  EXPECT_EQ(r.meta.search_space_json, meta.search_space_json);
  EXPECT_EQ(r.meta.direction, meta.direction);
  EXPECT_EQ(r.meta.objective, meta.objective);
  EXPECT_EQ(r.meta.cost_metric, meta.cost_metric);
  EXPECT_EQ(r.meta.params, meta.params);
  EXPECT_EQ(r.meta.metrics, meta.metrics);
  ASSERT_EQ(r.trials.size(), written.size());
  for (std::size_t i = 0; i < written.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    expect_same_trial(r.trials[i], written[i]);
  }
  EXPECT_TRUE(std::isinf(r.trials.back().metrics.at("inf_metric")));
  EXPECT_TRUE(std::isnan(r.trials.back().metrics.at("nan_metric")));
  EXPECT_LT(r.trials.back().metrics.at("neg_inf"), 0);
  const auto c3 = r.curve(3);
  const auto expected3 = sample_curve(3, 5);
  ASSERT_EQ(c3.size(), expected3.size());
  for (std::size_t i = 0; i < c3.size(); ++i) expect_same_point(c3[i], expected3[i]);
  EXPECT_EQ(r.curve(4, 1).size(), 2u);
  EXPECT_TRUE(r.curve(4, 0).empty());
  EXPECT_TRUE(r.curve(99).empty());
  const auto all = r.latest_curves();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all.at(3).size(), 5u);
  EXPECT_EQ(all.at(4).size(), 2u);
  ASSERT_EQ(r.curves.size(), 7u);
  EXPECT_EQ(r.curves[5].trial_id, 4);
  EXPECT_EQ(r.curves[5].attempt, 1);
}

TEST(Records, CurveOfARetriedTrialIsItsLastAttempt) {
  const auto path = fresh_file("retried_curve");
  {
    auto w = RecordsWriter::create(path, sample_meta());
    w.append_curve(5, 0, sample_curve(5, 4));  // attempt 0 died on a lost node
    w.append_curve(6, 0, sample_curve(6, 1));
    w.append_curve(5, 1, sample_curve(5, 2));  // the retry
  }
  const auto r = load(path);
  EXPECT_EQ(r.curve(5).size(), 2u);
  EXPECT_EQ(r.curve(5, 0).size(), 4u);
  EXPECT_EQ(r.latest_curves().at(5).size(), 2u);
  EXPECT_EQ(r.latest_curves().at(6).size(), 1u);
}

TEST(Records, ManyParametersEachGetAColumn) {
  const auto path = fresh_file("many_params");
  const int n = 120;
  auto meta = sample_meta(n);
  {
    auto w = RecordsWriter::create(path, meta);
    w.append_trial(sample_trial(1, n));
  }
  const auto r = load(path);
  ASSERT_EQ(r.meta.params.size(), static_cast<std::size_t>(n));
  ASSERT_EQ(r.trials.size(), 1u);
  EXPECT_EQ(r.trials[0].params, sample_trial(1, n).params);
  EXPECT_DOUBLE_EQ(r.trials[0].params.at("p119"), 1e-3 * 2 + 119);
}

TEST(Records, EmptySweepAndEmptyLists) {
  const auto path = fresh_file("empty");
  SweepMeta meta;
  meta.direction = "maximize";
  { RecordsWriter::create(path, meta); }
  const auto r = load(path);
  EXPECT_TRUE(r.meta.params.empty());
  EXPECT_TRUE(r.meta.metrics.empty());
  EXPECT_EQ(r.meta.direction, "maximize");
  EXPECT_FALSE(r.meta.scaletune_version.empty());  // filled in by create
  EXPECT_GT(r.meta.created, 1.6e9);
  EXPECT_TRUE(r.trials.empty());
  EXPECT_TRUE(r.curves.empty());
  EXPECT_TRUE(r.texts.empty());
}

TEST(Records, AppendOnlyAndLatestTrials) {
  const auto path = fresh_file("latest");
  auto w = RecordsWriter::create(path, sample_meta());
  TrialRecord a = sample_trial(0);  // trial 0 running
  a.trial_id = 7;
  w.append_trial(a);
  TrialRecord b = sample_trial(2);  // trial 1 running
  b.trial_id = 3;
  w.append_trial(b);
  TrialRecord a_done = sample_trial(1);
  a_done.trial_id = 7;
  w.append_trial(a_done);

  auto r = load(path);             // while the writer is open
  ASSERT_EQ(r.trials.size(), 3u);  // nothing is overwritten
  EXPECT_EQ(r.trials[0].status, TrialStatus::kRunning);
  auto latest = r.latest_trials();
  ASSERT_EQ(latest.size(), 2u);
  EXPECT_EQ(latest[0].trial_id, 3);
  EXPECT_EQ(latest[0].status, TrialStatus::kRunning);
  EXPECT_EQ(latest[1].trial_id, 7);
  EXPECT_EQ(latest[1].status, TrialStatus::kOk);
  EXPECT_TRUE(same(latest[1].objective, a_done.objective));
}

TEST(Records, TextsKeepTheLatestValue) {
  const auto path = fresh_file("texts");
  auto w = RecordsWriter::create(path, sample_meta());
  w.put_text("search_state", std::string(50000, 'x'));
  w.put_text("fit", "{\"alpha\": 0.3}");
  EXPECT_EQ(load(path).text("search_state"), std::string(50000, 'x'));
  w.put_text("search_state", "short");  // shrinks
  w.put_text("search_state", "");       // empty is a value, not absence
  w.put_text("search_state", "v4");
  const auto r = load(path);
  EXPECT_EQ(r.text("search_state"), "v4");
  EXPECT_EQ(r.text("fit"), "{\"alpha\": 0.3}");
  EXPECT_EQ(r.text("nothing"), std::nullopt);
  w.put_text("search_state", "");
  EXPECT_EQ(load(path).text("search_state"), "");
  EXPECT_NE(error_of([&] { w.put_text("a/b", "x"); }).find("'a/b'"), std::string::npos);
}

TEST(Records, ReopenForAppendKeepsEverything) {
  const auto path = fresh_file("reopen");
  {
    auto w = RecordsWriter::create(path, sample_meta());
    for (int i = 0; i < 5; ++i) w.append_trial(sample_trial(i));
    w.append_curve(0, 0, sample_curve(0, 3));
    w.put_text("search_state", "after 5");
    w.close();
    w.close();  // idempotent
  }
  {
    auto resumed = RecordsWriter::open_existing(path);
    EXPECT_EQ(resumed.records.trials.size(), 5u);
    EXPECT_EQ(resumed.records.curves.size(), 3u);
    EXPECT_EQ(resumed.records.text("search_state"), "after 5");
    EXPECT_EQ(resumed.writer.meta().params, sample_meta().params);
    for (int i = 5; i < 9; ++i) resumed.writer.append_trial(sample_trial(i));
    resumed.writer.append_curve(1, 0, sample_curve(1, 2));
    resumed.writer.put_text("search_state", "after 9");
  }
  const auto r = load(path);
  ASSERT_EQ(r.trials.size(), 9u);
  for (int i = 0; i < 9; ++i) expect_same_trial(r.trials[i], sample_trial(i));
  EXPECT_EQ(r.curves.size(), 5u);
  EXPECT_EQ(r.text("search_state"), "after 9");
}

// Files of schema version 1 (no `slots` / `trial_dir` columns) stay readable, and a resumed sweep
// keeps appending version-1 rows to them, so the readers that made them still work.
TEST(Records, SchemaVersionOneFilesAreReadAndAppendedInTheirOwnLayout) {
  const auto path = fresh_file("schema1");
  WriterOptions v1;
  v1.schema_version = 1;
  {
    auto w = RecordsWriter::create(path, sample_meta(), v1);
    for (int i = 0; i < 3; ++i) w.append_trial(sample_trial_v2(i));
  }
  auto without_new_columns = [](TrialRecord t) {
    t.slots.clear();
    t.trial_dir.clear();
    return t;
  };
  {
    const auto r = load(path);
    EXPECT_EQ(r.schema_version, 1);
    ASSERT_EQ(r.trials.size(), 3u);
    for (int i = 0; i < 3; ++i)
      expect_same_trial(r.trials[i], without_new_columns(sample_trial_v2(i)));
  }
  {
    auto resumed = RecordsWriter::open_existing(path);  // default options ask for the newest
    EXPECT_EQ(resumed.records.schema_version, 1);
    for (int i = 3; i < 6; ++i) resumed.writer.append_trial(sample_trial_v2(i));
  }
  const auto r = load(path);
  EXPECT_EQ(r.schema_version, 1);
  ASSERT_EQ(r.trials.size(), 6u);
  for (int i = 0; i < 6; ++i)
    expect_same_trial(r.trials[i], without_new_columns(sample_trial_v2(i)));

  // The current version has the columns; a version this build cannot write is refused.
  EXPECT_EQ(kSchemaVersion, 3);
  const auto v2 = fresh_file("schema2");
  { RecordsWriter::create(v2, sample_meta()).append_trial(sample_trial_v2(1)); }
  const auto r2 = load(v2);
  EXPECT_EQ(r2.schema_version, 3);
  ASSERT_EQ(r2.trials.size(), 1u);
  EXPECT_EQ(r2.trials[0].slots, (std::vector<std::string>{"node-1/cuda:0", "node-1/cuda:1"}));
  EXPECT_EQ(r2.trials[0].trial_dir, sample_trial_v2(1).trial_dir);  // long: in /overflow
  WriterOptions bad;
  bad.schema_version = kSchemaVersion + 1;
  const std::string e =
      error_of([&] { RecordsWriter::create(fresh_file("schema4"), sample_meta(), bad); });
  EXPECT_NE(e.find("cannot write schema version 4"), std::string::npos) << e;
}

// ---- schema 3: fixed-size string cells, long values in /overflow ----

// How the file stores a /trials column: 0 for a variable-length string, else its width.
std::size_t stored_width(const std::string& path, const std::string& column) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(file, "trials", H5P_DEFAULT);
  const hid_t type = H5Dget_type(d);
  const hid_t member =
      H5Tget_member_type(type, static_cast<unsigned>(H5Tget_member_index(type, column.c_str())));
  const std::size_t width = H5Tis_variable_str(member) > 0 ? 0 : H5Tget_size(member);
  H5Tclose(member);
  H5Tclose(type);
  H5Dclose(d);
  H5Fclose(file);
  return width;
}

// Bytes in /overflow, or -1 when the file has none.
long overflow_size(const std::string& path) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  long n = -1;
  if (H5Lexists(file, "overflow", H5P_DEFAULT) > 0) {
    const hid_t d = H5Dopen2(file, "overflow", H5P_DEFAULT);
    const hid_t space = H5Dget_space(d);
    hsize_t dims = 0;
    H5Sget_simple_extent_dims(space, &dims, nullptr);
    n = static_cast<long>(dims);
    H5Sclose(space);
    H5Dclose(d);
  }
  H5Fclose(file);
  return n;
}

// Values at the edges of a cell of `width` bytes, for one string field.
std::vector<std::string> edge_values(std::size_t width) {
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes of UTF-8
  return {
      "",                                        // empty
      std::string(width, 'w'),                   // fills the cell exactly: no terminator
      std::string(width + 1, 'x'),               // one byte too long
      std::string(width - 1, 'a') + euro,        // a character across the cell's end
      std::string(width - 3, 'b') + euro,        // a character that ends exactly at it
      "@overflow:0:3",                           // looks like a marker: stored as a value
      "@overflow:",                              // the bare prefix
      std::string(5 * width, 'y') + "\xC3\xA9",  // long, UTF-8 at the end
  };
}

TEST(Records, SchemaThreeStoresStringsInFixedCellsAndLongValuesWhole) {
  const auto path = fresh_file("fixed_strings");
  { RecordsWriter::create(path, sample_meta()); }
  // The widths come from the file, so the test follows a change of them.
  const std::size_t failure_kind = stored_width(path, "failure_kind"),
                    reason = stored_width(path, "reason"), host = stored_width(path, "host"),
                    log_path = stored_width(path, "log_path"),
                    suggestion_id = stored_width(path, "suggestion_id"),
                    slots = stored_width(path, "slots"),
                    trial_dir = stored_width(path, "trial_dir"),
                    other = stored_width(path, "other_metrics_json");
  for (auto w : {stored_width(path, "status"), failure_kind, reason, host, log_path, suggestion_id,
                 slots, trial_dir, other}) {
    EXPECT_GE(w, 16u);  // fixed-size everywhere, and room for a marker
  }
  std::filesystem::remove(path);

  std::vector<TrialRecord> written;
  for (std::size_t k = 0; k < edge_values(16).size(); ++k) {
    TrialRecord t = sample_trial_v2(static_cast<std::int64_t>(k));
    t.failure_kind = edge_values(failure_kind)[k];
    t.reason = edge_values(reason)[k];
    t.host = edge_values(host)[k];
    t.log_path = edge_values(log_path)[k];
    t.suggestion_id = edge_values(suggestion_id)[k];
    t.trial_dir = edge_values(trial_dir)[k];
    t.slots = {edge_values(slots)[k]};
    if (t.slots[0].empty()) t.slots.clear();  // "" is no slots
    // A metric name that makes the JSON column just fit, or not.
    t.metrics[std::string(k * other / 4, 'm')] = 1.5;
    written.push_back(t);
  }
  TrialRecord nul = sample_trial_v2(20);
  nul.reason = std::string(reason, 'n') + std::string("\0end", 4);  // NUL -> U+FFFD, then long
  nul.host = std::string("a\0b", 3);
  written.push_back(nul);
  {
    auto w = RecordsWriter::create(path, sample_meta());
    for (const auto& t : written) w.append_trial(t);
  }
  written[written.size() - 1].reason = std::string(reason, 'n') + "\xEF\xBF\xBD" + "end";
  written[written.size() - 1].host =
      "a\xEF\xBF\xBD"
      "b";
  EXPECT_EQ(load(path).schema_version, 3);
  EXPECT_GT(overflow_size(path), 0);
  auto check = [&](const Records& r, std::size_t n) {
    ASSERT_EQ(r.trials.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      SCOPED_TRACE("row " + std::to_string(i));
      expect_same_trial(r.trials[i], written[i % written.size()]);
    }
  };
  check(load(path), written.size());

  // Only values that do not fit (or look like markers) went to /overflow, each whole, once.
  std::size_t spilled = 0;
  for (const auto& t : written) {
    const std::string slots_text = t.slots.empty() ? "" : t.slots[0];
    const std::pair<const std::string*, std::size_t> cells[] = {{&t.failure_kind, failure_kind},
                                                                {&t.reason, reason},
                                                                {&t.host, host},
                                                                {&t.log_path, log_path},
                                                                {&t.suggestion_id, suggestion_id},
                                                                {&t.trial_dir, trial_dir},
                                                                {&slots_text, slots}};
    for (const auto& [value, width] : cells) {
      if (value->size() > width || value->rfind("@overflow:", 0) == 0) spilled += value->size();
    }
  }
  // /overflow is allocated ahead in whole chunks (overflow.h), so its size is an upper bound.
  EXPECT_GT(overflow_size(path), static_cast<long>(spilled + other));  // + the long JSON values

  // A resumed writer rebuilds /overflow from the committed rows and appends after it.
  {
    auto resumed = RecordsWriter::open_existing(path);
    check(resumed.records, written.size());
    for (const auto& t : written) resumed.writer.append_trial(t);
  }
  check(load(path), 2 * written.size());
  EXPECT_GT(overflow_size(path), static_cast<long>(2 * (spilled + other)));
}

// Files of schema version 2 (variable-length strings, no /overflow) stay readable, and a resumed
// sweep keeps appending in that layout, long values included.
TEST(Records, SchemaVersionTwoFilesAreReadAndAppendedInTheirOwnLayout) {
  const auto path = fresh_file("schema2_layout");
  WriterOptions v2;
  v2.schema_version = 2;
  std::vector<TrialRecord> written;
  for (int i = 0; i < 8; ++i) written.push_back(sample_trial_v2(i));
  written[2].reason = std::string(5000, 'r') + "\xE2\x82\xAC";
  written[4].host = "@overflow:0:3";  // an ordinary value in a schema-2 file
  {
    auto w = RecordsWriter::create(path, sample_meta(), v2);
    for (int i = 0; i < 4; ++i) w.append_trial(written[i]);
  }
  auto expect_v2_layout = [&] {
    EXPECT_EQ(stored_width(path, "reason"), 0u);  // variable-length
    EXPECT_EQ(stored_width(path, "other_metrics_json"), 0u);
    EXPECT_EQ(overflow_size(path), -1);
  };
  expect_v2_layout();
  {
    auto resumed = RecordsWriter::open_existing(path);
    EXPECT_EQ(resumed.records.schema_version, 2);
    ASSERT_EQ(resumed.records.trials.size(), 4u);
    for (int i = 0; i < 4; ++i) expect_same_trial(resumed.records.trials[i], written[i]);
    for (int i = 4; i < 8; ++i) resumed.writer.append_trial(written[i]);
  }
  expect_v2_layout();
  const auto r = load(path);
  EXPECT_EQ(r.schema_version, 2);
  ASSERT_EQ(r.trials.size(), 8u);
  for (int i = 0; i < 8; ++i) expect_same_trial(r.trials[i], written[i]);
}

TEST(Records, WriterRefusesExistingFileUnknownParameterAndSecondWriter) {
  const auto path = fresh_file("refuse");
  auto w = RecordsWriter::create(path, sample_meta());
  w.append_trial(sample_trial(0));
  std::string e = error_of([&] { RecordsWriter::create(path, sample_meta()); });
  EXPECT_NE(e.find("another process is writing"), std::string::npos) << e;
  e = error_of([&] { RecordsWriter::open_existing(path); });
  EXPECT_NE(e.find("another process is writing"), std::string::npos) << e;

  TrialRecord bad = sample_trial(1);
  bad.params["dropout"] = 0.1;
  e = error_of([&] { w.append_trial(bad); });
  EXPECT_NE(e.find("'dropout'"), std::string::npos) << e;
  EXPECT_NE(e.find("optimizer.lr"), std::string::npos) << e;  // lists the real columns
  w.close();
  EXPECT_EQ(load(path).trials.size(), 1u);  // the bad record wrote nothing

  e = error_of([&] { RecordsWriter::create(path, sample_meta()); });
  EXPECT_NE(e.find("already exists"), std::string::npos) << e;
  SweepMeta bad_meta = sample_meta();
  bad_meta.direction = "down";
  e = error_of([&] { RecordsWriter::create(fresh_file("bad_meta"), bad_meta); });
  EXPECT_NE(e.find("'down'"), std::string::npos) << e;
}

TEST(Records, NulBytesInStringsAreReplacedNotTruncated) {
  const auto path = fresh_file("nul");
  auto w = RecordsWriter::create(path, sample_meta());
  TrialRecord t = sample_trial(1);
  t.reason = std::string("before\0after", 12);
  w.append_trial(t);
  EXPECT_EQ(load(path).trials[0].reason,
            "before\xEF\xBF\xBD"
            "after");
}

// ---- files we cannot read ----

TEST(RecordsErrors, MissingFile) {
  const std::string e = error_of([] { load("/nonexistent/dir/records.h5"); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/dir/records.h5"), std::string::npos) << e;
}

TEST(RecordsErrors, TextFileAndEmptyFile) {
  const auto dir = scaletune::test::temp_dir("store_text_file");
  const std::string text = dir + "/notes.h5";
  std::ofstream(text) << "trial_id,objective\n1,0.5\n";
  std::string e = error_of([&] { load(text); });
  EXPECT_NE(e.find("is not an HDF5 file"), std::string::npos) << e;
  const std::string empty = dir + "/empty.h5";
  std::ofstream{empty};
  e = error_of([&] { load(empty); });
  EXPECT_NE(e.find("is empty"), std::string::npos) << e;
  e = error_of([&] { RecordsWriter::open_existing(text); });
  EXPECT_NE(e.find("is not an HDF5 file"), std::string::npos) << e;
  e = error_of([&] { load(dir); });
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
}

TEST(RecordsErrors, TruncatedFile) {
  const auto path = fresh_file("truncated");
  {
    auto w = RecordsWriter::create(path, sample_meta());
    for (int i = 0; i < 50; ++i) w.append_trial(sample_trial(i));
  }
  const auto size = std::filesystem::file_size(path);
  for (auto keep : {size / 2, size - 100, std::uintmax_t{2000}, std::uintmax_t{5}}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(size) + " bytes");
    const std::string cut = path + ".cut";
    std::filesystem::copy_file(path, cut, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(cut, keep);
    const std::string e = error_of([&] { load(cut); });
    const bool clear = e.find("truncated") != std::string::npos ||
                       e.find("cut short") != std::string::npos ||
                       e.find("is not an HDF5 file") != std::string::npos;
    EXPECT_TRUE(clear) << e;
    EXPECT_NE(e.find(cut), std::string::npos) << e;
  }
}

// Writes an HDF5 file with the C API: a foreign file, or ours with a tampered attribute.
void set_root_attribute(const std::string& path, const char* name, std::int64_t value) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  hid_t attr = H5Aopen_by_name(file, "/", name, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(attr, 0);
  ASSERT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &value), 0);
  H5Aclose(attr);
  H5Fclose(file);
}

TEST(RecordsErrors, NewerSchemaVersion) {
  const auto path = fresh_file("newer");
  { RecordsWriter::create(path, sample_meta()).append_trial(sample_trial(0)); }
  set_root_attribute(path, "schema_version", kSchemaVersion + 1);
  std::string e = error_of([&] { load(path); });
  EXPECT_NE(e.find("newer scaletune"), std::string::npos) << e;
  EXPECT_NE(e.find("schema version " + std::to_string(kSchemaVersion + 1)), std::string::npos) << e;
  e = error_of([&] { RecordsWriter::open_existing(path); });
  EXPECT_NE(e.find("newer scaletune"), std::string::npos) << e;
}

TEST(RecordsErrors, ForeignHdf5FileFromTheCApi) {
  const auto path = fresh_file("foreign_c");
  {
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    hsize_t n = 4;
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t d =
        H5Dcreate2(file, "trials", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double v[4] = {1, 2, 3, 4};
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(file);
  }
  const std::string e = error_of([&] { load(path); });
  EXPECT_NE(e.find("not a scaletune records file"), std::string::npos) << e;
}

TEST(RecordsErrors, ForeignHdf5FileFromH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-h5py is not installed";
  }
  const auto path = fresh_file("foreign_h5py");
  const auto r = scaletune::test::run_command(
      "/usr/bin/python3 -c \"import h5py, numpy; f = h5py.File('" + path +
      "', 'w'); f.attrs['format'] = 'keras'; f['weights'] = numpy.ones(3)\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string e = error_of([&] { load(path); });
  EXPECT_NE(e.find("another tool"), std::string::npos) << e;
  EXPECT_NE(e.find("'keras'"), std::string::npos) << e;
}

}  // namespace
}  // namespace scaletune::store
