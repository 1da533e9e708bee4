// Batch-script templates: text with `{{name}}` placeholders, rendered from a map of values.
//
// Syntax (docs/slurm.md lists every placeholder the templates in slurm/ use):
//   {{name}}      replaced by the value of `name`; an unknown name is an error naming the line
//   {{?name}}     at the start of a line: keep the rest of the line only when `name` is set
//                 (neither empty nor "0"), e.g. `{{?partition}}#SBATCH --partition={{partition}}`
// Nothing else is special, so shell code (`${VAR}`, `$(...)`, `{`) passes through unchanged.
// Rendering is strict on purpose: a typo in a user's template must fail at submission time on
// the login node, not as a broken script hours later on a compute node.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

namespace scaletune::slurm {

// A template that cannot be rendered. The message names the template, the line and what to do.
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Values = std::map<std::string, std::string>;

// Renders `text`. `name` (a file path or "built-in allocation template") is used in errors.
// Throws TemplateError for an unknown placeholder (suggesting the nearest known one), an
// unterminated `{{`, a malformed name, or `{{?name}}` anywhere but at the start of a line.
std::string render_template(const std::string& text, const Values& values, const std::string& name);

}  // namespace scaletune::slurm
