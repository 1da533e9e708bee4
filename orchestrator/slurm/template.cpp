// Placeholder substitution for batch-script templates (template.h).
#include "orchestrator/slurm/template.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace scaletune::slurm {
namespace {

bool valid_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::islower(c) || std::isdigit(c) || c == '_';
  });
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string unknown_message(const std::string& key, const Values& values) {
  std::string best;
  std::size_t best_distance = 3;  // suggest only near misses
  for (const auto& [known, value] : values) {
    const std::size_t d = edit_distance(key, known);
    if (d < best_distance) best_distance = d, best = known;
  }
  std::string message = "unknown placeholder {{" + key + "}}";
  if (!best.empty()) message += "; did you mean {{" + best + "}}?";
  message += " (known:";
  for (const auto& [known, value] : values) message += " " + known;
  return message + ")";
}

bool is_set(const std::string& value) { return !value.empty() && value != "0"; }

}  // namespace

std::string render_template(const std::string& text, const Values& values,
                            const std::string& name) {
  std::string out;
  out.reserve(text.size() * 2);
  std::size_t line_start = 0;
  int line_number = 0;
  while (line_start < text.size()) {
    ++line_number;
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = text.size();
    const std::string line = text.substr(line_start, line_end - line_start);
    const std::string where = name + ":" + std::to_string(line_number) + ": ";
    auto fail = [&](const std::string& what) { throw TemplateError(where + what); };

    std::string rendered;
    bool keep = true;
    std::size_t pos = 0;
    while (pos < line.size()) {
      const std::size_t open = line.find("{{", pos);
      if (open == std::string::npos) {
        rendered += line.substr(pos);
        break;
      }
      rendered += line.substr(pos, open - pos);
      const std::size_t close = line.find("}}", open + 2);
      if (close == std::string::npos) fail("unterminated '{{' (placeholders look like {{name}})");
      std::string key = line.substr(open + 2, close - open - 2);
      const bool guard = !key.empty() && key[0] == '?';
      if (guard) {
        key.erase(0, 1);
        if (open != 0)
          fail("{{?" + key + "}} must start the line (it keeps or drops the whole line)");
      }
      if (!valid_name(key))
        fail("bad placeholder '{{" + key + "}}': names are lower-case letters, digits and '_'");
      const auto it = values.find(key);
      if (it == values.end()) fail(unknown_message(key, values));
      if (guard) {
        keep = is_set(it->second);
      } else {
        rendered += it->second;
      }
      pos = close + 2;
    }
    if (keep) {
      out += rendered;
      if (line_end < text.size()) out += '\n';
    }
    line_start = line_end + 1;
  }
  return out;
}

}  // namespace scaletune::slurm
