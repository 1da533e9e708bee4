// The sweep's records in the HDF5 records file (orchestrator/store/records.h): the adapter from
// the orchestrator's TrialRow to the store's TrialRecord, and the file's metadata for a sweep.
#pragma once

#include <string>
#include <vector>

#include "orchestrator/store/records.h"
#include "orchestrator/sweep/orchestrator.h"
#include "orchestrator/sweep/sweep_config.h"

namespace scaletune::sweep {

TrialRow to_row(const store::TrialRecord& r);
store::TrialRecord to_record(const TrialRow& row);

// The metadata a sweep's records file is created with.
store::SweepMeta sweep_meta(const SweepConfig& config, const std::string& config_yaml);

// SweepRecords on a RecordsWriter. `earlier` are the rows already in the file (resume).
class StoreRecords : public SweepRecords {
 public:
  StoreRecords(store::RecordsWriter writer, std::vector<TrialRow> earlier)
      : writer_(std::move(writer)), earlier_(std::move(earlier)) {}
  void append(const TrialRow& row) override;
  void put_text(const std::string& key, const std::string& text) override {
    writer_.put_text(key, text);
  }
  std::vector<TrialRow> rows() override { return earlier_; }
  store::RecordsWriter& writer() { return writer_; }

 private:
  store::RecordsWriter writer_;
  std::vector<TrialRow> earlier_;
};

}  // namespace scaletune::sweep
