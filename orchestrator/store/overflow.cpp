// Long string values of /trials (orchestrator/store/overflow.h).
#include "orchestrator/store/overflow.h"

#include <charconv>
#include <cstdint>

#include "orchestrator/store/records.h"

namespace scaletune::store {
namespace {

constexpr const char* kName = "overflow";
// 16 KiB chunks: the chunk index (istore_k 8192, records.cpp) then first splits a node at 256 MiB
// of long values, and a one-value append rewrites at most two small chunks.
constexpr hsize_t kChunkBytes = 16384;

}  // namespace

std::string overflow_marker(std::uint64_t offset, std::uint64_t length) {
  return std::string(kOverflowPrefix) + std::to_string(offset) + ":" + std::to_string(length);
}

bool needs_overflow(const std::string& value, std::size_t width) {
  return value.size() > width || value.rfind(kOverflowPrefix, 0) == 0;
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_overflow_marker(
    const std::string& cell, const std::string& where) {
  const std::size_t prefix = std::char_traits<char>::length(kOverflowPrefix);
  if (cell.compare(0, prefix, kOverflowPrefix) != 0) return std::nullopt;
  std::uint64_t offset = 0, length = 0;
  const char* end = cell.data() + cell.size();
  auto a = std::from_chars(cell.data() + prefix, end, offset);
  bool ok = a.ec == std::errc() && a.ptr != end && *a.ptr == ':';
  if (ok) {
    auto b = std::from_chars(a.ptr + 1, end, length);
    ok = b.ec == std::errc() && b.ptr == end && offset <= UINT64_MAX - length;
  }
  if (!ok) throw StoreError(where + ": malformed /overflow marker '" + cell + "'");
  return std::make_pair(offset, length);
}

Overflow Overflow::create(hid_t parent, const std::string& what) {
  const std::string where = what + ": cannot create /" + kName;
  const hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = kChunkBytes;
  h5::Id space(h5::check_id(H5Screate_simple(1, &zero, &unlimited), where));
  h5::Id dcpl(h5::check_id(H5Pcreate(H5P_DATASET_CREATE), where));
  h5::check(H5Pset_chunk(dcpl.get(), 1, &chunk), where);
  // Chunks get file space when the extent grows, not when first written (overflow.h), and no
  // fill value is written: bytes not written yet are never read.
  h5::check(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), where);
  h5::check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), where);
  // Uncompressed, like the tables: a chunk is rewritten in place, earlier bytes unchanged.
  h5::Id dataset(h5::check_id(
      H5Dcreate2(parent, kName, H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      where));
  return Overflow(std::move(dataset), what);
}

std::optional<Overflow> Overflow::open(hid_t parent, const std::string& what) {
  const std::string where = what + ": cannot open /" + kName;
  if (h5::check_tri(H5Lexists(parent, kName, H5P_DEFAULT), where) <= 0) return std::nullopt;
  return Overflow(h5::Id(h5::check_id(H5Dopen2(parent, kName, H5P_DEFAULT), where)), what);
}

std::uint64_t Overflow::size() const {
  const std::string where = what_ + ": cannot read /" + kName;
  h5::Id space(h5::check_id(H5Dget_space(dataset_.get()), where));
  hsize_t n = 0;
  h5::check(H5Sget_simple_extent_dims(space.get(), &n, nullptr), where);
  return n;
}

void Overflow::write(std::uint64_t offset, const std::string& bytes) {
  if (bytes.empty()) return;
  const std::string where = what_ + ": cannot append to /" + kName;
  const hsize_t end = offset + bytes.size();
  // One chunk at a time, each flushed before the next (overflow.h): a torn node write then
  // hides at most the chunk that was last, and that one holds no committed byte.
  for (hsize_t n = size(); end + kChunkBytes > n; n += kChunkBytes) {
    const hsize_t grown = n + kChunkBytes;
    h5::check(H5Dset_extent(dataset_.get(), &grown), where);
    h5::check(H5Fflush(dataset_.get(), H5F_SCOPE_LOCAL), where);
  }
  const h5::Range range = h5::select_range(dataset_.get(), offset, bytes.size(), where);
  h5::check(H5Dwrite(dataset_.get(), H5T_NATIVE_UCHAR, range.memory.get(), range.file.get(),
                     H5P_DEFAULT, bytes.data()),
            where);
}

std::string Overflow::read(std::uint64_t n) const {
  const std::string where = what_ + ": cannot read /" + kName;
  std::string bytes(n, '\0');
  if (n == 0) return bytes;
  const h5::Range range = h5::select_range(dataset_.get(), 0, n, where);
  h5::check(H5Dread(dataset_.get(), H5T_NATIVE_UCHAR, range.memory.get(), range.file.get(),
                    H5P_DEFAULT, bytes.data()),
            where);
  return bytes;
}

}  // namespace scaletune::store
