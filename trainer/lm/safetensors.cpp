#include "trainer/lm/safetensors.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace scaletune::trainer::lm {

static_assert(sizeof(float) == 4, "float32 is 4 bytes");

namespace {
bool little_endian() {
  const std::uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}
}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, FloatTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  if (!little_endian()) throw std::runtime_error("safetensors export needs a little-endian host");
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    if (static_cast<std::size_t>(n) != t.values.size())
      throw std::runtime_error("tensor " + name + " has a shape that does not match its values");
    const std::uint64_t bytes = 4 * t.values.size();
    header[name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    const std::uint64_t length = text.size();
    out.write(reinterpret_cast<const char*>(&length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors)
      out.write(reinterpret_cast<const char*>(t.values.data()),
                static_cast<std::streamsize>(4 * t.values.size()));
    if (!out) throw std::runtime_error("failed writing " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

std::map<std::string, FloatTensor> read_safetensors(const std::string& path,
                                                    std::map<std::string, std::string>* metadata) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::uint64_t length = 0;
  in.read(reinterpret_cast<char*>(&length), 8);
  if (!in || length > (1u << 30)) throw std::runtime_error(path + " is not a safetensors file");
  std::string text(length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(length));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": bad safetensors header: " + e.what());
  }
  const std::streamoff data_start = static_cast<std::streamoff>(8 + length);
  std::map<std::string, FloatTensor> out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata)
        for (const auto& [k, v] : entry.items()) (*metadata)[k] = v.get<std::string>();
      continue;
    }
    if (entry.value("dtype", "") != "F32")
      throw std::runtime_error(path + ": tensor " + name + " is not F32");
    FloatTensor t;
    t.shape = entry.at("shape").get<std::vector<std::int64_t>>();
    const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
    t.values.resize((offsets.at(1) - offsets.at(0)) / 4);
    in.seekg(data_start + static_cast<std::streamoff>(offsets[0]));
    in.read(reinterpret_cast<char*>(t.values.data()),
            static_cast<std::streamsize>(4 * t.values.size()));
    if (!in) throw std::runtime_error(path + ": tensor " + name + " is truncated");
    out[name] = std::move(t);
  }
  return out;
}

}  // namespace scaletune::trainer::lm
