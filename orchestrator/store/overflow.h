// /overflow (records schema 3): where the string cells of /trials that do not fit their fixed
// width keep their values. A 1-D, chunked, extendible uint8 dataset that only grows; such a cell
// holds the marker `@overflow:OFFSET:LENGTH` instead, naming the value's bytes in /overflow.
//
// Crash safety is the table's (table.h): an append writes the values to /overflow, then its
// rows, flushes, and only then commits the rows. Bytes no committed row points to belong to an
// append that was in flight or are allocated ahead (below); nothing reads them, and a resumed
// writer's rebuild drops them.
//
// Allocated ahead: adding a chunk rewrites the chunk index's B-tree node, a write of about
// 0.5 MB (istore_k, records.cpp) that a kill can cut at a page boundary, leaving the node's
// new entry count with the old right key of its last chunk; HDF5 then no longer finds that
// chunk and reads it as zeros (the crash test caught this once in 20 runs before the fix). So
// the dataset is grown with early allocation, one chunk per flush, and kept at least one whole
// chunk ahead of the bytes written: the chunk a torn node can hide then never holds a
// committed value.
//
// Internal to orchestrator/store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "orchestrator/store/hdf5.h"

namespace scaletune::store {

inline constexpr const char* kOverflowPrefix = "@overflow:";

// The cell text that stands for `length` bytes at `offset` of /overflow.
std::string overflow_marker(std::uint64_t offset, std::uint64_t length);
// Whether a value goes to /overflow: it is longer than the cell, or it starts with the marker
// prefix (so that every cell starting with it is a marker, and decoding is unambiguous).
bool needs_overflow(const std::string& value, std::size_t width);
// The (offset, length) a cell's marker names, or nullopt for a cell holding its value. Throws
// StoreError (prefixed with `where`) for a cell that starts like a marker but is not one.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_overflow_marker(
    const std::string& cell, const std::string& where);

class Overflow {
 public:
  static Overflow create(hid_t parent, const std::string& what);
  // nullopt when the file has none (schema 1 and 2).
  static std::optional<Overflow> open(hid_t parent, const std::string& what);

  // Bytes in the dataset: those written, those of an append in flight and those allocated ahead.
  std::uint64_t size() const;
  // Writes `bytes` at `offset`, first growing the dataset (a chunk at a time, each flushed) so
  // that at least one whole chunk lies past offset + bytes.size().
  void write(std::uint64_t offset, const std::string& bytes);
  // Bytes [0, n); n must be at most size().
  std::string read(std::uint64_t n) const;

 private:
  Overflow(h5::Id dataset, std::string what)
      : dataset_(std::move(dataset)), what_(std::move(what)) {}
  h5::Id dataset_;
  std::string what_;
};

}  // namespace scaletune::store
