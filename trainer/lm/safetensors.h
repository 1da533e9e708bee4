// The safetensors file format (Hugging Face): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw
// little-endian tensor bytes. Only float32 tensors, which is what the trainer exports.
//
// Torch-free, so tests and tools can read exports without LibTorch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace scaletune::trainer::lm {

struct FloatTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major
};

// Writes atomically (temporary file + rename). Throws std::runtime_error naming the file.
void write_safetensors(const std::string& path, const std::map<std::string, FloatTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Throws std::runtime_error when the file is not a float32 safetensors file.
std::map<std::string, FloatTensor> read_safetensors(
    const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace scaletune::trainer::lm
