// A small CSV reader for `scaletune fit --csv`: a header row, comma-separated fields, RFC 4180
// double quotes. Columns are looked up by their header text ("Model Size", "Training FLOP").
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace scaletune::scaling {

// A CSV file that cannot be read or a column that does not exist; the message names the file,
// the line or the column and what to do.
class TableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Table {
 public:
  static Table read_csv(const std::string& path);  // throws TableError
  static Table parse_csv(const std::string& text, const std::string& name);

  const std::vector<std::string>& header() const { return header_; }
  std::size_t rows() const { return cells_.size(); }
  bool has_column(const std::string& column) const;
  // Index of `column`; throws TableError listing the columns there are.
  std::size_t column(const std::string& column) const;
  // The column as numbers; an empty cell is NaN, any other non-number throws naming line/column.
  std::vector<double> numbers(const std::string& column) const;
  std::vector<std::string> strings(const std::string& column) const;

 private:
  std::string name_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> cells_;
};

}  // namespace scaletune::scaling
