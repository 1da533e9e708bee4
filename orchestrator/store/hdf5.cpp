// Checked HDF5 calls and owners (orchestrator/store/hdf5.h).
#include "orchestrator/store/hdf5.h"

#include <cstring>

#include "orchestrator/store/records.h"

namespace scaletune::store::h5 {

std::unique_lock<std::recursive_mutex> lock() {
  static std::recursive_mutex mutex;
  static std::once_flag silenced;
  std::unique_lock<std::recursive_mutex> guard(mutex);
  // HDF5 prints every error stack to stderr by default; our callers get a StoreError instead.
  std::call_once(silenced, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
  return guard;
}

namespace {

herr_t collect_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* messages = static_cast<std::vector<std::string>*>(data);
  if (err->desc != nullptr && err->desc[0] != '\0') messages->emplace_back(err->desc);
  return 0;
}

}  // namespace

std::string error_text() {
  std::vector<std::string> messages;  // outermost (the API call) first
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &messages);
  if (messages.empty()) return "HDF5 reported an error without a message";
  // The innermost messages say what actually went wrong ("truncated file ..."); the outer ones
  // repeat "unable to open file" at each level.
  std::string text = messages.back();
  if (messages.size() >= 2 && messages[messages.size() - 2] != text) {
    text = messages[messages.size() - 2] + ": " + text;
  }
  return text;
}

Id& Id::operator=(Id&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

bool Id::reset() {
  if (id_ < 0) return true;
  auto guard = lock();
  herr_t status = -1;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      status = H5Fclose(id_);
      break;
    case H5I_GROUP:
      status = H5Gclose(id_);
      break;
    case H5I_DATASET:
      status = H5Dclose(id_);
      break;
    case H5I_ATTR:
      status = H5Aclose(id_);
      break;
    case H5I_DATASPACE:
      status = H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      status = H5Tclose(id_);
      break;
    case H5I_GENPROP_LST:
      status = H5Pclose(id_);
      break;
    default:
      status = H5Idec_ref(id_) < 0 ? -1 : 0;
      break;
  }
  id_ = H5I_INVALID_HID;
  return status >= 0;
}

hid_t check_id(hid_t id, const std::string& what) {
  if (id < 0) throw StoreError(what + ": " + error_text());
  return id;
}

herr_t check(herr_t status, const std::string& what) {
  if (status < 0) throw StoreError(what + ": " + error_text());
  return status;
}

htri_t check_tri(htri_t value, const std::string& what) {
  if (value < 0) throw StoreError(what + ": " + error_text());
  return value;
}

Id string_type() {
  Id type(check_id(H5Tcopy(H5T_C_S1), "HDF5 string type"));
  check(H5Tset_size(type.get(), H5T_VARIABLE), "HDF5 string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "HDF5 string type");
  return type;
}

Id fixed_string_type(std::size_t width) {
  Id type(check_id(H5Tcopy(H5T_C_S1), "HDF5 string type"));
  check(H5Tset_size(type.get(), width), "HDF5 string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "HDF5 string type");
  check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "HDF5 string type");
  return type;
}

Range select_range(hid_t dataset, hsize_t start, hsize_t count, const std::string& what) {
  Id file(check_id(H5Dget_space(dataset), what));
  check(H5Sselect_hyperslab(file.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr), what);
  Id memory(check_id(H5Screate_simple(1, &count, nullptr), what));
  return Range{std::move(file), std::move(memory)};
}

bool has_attribute(hid_t object, const char* name, const std::string& what) {
  return check_tri(H5Aexists(object, name), what + " (attribute '" + name + "')") > 0;
}

namespace {

void write_attribute_raw(hid_t object, const char* name, hid_t file_type, hid_t memory_type,
                         hid_t space, const void* data, const std::string& what) {
  const std::string where = what + " (attribute '" + name + "')";
  Id attr(check_id(H5Acreate2(object, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), where));
  if (data != nullptr) check(H5Awrite(attr.get(), memory_type, data), where);
}

Id open_attribute(hid_t object, const char* name, const std::string& what) {
  return Id(check_id(H5Aopen(object, name, H5P_DEFAULT), what + " (attribute '" + name + "')"));
}

}  // namespace

void write_attribute(hid_t object, const char* name, const std::string& value,
                     const std::string& what) {
  Id type = string_type();
  Id space(check_id(H5Screate(H5S_SCALAR), what));
  const char* data = value.c_str();
  write_attribute_raw(object, name, type.get(), type.get(), space.get(), &data, what);
}

void write_attribute(hid_t object, const char* name, std::int64_t value, const std::string& what) {
  Id space(check_id(H5Screate(H5S_SCALAR), what));
  write_attribute_raw(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value, what);
}

void write_attribute(hid_t object, const char* name, double value, const std::string& what) {
  Id space(check_id(H5Screate(H5S_SCALAR), what));
  write_attribute_raw(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value, what);
}

void write_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                     const std::string& what) {
  Id type = string_type();
  const hsize_t n = values.size();
  // An empty list is a zero-length 1-D array, which h5py reads as an empty array.
  Id space(check_id(H5Screate_simple(1, &n, nullptr), what));
  std::vector<const char*> data;
  for (const auto& v : values) data.push_back(v.c_str());
  write_attribute_raw(object, name, type.get(), type.get(), space.get(),
                      data.empty() ? nullptr : data.data(), what);
}

void overwrite_attribute(hid_t object, const char* name, std::int64_t value,
                         const std::string& what) {
  Id attr = open_attribute(object, name, what);
  check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), what + " (attribute '" + name + "')");
}

namespace {

// Reads `count` strings of an attribute or dataset whose file type is a string, fixed-length or
// variable-length (files of other tools use either).
template <typename ReadFn>
std::vector<std::string> read_strings(hid_t file_type, std::size_t count, ReadFn read,
                                      const std::string& where) {
  if (H5Tget_class(file_type) != H5T_STRING) throw StoreError(where + ": not a string");
  std::vector<std::string> out;
  const htri_t variable = check_tri(H5Tis_variable_str(file_type), where);
  if (variable > 0) {
    Id type = string_type();
    std::vector<char*> data(count, nullptr);
    check(read(type.get(), data.data()), where);
    for (char* s : data) {
      out.emplace_back(s ? s : "");
      H5free_memory(s);
    }
  } else {
    const std::size_t size = H5Tget_size(file_type);
    Id type(check_id(H5Tcopy(H5T_C_S1), where));
    check(H5Tset_size(type.get(), size), where);
    std::vector<char> data(count * size + 1, '\0');
    check(read(type.get(), data.data()), where);
    for (std::size_t i = 0; i < count; ++i) {
      const char* s = data.data() + i * size;
      out.emplace_back(s, strnlen(s, size));
    }
  }
  return out;
}

std::size_t element_count(hid_t space, const std::string& where) {
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) throw StoreError(where + ": " + error_text());
  return static_cast<std::size_t>(n);
}

}  // namespace

std::vector<std::string> read_strings_attribute(hid_t object, const char* name,
                                                const std::string& what) {
  const std::string where = what + " (attribute '" + name + "')";
  Id attr = open_attribute(object, name, what);
  Id type(check_id(H5Aget_type(attr.get()), where));
  Id space(check_id(H5Aget_space(attr.get()), where));
  const std::size_t n = element_count(space.get(), where);
  if (n == 0) return {};
  return read_strings(
      type.get(), n, [&](hid_t mem, void* buf) { return H5Aread(attr.get(), mem, buf); }, where);
}

std::string read_string_attribute(hid_t object, const char* name, const std::string& what) {
  auto values = read_strings_attribute(object, name, what);
  if (values.size() != 1) {
    throw StoreError(what + " (attribute '" + name + "'): expected one string, found " +
                     std::to_string(values.size()));
  }
  return values.front();
}

std::int64_t read_int_attribute(hid_t object, const char* name, const std::string& what) {
  Id attr = open_attribute(object, name, what);
  const std::string where = what + " (attribute '" + name + "')";
  Id type(check_id(H5Aget_type(attr.get()), where));
  if (H5Tget_class(type.get()) != H5T_INTEGER) throw StoreError(where + ": not an integer");
  std::int64_t value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), where);
  return value;
}

double read_double_attribute(hid_t object, const char* name, const std::string& what) {
  Id attr = open_attribute(object, name, what);
  const std::string where = what + " (attribute '" + name + "')";
  double value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value), where);
  return value;
}

void write_string_dataset(hid_t parent, const char* name, const std::string& value,
                          const std::string& what) {
  const std::string where = what + " (dataset '" + name + "')";
  Id type = string_type();
  Id space(check_id(H5Screate(H5S_SCALAR), where));
  Id dataset(check_id(
      H5Dcreate2(parent, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      where));
  const char* data = value.c_str();
  check(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &data), where);
}

std::string read_string_dataset(hid_t parent, const char* name, const std::string& what) {
  const std::string where = what + " (dataset '" + name + "')";
  Id dataset(check_id(H5Dopen2(parent, name, H5P_DEFAULT), where));
  Id type(check_id(H5Dget_type(dataset.get()), where));
  Id space(check_id(H5Dget_space(dataset.get()), where));
  if (element_count(space.get(), where) != 1) throw StoreError(where + ": expected one string");
  auto values = read_strings(
      type.get(), 1,
      [&](hid_t mem, void* buf) {
        return H5Dread(dataset.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      },
      where);
  return values.front();
}

}  // namespace scaletune::store::h5
