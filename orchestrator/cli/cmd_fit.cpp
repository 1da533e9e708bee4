// scaletune fit (--csv FILE [--col NAME=COLUMN]... | --records FILE.h5) [--law ...]
//               [--out fit.json] [--report DIR]
//
// Fits scaling laws to finished runs (scaling/fit.h): power laws of every hyper-parameter, N and
// D against compute on the Pareto front and in the near-optimal band, two-variable laws,
// Chinchilla approaches 1-3, with bootstrap intervals and flags. Writes the full fit as JSON
// (docs/scaling.md has the schema) and optionally an HTML report.
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "orchestrator/cli/command.h"
#include "orchestrator/store/records.h"
#include "scaling/fit.h"
#include "scaling/report.h"
#include "scaling/table.h"

namespace scaletune::cli {
namespace {

struct FitCliOptions {
  std::string csv;
  std::string records;
  std::vector<std::string> columns;  // NAME=COLUMN
  std::vector<std::string> laws;
  std::string out;
  std::string report;
  std::string objective;          // records: metric to fit (default: the sweep's objective)
  std::string compute = "flops";  // records: flops | flops_6n | cost
  std::string n_metric;           // records: metric or parameter holding N
  int drop_highest = 0;
  std::vector<double> budgets;
  scaling::FitOptions fit;
};

const std::set<std::string> kLawFamilies = {"power",     "two_variable", "approach1",
                                            "approach2", "approach3",    "approach3_likelihood",
                                            "frontier"};

// --col NAME=COLUMN pairs. Reserved names: C, N, D, loss, run; any other NAME is a
// hyper-parameter fitted against compute.
std::map<std::string, std::string> parse_columns(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> map;
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw UsageError("--col '" + spec +
                       "': expected NAME=COLUMN, e.g. --col N=\"Model Size\" (names: C, N, D, "
                       "loss, run, or any hyper-parameter name)");
    const std::string name = spec.substr(0, eq);
    if (map.count(name)) throw UsageError("--col " + name + " is given twice");
    map[name] = spec.substr(eq + 1);
  }
  return map;
}

scaling::Dataset read_csv_dataset(const FitCliOptions& o) {
  scaling::Table table;
  try {
    table = scaling::Table::read_csv(o.csv);
  } catch (const scaling::TableError& e) {
    throw UsageError(e.what());
  }
  auto map = parse_columns(o.columns);
  // Columns named exactly C, N, D, loss or run map to themselves unless mapped explicitly.
  for (const char* name : {"C", "N", "D", "loss", "run"})
    if (!map.count(name) && table.has_column(name)) map[name] = name;
  if (!map.count("loss"))
    throw UsageError(o.csv + ": no loss column; map one with --col loss=COLUMN");
  if (!map.count("C") && !(map.count("N") && map.count("D")))
    throw UsageError(o.csv +
                     ": needs compute: --col C=COLUMN, or both --col N=... and --col D=...");
  std::map<std::string, std::vector<double>> values;
  std::vector<std::string> run_ids;
  try {
    for (const auto& [name, column] : map) {
      if (name == "run")
        run_ids = table.strings(column);
      else
        values[name] = table.numbers(column);
    }
  } catch (const scaling::TableError& e) {
    throw UsageError(std::string(e.what()) + "; fix the --col mapping");
  }
  const std::size_t rows = table.rows();
  auto get = [&](const std::string& name, std::size_t i) {
    const auto it = values.find(name);
    return it == values.end() ? scaling::kNaN : it->second[i];
  };
  // Rows of one run (same `run` id) are its checkpoints: the curve for Approach 1, the last
  // (largest compute) row its final point.
  std::map<std::string, std::vector<std::size_t>> groups;
  std::vector<std::string> order;
  for (std::size_t i = 0; i < rows; ++i) {
    const std::string id = run_ids.empty() ? std::to_string(i) : run_ids[i];
    if (!groups.count(id)) order.push_back(id);
    groups[id].push_back(i);
  }
  scaling::Dataset data;
  data.source = o.csv;
  for (const auto& id : order) {
    auto rows_of = groups[id];
    auto compute_of = [&](std::size_t i) {
      const double c = get("C", i);
      return std::isfinite(c) ? c : 6 * get("N", i) * get("D", i);
    };
    std::sort(rows_of.begin(), rows_of.end(),
              [&](auto a, auto b) { return compute_of(a) < compute_of(b); });
    const std::size_t last = rows_of.back();
    scaling::Run run;
    run.id = id;
    run.compute = get("C", last);
    run.loss = get("loss", last);
    run.n = get("N", last);
    run.d = get("D", last);
    for (const auto& [name, v] : values)
      if (name != "C" && name != "N" && name != "D" && name != "loss" && std::isfinite(v[last]))
        run.params[name] = v[last];
    if (rows_of.size() >= 2) {
      run.curve.n = run.n;
      for (auto i : rows_of) {
        const double c = compute_of(i), l = get("loss", i);
        if (c > 0 && l > 0) {
          run.curve.compute.push_back(c);
          run.curve.loss.push_back(l);
        }
      }
    }
    data.runs.push_back(std::move(run));
  }
  return data;
}

scaling::Dataset read_records_dataset(const FitCliOptions& o) {
  store::Records records;
  try {
    records = store::load(o.records);
  } catch (const store::StoreError& e) {
    throw UsageError(e.what());
  }
  const std::string objective = o.objective.empty() ? records.meta.objective : o.objective;
  const bool maximize = records.meta.direction == "maximize";
  if (maximize) spdlog::info("the sweep maximises {}; fitting its negative as the loss", objective);
  scaling::Dataset data;
  data.source = o.records;
  int skipped = 0;
  for (const auto& t : records.latest_trials()) {
    if (t.status != store::TrialStatus::kOk) {
      ++skipped;
      continue;
    }
    scaling::Run run;
    run.id = std::to_string(t.trial_id);
    double value = t.objective;
    if (!o.objective.empty()) {
      const auto it = t.metrics.find(o.objective);
      value = it == t.metrics.end() ? scaling::kNaN : it->second;
    }
    run.loss = maximize ? -value : value;
    run.compute = o.compute == "flops_6n" ? t.flops_6n : o.compute == "cost" ? t.cost : t.flops;
    run.d = t.tokens;
    for (const auto& [k, v] : t.params)
      if (std::isfinite(v)) run.params[k] = v;
    // N: the named metric/parameter, else the usual names of the parameter count.
    std::vector<std::string> n_names = {"params_non_embedding", "non_embedding_params", "n_params",
                                        "params"};
    if (!o.n_metric.empty()) n_names = {o.n_metric};
    for (const auto& name : n_names) {
      if (t.metrics.count(name)) {
        run.n = t.metrics.at(name);
        break;
      }
      if (t.params.count(name)) {
        run.n = t.params.at(name);
        break;
      }
    }
    const auto curve = records.curve(t.trial_id);
    for (const auto& p : curve) {
      const double l = std::isfinite(p.val_loss) ? p.val_loss : p.train_loss;
      if (p.flops > 0 && l > 0) {
        run.curve.compute.push_back(p.flops);
        run.curve.loss.push_back(l);
      }
    }
    run.curve.n = run.n;
    data.runs.push_back(std::move(run));
  }
  if (skipped > 0)
    spdlog::info("{} trials not ok (failed, running, interrupted) left out", skipped);
  if (data.runs.empty())
    throw UsageError(o.records + ": no finished trials with status ok to fit yet");
  return data;
}

// Epoch's procedure on the Chinchilla points: drop the K highest losses (outliers at the start
// of the figure's curves).
void drop_highest_losses(scaling::Dataset& data, int k) {
  if (k <= 0) return;
  if (k >= static_cast<int>(data.runs.size()))
    throw UsageError("--drop-highest " + std::to_string(k) + " would drop every run");
  std::sort(data.runs.begin(), data.runs.end(),
            [](const auto& a, const auto& b) { return a.loss < b.loss; });
  data.runs.resize(data.runs.size() - k);
}

std::string summary_table(const scaling::FitResult& fit) {
  std::ostringstream s;
  char line[512];
  std::snprintf(line, sizeof(line), "%-16s %-22s %-44s %s\n", "quantity", "method", "law", "flags");
  s << line;
  for (const auto& law : fit.laws) {
    std::string text;
    auto c = [&](const char* k) {
      char buf[96];
      const auto it = law.interval.find(k);
      if (it != law.interval.end())
        std::snprintf(buf, sizeof(buf), "%.4g [%.3g, %.3g]", law.coef.at(k), it->second.first,
                      it->second.second);
      else
        std::snprintf(buf, sizeof(buf), "%.4g", law.coef.at(k));
      return std::string(buf);
    };
    if (law.coef.empty())
      text = "-";
    else if (law.form == "power")
      text = "C^" + c("p");
    else if (law.form == "two_variable")
      text = "N^" + c("p") + " D^" + c("q");
    else if (law.form == "loss_surface")
      text = "E " + c("E") + " alpha " + c("alpha") + " beta " + c("beta");
    else if (law.form == "loss_frontier")
      text = "E " + c("E") + " gamma " + c("gamma");
    std::string flags;
    for (const auto& f : law.flags) flags += (flags.empty() ? "" : "; ") + f.substr(0, f.find(':'));
    std::snprintf(line, sizeof(line), "%-16s %-22s %-44s %s\n", law.y.c_str(),
                  (law.method + (law.form == "two_variable" ? " (N,D)" : "")).c_str(), text.c_str(),
                  flags.empty() ? "ok" : flags.c_str());
    s << line;
  }
  return s.str();
}

}  // namespace

Command add_fit_command(CLI::App& app) {
  auto o = std::make_shared<FitCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "fit", "Fit scaling laws (power laws, Chinchilla approaches) to finished runs");
  auto* csv = sub->add_option("--csv", o->csv, "Runs as a CSV file with a header row");
  auto* rec = sub->add_option("--records", o->records, "Records file of a sweep (records.h5)");
  csv->excludes(rec);
  sub->add_option("--col", o->columns,
                  "Column mapping NAME=COLUMN (repeatable): C (FLOPs), N (parameters), D "
                  "(tokens), loss, run (id; rows of one run are its curve), or a "
                  "hyper-parameter name");
  sub->add_option("--law", o->laws,
                  "Law families to fit (repeatable or comma-separated): power, two_variable, "
                  "approach1, approach2, approach3, approach3_likelihood, frontier "
                  "(default: all the data allow)")
      ->delimiter(',');
  sub->add_option("--out", o->out, "Write the fit as JSON here (default: stdout)");
  sub->add_option("--report", o->report, "Write an HTML report with SVG plots into this directory");
  sub->add_option("--bootstrap", o->fit.bootstrap, "Bootstrap resamples of whole runs")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", o->fit.seed, "Seed of the bootstrap")->capture_default_str();
  sub->add_option("--level", o->fit.level, "Central interval level")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.999));
  sub->add_option("--band", o->fit.band_fraction,
                  "Near-optimal band: runs within this fraction of the best loss per scale")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--budgets", o->budgets,
                  "IsoFLOP budgets in FLOPs (comma-separated); runs snap to the nearest within "
                  "--snap (default: clusters found from the data)")
      ->delimiter(',');
  sub->add_option("--snap", o->fit.snap_tolerance, "Relative tolerance for snapping to budgets")
      ->capture_default_str();
  sub->add_option("--min-scales", o->fit.min_scales,
                  "Flag laws with fewer distinct compute scales than this")
      ->capture_default_str();
  sub->add_option("--drop-highest", o->drop_highest,
                  "Leave out the K runs with the highest loss (Epoch drop 5 on Chinchilla's)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--threads", o->fit.threads, "Threads for the multi-start and the bootstrap")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--objective", o->objective,
                  "Records: the metric to fit (default: the sweep's objective)");
  sub->add_option("--compute", o->compute, "Records: compute column: flops, flops_6n or cost")
      ->capture_default_str()
      ->check(CLI::IsMember({"flops", "flops_6n", "cost"}));
  sub->add_option("--n-metric", o->n_metric,
                  "Records: metric or parameter holding the parameter count N");
  return {sub, "fit", [o] {
            if (o->csv.empty() && o->records.empty())
              throw UsageError("fit needs --csv FILE or --records FILE.h5");
            if (!o->records.empty() && !o->columns.empty())
              throw UsageError("--col applies to --csv only (records name their own columns)");
            for (const auto& law : o->laws)
              if (!kLawFamilies.count(law))
                throw UsageError("--law '" + law +
                                 "' is not a law family; use power, two_variable, approach1, "
                                 "approach2, approach3, approach3_likelihood or frontier");
            o->fit.laws = o->laws;
            o->fit.budgets = o->budgets;
            o->fit.approach3.threads = o->fit.threads;
            scaling::Dataset data =
                o->csv.empty() ? read_records_dataset(*o) : read_csv_dataset(*o);
            drop_highest_losses(data, o->drop_highest);
            spdlog::info("fitting {} runs from {} ({} bootstrap resamples)", data.runs.size(),
                         data.source, o->fit.bootstrap);
            scaling::FitResult fit;
            try {
              fit = scaling::fit_laws(data, o->fit);
            } catch (const std::invalid_argument& e) {
              throw UsageError(data.source + ": " + e.what());
            }
            for (const auto& w : fit.warnings) spdlog::warn("{}", w);
            const std::string json = scaling::to_json(fit).dump(1);
            if (o->out.empty()) {
              std::fputs(json.c_str(), stdout);
              std::fputs("\n", stdout);
            } else {
              std::ofstream out(o->out);
              out << json << "\n";
              if (!out) throw std::runtime_error("cannot write " + o->out);
              spdlog::info("wrote {}", o->out);
              std::fputs(summary_table(fit).c_str(), stdout);
            }
            if (!o->report.empty()) {
              const std::string path = scaling::write_report(o->report, fit);
              spdlog::info("report: {}", path);
            }
            return kExitOk;
          }};
}

}  // namespace scaletune::cli
