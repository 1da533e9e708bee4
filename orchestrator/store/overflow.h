// /overflow (records schema 3): where the string cells of /trials that do not fit their fixed
// width keep their values. A 1-D, chunked, extendible uint8 dataset that only grows; such a cell
// holds the marker `@overflow:OFFSET:LENGTH` instead, naming the value's bytes in /overflow.
//
// Crash safety is the table's (table.h): an append writes the values to /overflow, then its
// rows, flushes, and only then commits the rows. Bytes no committed row points to belong to an
// append that was in flight; nothing reads them, and a resumed writer's rebuild drops them.
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

  std::uint64_t size() const;  // bytes in the dataset, those of an append in flight included
  // Writes `bytes` at `offset`, growing the dataset to offset + bytes.size().
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
