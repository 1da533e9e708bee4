// Thin, checked access to the HDF5 C API for the records file: a move-only owner for every
// identifier, one wrapper that turns a failed call into a StoreError naming the file and the
// object, and the process-wide lock that serialises calls into the serial HDF5 library.
//
// Internal to orchestrator/store; nothing outside this folder includes it.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace scaletune::store::h5 {

// Serialises all HDF5 calls (the Debian build is not thread-safe) and, on first use, turns off
// HDF5's automatic printing of error stacks: errors reach the user as StoreError messages.
std::unique_lock<std::recursive_mutex> lock();

// The most specific messages of the current HDF5 error stack, e.g. "truncated file: eof = 96".
std::string error_text();

// Owns one HDF5 identifier (file, group, dataset, attribute, dataspace, datatype, property list)
// and closes it with the matching H5*close. Destructors never throw.
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(Id&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Id& operator=(Id&& other) noexcept;
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(); }

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now; returns false when HDF5 reported an error (then error_text() says why).
  bool reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// The one checked wrapper: `what` names the operation and object, e.g.
// "records file 'runs/sweep.h5': cannot append to /trials". Throws StoreError(what + reason).
hid_t check_id(hid_t id, const std::string& what);
herr_t check(herr_t status, const std::string& what);
htri_t check_tri(htri_t value, const std::string& what);

// Small typed helpers used by the schema code. `what` is the prefix of error messages.
Id string_type();  // variable-length UTF-8 string
// Fixed-size UTF-8 string of `width` bytes, padded with NULs (a value of exactly `width` bytes
// has no terminator).
Id fixed_string_type(std::size_t width);
// Elements [start, start + count) of a 1-D dataset: its file space with that range selected and
// a matching memory space, as H5Dread/H5Dwrite take them.
struct Range {
  Id file;
  Id memory;
};
Range select_range(hid_t dataset, hsize_t start, hsize_t count, const std::string& what);
bool has_attribute(hid_t object, const char* name, const std::string& what);
void write_attribute(hid_t object, const char* name, const std::string& value,
                     const std::string& what);
void write_attribute(hid_t object, const char* name, std::int64_t value, const std::string& what);
void write_attribute(hid_t object, const char* name, double value, const std::string& what);
void write_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                     const std::string& what);
// Overwrites an existing integer attribute in place (no new object-header space is needed).
void overwrite_attribute(hid_t object, const char* name, std::int64_t value,
                         const std::string& what);
std::string read_string_attribute(hid_t object, const char* name, const std::string& what);
std::int64_t read_int_attribute(hid_t object, const char* name, const std::string& what);
double read_double_attribute(hid_t object, const char* name, const std::string& what);
std::vector<std::string> read_strings_attribute(hid_t object, const char* name,
                                                const std::string& what);

// A scalar variable-length string dataset (for long texts such as the resolved config).
void write_string_dataset(hid_t parent, const char* name, const std::string& value,
                          const std::string& what);
std::string read_string_dataset(hid_t parent, const char* name, const std::string& what);

}  // namespace scaletune::store::h5
