// An append-only HDF5 table: a 1-D, chunked, extendible dataset of a compound type (one member
// per column) plus the attribute `committed_rows`, the number of rows that are complete. Rows at
// or past `committed_rows` belong to an append that was in flight and are never read.
//
// Why the attribute: a flush writes many pieces (chunks, the object header with the new extent,
// the global heap holding variable-length strings) in an order HDF5 does not promise, so a
// process killed during a flush can leave a row whose extent is on disk but whose strings are
// not. Appending is therefore write rows -> flush -> bump `committed_rows` (one in-place write of
// one object header) -> flush: whatever instant the writer dies at, rows below `committed_rows`
// are whole.
//
// String columns are variable-length (kString: the bytes live in HDF5's global heap, shared by
// consecutive rows and rewritten in place as it fills, which a kill can tear) or fixed-size
// (kFixedString: the bytes sit in the row, inside the chunk, like a number). Records files of
// schema 3 use fixed-size ones only (records.cpp).
//
// Internal to orchestrator/store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "orchestrator/store/hdf5.h"

namespace scaletune::store {

enum class ColumnType { kInt64, kInt32, kFloat64, kString, kFixedString };

// Either kind of string column.
bool is_string(ColumnType type);

struct Column {
  std::string name;
  ColumnType type;
  std::size_t width = 0;  // kFixedString: bytes per cell (UTF-8, NUL-padded); else unused
};

// A packed in-memory buffer of rows for a list of columns, laid out like the memory compound type
// it builds. Variable-length strings written are owned by the buffer; those read are allocated by
// HDF5 and reclaimed by the destructor. Fixed-size strings are stored in the buffer itself.
class Rows {
 public:
  explicit Rows(std::vector<Column> columns);
  Rows(Rows&&) = delete;  // string pointers in the buffer refer to its own storage
  Rows(const Rows&) = delete;
  ~Rows();

  const std::vector<Column>& columns() const { return columns_; }
  // Index of a column, or -1.
  int find(const std::string& name) const;
  std::size_t size() const { return count_; }
  // Resizes to n rows, every value zero / NaN / empty.
  void resize(std::size_t n);

  void set(std::size_t row, int column, std::int64_t value);
  void set(std::size_t row, int column, double value);
  // A kFixedString value must fit its width (StoreError otherwise: nothing is cut off) and must
  // not contain NUL bytes (they would end it).
  void set(std::size_t row, int column, const std::string& value);
  std::int64_t get_int(std::size_t row, int column) const;
  double get_double(std::size_t row, int column) const;
  std::string get_string(std::size_t row, int column) const;

  // The memory compound type matching the buffer layout (native types).
  h5::Id memory_type() const;
  // The compound type stored in files (little-endian, packed, UTF-8 strings).
  h5::Id file_type() const;
  void* data() { return buffer_.data(); }
  const void* data() const { return buffer_.data(); }

 private:
  friend class Table;
  char* cell(std::size_t row, int column) {
    return buffer_.data() + row * row_size_ + offsets_[column];
  }
  const char* cell(std::size_t row, int column) const {
    return buffer_.data() + row * row_size_ + offsets_[column];
  }
  void release_hdf5_strings();

  std::vector<Column> columns_;
  std::vector<std::size_t> offsets_;
  std::size_t row_size_ = 0;
  std::size_t count_ = 0;
  std::vector<char> buffer_;
  std::deque<std::string> strings_;  // storage of written strings (stable addresses)
  bool hdf5_strings_ = false;        // string cells point to memory HDF5 allocated
};

class Table {
 public:
  // `what` prefixes error messages, e.g. "records file 'x.h5'".
  static Table create(hid_t parent, const std::string& name, const Rows& layout,
                      std::uint64_t chunk_rows, const std::string& what);
  static Table open(hid_t parent, const std::string& name, const std::string& what);

  const std::string& name() const { return name_; }
  std::uint64_t committed() const;  // value of the `committed_rows` attribute
  std::uint64_t extent() const;     // rows in the dataset, committed or not
  // Columns stored in the file, with their types mapped to ours (unknown types are skipped).
  std::vector<Column> file_columns() const;

  // Writes `rows` at row `first`, extending the dataset to first + rows.size().
  void write(std::uint64_t first, const Rows& rows);
  // Sets `committed_rows`.
  void commit(std::uint64_t rows);
  // Shrinks or grows the dataset to `rows` (drops rows of an append that never committed).
  void set_extent(std::uint64_t rows);
  // Reads rows [0, n) into `rows` (resized to n); columns of `rows` missing from the file keep
  // their defaults (NaN, 0, empty). A string column must be of the kind and width the file
  // stores (take them from file_columns()); HDF5 would otherwise convert, and cut long values.
  void read(std::uint64_t n, Rows& rows) const;

 private:
  Table(h5::Id dataset, std::string name, std::string what);
  std::string where(const std::string& action) const;

  h5::Id dataset_;
  std::string name_;
  std::string what_;
};

}  // namespace scaletune::store
