// CSV parsing for fit inputs.
#include "scaling/table.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace scaletune::scaling {

namespace {

// Splits one record; `pos` advances past it (quoted fields may span lines).
std::vector<std::string> parse_record(const std::string& text, std::size_t& pos) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  while (pos < text.size()) {
    const char c = text[pos++];
    if (quoted) {
      if (c == '"') {
        if (pos < text.size() && text[pos] == '"') {
          field += '"';
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
      break;
    } else {
      field += c;
    }
  }
  fields.push_back(field);
  return fields;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

Table Table::read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TableError("cannot read CSV file '" + path + "': check the path");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_csv(ss.str(), path);
}

Table Table::parse_csv(const std::string& text, const std::string& name) {
  Table t;
  t.name_ = name;
  std::size_t pos = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;  // UTF-8 byte-order mark
  if (pos >= text.size()) throw TableError(name + ": empty CSV file (needs a header row)");
  for (auto& h : parse_record(text, pos)) t.header_.push_back(trim(h));
  std::size_t line = 1;
  while (pos < text.size()) {
    ++line;
    auto record = parse_record(text, pos);
    if (record.size() == 1 && trim(record[0]).empty()) continue;  // blank line
    if (record.size() != t.header_.size()) {
      throw TableError(name + ":" + std::to_string(line) + ": " + std::to_string(record.size()) +
                       " fields, but the header has " + std::to_string(t.header_.size()));
    }
    t.cells_.push_back(std::move(record));
  }
  return t;
}

bool Table::has_column(const std::string& column) const {
  for (const auto& h : header_)
    if (h == column) return true;
  return false;
}

std::size_t Table::column(const std::string& column) const {
  for (std::size_t i = 0; i < header_.size(); ++i)
    if (header_[i] == column) return i;
  std::string list;
  for (const auto& h : header_) list += (list.empty() ? "'" : ", '") + h + "'";
  throw TableError(name_ + ": no column '" + column + "' (columns: " + list + ")");
}

std::vector<double> Table::numbers(const std::string& name) const {
  const std::size_t c = column(name);
  std::vector<double> out;
  out.reserve(cells_.size());
  for (std::size_t r = 0; r < cells_.size(); ++r) {
    const std::string cell = trim(cells_[r][c]);
    if (cell.empty()) {
      out.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(cell.c_str(), &end);
    if (end == cell.c_str() || *end != '\0') {
      throw TableError(name_ + ": row " + std::to_string(r + 2) + ", column '" + name +
                       "': expected a number, got '" + cell + "'");
    }
    out.push_back(v);
  }
  return out;
}

std::vector<std::string> Table::strings(const std::string& name) const {
  const std::size_t c = column(name);
  std::vector<std::string> out;
  for (const auto& row : cells_) out.push_back(trim(row[c]));
  return out;
}

}  // namespace scaletune::scaling
