// Append-only HDF5 tables (orchestrator/store/table.h).
#include "orchestrator/store/table.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>

#include "orchestrator/store/records.h"

namespace scaletune::store {
namespace {

constexpr const char* kCommittedRows = "committed_rows";
// Written for string cells that hold no text, so HDF5 never sees a null pointer.
const char kEmpty[] = "";

std::size_t cell_size(const Column& column) {
  switch (column.type) {
    case ColumnType::kInt64:
      return sizeof(std::int64_t);
    case ColumnType::kInt32:
      return sizeof(std::int32_t);
    case ColumnType::kFloat64:
      return sizeof(double);
    case ColumnType::kString:
      return sizeof(char*);
    case ColumnType::kFixedString:
      return column.width;
  }
  return 0;
}

// The HDF5 type of a string column (the same in memory and in files).
h5::Id string_member(const Column& column) {
  return column.type == ColumnType::kString ? h5::string_type()
                                            : h5::fixed_string_type(column.width);
}

}  // namespace

bool is_string(ColumnType type) {
  return type == ColumnType::kString || type == ColumnType::kFixedString;
}

Rows::Rows(std::vector<Column> columns) : columns_(std::move(columns)) {
  for (const auto& c : columns_) {
    offsets_.push_back(row_size_);
    row_size_ += cell_size(c);
  }
}

Rows::~Rows() { release_hdf5_strings(); }

int Rows::find(const std::string& name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

void Rows::release_hdf5_strings() {
  if (!hdf5_strings_) return;
  for (std::size_t r = 0; r < count_; ++r) {
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      if (columns_[c].type != ColumnType::kString) continue;
      char* p = nullptr;
      std::memcpy(&p, cell(r, static_cast<int>(c)), sizeof p);
      if (p != nullptr && p != kEmpty) H5free_memory(p);
    }
  }
  hdf5_strings_ = false;
}

void Rows::resize(std::size_t n) {
  release_hdf5_strings();
  strings_.clear();
  count_ = n;
  buffer_.assign(n * row_size_, 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const char* empty = kEmpty;
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      if (columns_[c].type == ColumnType::kFloat64) {
        std::memcpy(cell(r, static_cast<int>(c)), &nan, sizeof nan);
      } else if (columns_[c].type == ColumnType::kString) {
        std::memcpy(cell(r, static_cast<int>(c)), &empty, sizeof empty);
      }
    }
  }
}

void Rows::set(std::size_t row, int column, std::int64_t value) {
  assert(row < count_ && column >= 0);
  if (columns_[column].type == ColumnType::kInt32) {
    const auto v = static_cast<std::int32_t>(value);
    std::memcpy(cell(row, column), &v, sizeof v);
  } else {
    assert(columns_[column].type == ColumnType::kInt64);
    std::memcpy(cell(row, column), &value, sizeof value);
  }
}

void Rows::set(std::size_t row, int column, double value) {
  assert(row < count_ && column >= 0 && columns_[column].type == ColumnType::kFloat64);
  std::memcpy(cell(row, column), &value, sizeof value);
}

void Rows::set(std::size_t row, int column, const std::string& value) {
  assert(row < count_ && column >= 0 && is_string(columns_[column].type));
  const Column& c = columns_[column];
  if (c.type == ColumnType::kFixedString) {
    if (value.size() > c.width) {
      throw StoreError("column '" + c.name + "' holds " + std::to_string(c.width) +
                       " bytes, a value of " + std::to_string(value.size()) +
                       " does not fit (records.cpp moves such values to /overflow)");
    }
    char* p = cell(row, column);
    std::memcpy(p, value.data(), value.size());
    std::memset(p + value.size(), 0, c.width - value.size());
    return;
  }
  assert(!hdf5_strings_);
  strings_.push_back(value);
  const char* p = strings_.back().c_str();
  std::memcpy(cell(row, column), &p, sizeof p);
}

std::int64_t Rows::get_int(std::size_t row, int column) const {
  assert(row < count_ && column >= 0);
  if (columns_[column].type == ColumnType::kInt32) {
    std::int32_t v = 0;
    std::memcpy(&v, cell(row, column), sizeof v);
    return v;
  }
  std::int64_t v = 0;
  std::memcpy(&v, cell(row, column), sizeof v);
  return v;
}

double Rows::get_double(std::size_t row, int column) const {
  assert(row < count_ && column >= 0 && columns_[column].type == ColumnType::kFloat64);
  double v = 0;
  std::memcpy(&v, cell(row, column), sizeof v);
  return v;
}

std::string Rows::get_string(std::size_t row, int column) const {
  assert(row < count_ && column >= 0 && is_string(columns_[column].type));
  if (columns_[column].type == ColumnType::kFixedString) {
    const char* p = cell(row, column);
    return std::string(p, strnlen(p, columns_[column].width));  // NUL padding is not text
  }
  const char* p = nullptr;
  std::memcpy(&p, cell(row, column), sizeof p);
  return p ? std::string(p) : std::string();
}

namespace {

h5::Id compound(const std::vector<Column>& columns, const std::vector<std::size_t>& offsets,
                std::size_t size, bool file) {
  const std::string what = "HDF5 compound type";
  h5::Id type(h5::check_id(H5Tcreate(H5T_COMPOUND, size), what));
  for (std::size_t i = 0; i < columns.size(); ++i) {
    hid_t member = -1;
    h5::Id str;  // H5Tinsert copies the member type
    switch (columns[i].type) {
      case ColumnType::kInt64:
        member = file ? H5T_STD_I64LE : H5T_NATIVE_INT64;
        break;
      case ColumnType::kInt32:
        member = file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
        break;
      case ColumnType::kFloat64:
        member = file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
        break;
      case ColumnType::kString:
      case ColumnType::kFixedString:
        str = string_member(columns[i]);
        member = str.get();
        break;
    }
    h5::check(H5Tinsert(type.get(), columns[i].name.c_str(), offsets[i], member),
              what + " (column '" + columns[i].name + "')");
  }
  return type;
}

}  // namespace

h5::Id Rows::memory_type() const { return compound(columns_, offsets_, row_size_, false); }

h5::Id Rows::file_type() const {
  // Same layout as in memory: on x86-64 and aarch64 the native types are the little-endian ones,
  // and the layout is packed either way.
  return compound(columns_, offsets_, row_size_, true);
}

Table::Table(h5::Id dataset, std::string name, std::string what)
    : dataset_(std::move(dataset)), name_(std::move(name)), what_(std::move(what)) {}

std::string Table::where(const std::string& action) const {
  return what_ + ": cannot " + action + " /" + name_;
}

Table Table::create(hid_t parent, const std::string& name, const Rows& layout,
                    std::uint64_t chunk_rows, const std::string& what) {
  const std::string where = what + ": cannot create /" + name;
  h5::Id type = layout.file_type();
  const hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = chunk_rows;
  h5::Id space(h5::check_id(H5Screate_simple(1, &zero, &unlimited), where));
  h5::Id dcpl(h5::check_id(H5Pcreate(H5P_DATASET_CREATE), where));
  h5::check(H5Pset_chunk(dcpl.get(), 1, &chunk), where);
  // No compression: chunks are then rewritten in place, so rows a reader is reading never move.
  h5::Id dataset(h5::check_id(H5Dcreate2(parent, name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                         dcpl.get(), H5P_DEFAULT),
                              where));
  h5::write_attribute(dataset.get(), kCommittedRows, std::int64_t{0}, where);
  return Table(std::move(dataset), name, what);
}

Table Table::open(hid_t parent, const std::string& name, const std::string& what) {
  const std::string where = what + ": cannot open /" + name;
  const htri_t exists = H5Lexists(parent, name.c_str(), H5P_DEFAULT);
  if (exists <= 0) throw StoreError(what + ": the table /" + name + " is missing");
  h5::Id dataset(h5::check_id(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), where));
  h5::Id type(h5::check_id(H5Dget_type(dataset.get()), where));
  if (H5Tget_class(type.get()) != H5T_COMPOUND) {
    throw StoreError(what + ": /" + name + " is not a table (compound dataset)");
  }
  if (!h5::has_attribute(dataset.get(), kCommittedRows, where)) {
    throw StoreError(what + ": /" + name + " has no '" + kCommittedRows + "' attribute");
  }
  return Table(std::move(dataset), name, what);
}

std::uint64_t Table::committed() const {
  const auto n = h5::read_int_attribute(dataset_.get(), kCommittedRows, where("read"));
  if (n < 0) throw StoreError(where("read") + ": negative " + kCommittedRows);
  return static_cast<std::uint64_t>(n);
}

std::uint64_t Table::extent() const {
  h5::Id space(h5::check_id(H5Dget_space(dataset_.get()), where("read")));
  hsize_t dims = 0;
  if (H5Sget_simple_extent_ndims(space.get()) != 1) {
    throw StoreError(what_ + ": /" + name_ + " is not one-dimensional");
  }
  h5::check(H5Sget_simple_extent_dims(space.get(), &dims, nullptr), where("read"));
  return dims;
}

std::vector<Column> Table::file_columns() const {
  h5::Id type(h5::check_id(H5Dget_type(dataset_.get()), where("read")));
  const int n = H5Tget_nmembers(type.get());
  std::vector<Column> columns;
  for (int i = 0; i < n; ++i) {
    char* name = H5Tget_member_name(type.get(), static_cast<unsigned>(i));
    if (name == nullptr) continue;
    Column c{name, ColumnType::kFloat64};
    H5free_memory(name);
    h5::Id member(
        h5::check_id(H5Tget_member_type(type.get(), static_cast<unsigned>(i)), where("read")));
    switch (H5Tget_class(member.get())) {
      case H5T_INTEGER:
        c.type = H5Tget_size(member.get()) == 8 ? ColumnType::kInt64 : ColumnType::kInt32;
        break;
      case H5T_FLOAT:
        c.type = ColumnType::kFloat64;
        break;
      case H5T_STRING:
        if (h5::check_tri(H5Tis_variable_str(member.get()), where("read")) > 0) {
          c.type = ColumnType::kString;
        } else {
          c.type = ColumnType::kFixedString;
          c.width = H5Tget_size(member.get());
        }
        break;
      default:
        continue;
    }
    columns.push_back(c);
  }
  return columns;
}

void Table::write(std::uint64_t first, const Rows& rows) {
  if (rows.size() == 0) return;
  const std::string where = this->where("append to");
  const hsize_t end = first + rows.size();
  h5::check(H5Dset_extent(dataset_.get(), &end), where);
  const h5::Range range = h5::select_range(dataset_.get(), first, rows.size(), where);
  h5::Id type = rows.memory_type();
  // HDF5's default 1 MiB conversion buffer is allocated (and zeroed) on every write with strings;
  // a buffer sized to the rows makes a one-row append several times cheaper.
  h5::Id dxpl(h5::check_id(H5Pcreate(H5P_DATASET_XFER), where));
  const std::size_t bytes = std::max<std::size_t>(rows.size() * rows.row_size_, 4096);
  h5::check(H5Pset_buffer(dxpl.get(), std::min<std::size_t>(bytes, 1 << 20), nullptr, nullptr),
            where);
  h5::check(H5Dwrite(dataset_.get(), type.get(), range.memory.get(), range.file.get(), dxpl.get(),
                     rows.data()),
            where);
}

void Table::commit(std::uint64_t rows) {
  h5::overwrite_attribute(dataset_.get(), kCommittedRows, static_cast<std::int64_t>(rows),
                          where("commit rows of"));
}

void Table::set_extent(std::uint64_t rows) {
  const hsize_t n = rows;
  h5::check(H5Dset_extent(dataset_.get(), &n), where("resize"));
}

void Table::read(std::uint64_t n, Rows& rows) const {
  const std::string where = this->where("read");
  rows.resize(n);
  if (n == 0) return;
  // The memory type holds only the columns the file has; the others keep their defaults. (HDF5
  // leaves destination members without a source member undefined without a background buffer.)
  h5::Id file_type(h5::check_id(H5Dget_type(dataset_.get()), where));
  h5::Id type(h5::check_id(H5Tcreate(H5T_COMPOUND, rows.row_size_), where));
  std::vector<Column> stored = file_columns();
  for (std::size_t i = 0; i < rows.columns_.size(); ++i) {
    const auto& c = rows.columns_[i];
    auto in_file = std::find_if(stored.begin(), stored.end(),
                                [&](const Column& f) { return f.name == c.name; });
    if (in_file == stored.end()) continue;
    if (is_string(c.type) && (in_file->type != c.type || in_file->width != c.width)) {
      throw StoreError(where + ": column '" + c.name + "' is stored as a " +
                       (in_file->type == ColumnType::kString
                            ? std::string("variable-length string")
                            : std::to_string(in_file->width) + "-byte string") +
                       ", not as the layout read expects");
    }
    h5::Id str;
    hid_t member = c.type == ColumnType::kInt64     ? H5T_NATIVE_INT64
                   : c.type == ColumnType::kInt32   ? H5T_NATIVE_INT32
                   : c.type == ColumnType::kFloat64 ? H5T_NATIVE_DOUBLE
                                                    : (str = string_member(c)).get();
    h5::check(H5Tinsert(type.get(), c.name.c_str(), rows.offsets_[i], member),
              where + " (column '" + c.name + "')");
  }
  const h5::Range range = h5::select_range(dataset_.get(), 0, n, where);
  // From here on variable-length string cells of the file's columns point to memory HDF5
  // allocates.
  for (std::size_t i = 0; i < rows.columns_.size(); ++i) {
    if (rows.columns_[i].type != ColumnType::kString) continue;
    if (H5Tget_member_index(file_type.get(), rows.columns_[i].name.c_str()) < 0) continue;
    for (std::size_t r = 0; r < n; ++r) {
      char* null = nullptr;
      std::memcpy(rows.cell(r, static_cast<int>(i)), &null, sizeof null);
    }
  }
  rows.hdf5_strings_ = true;
  h5::check(H5Dread(dataset_.get(), type.get(), range.memory.get(), range.file.get(), H5P_DEFAULT,
                    rows.data()),
            where);
}

}  // namespace scaletune::store
