// Report rendering: a tiny SVG plotter (log or linear axes, points, lines, bands, markers,
// legend) and the page layout. No plotting library in Debian renders to SVG from C++ without a
// GUI stack, and the plots needed are few and fixed.
#include "scaling/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace scaletune::scaling {

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                          "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double v, int digits = 4) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
  return buf;
}

// A 2-D plot with log x and log or linear y, rendered as an inline <svg>.
class Plot {
 public:
  Plot(std::string title, std::string xlabel, std::string ylabel, bool log_y = true)
      : title_(std::move(title)),
        xlabel_(std::move(xlabel)),
        ylabel_(std::move(ylabel)),
        log_y_(log_y) {}

  void points(const std::vector<double>& x, const std::vector<double>& y, const std::string& color,
              double radius, const std::string& label, bool hollow = false) {
    Series s{Kind::kPoints, x, y, {}, color, label, radius, hollow, ""};
    add(std::move(s));
  }
  void line(const std::vector<double>& x, const std::vector<double>& y, const std::string& color,
            const std::string& label, const std::string& dash = "") {
    add(Series{Kind::kLine, x, y, {}, color, label, 2, false, dash});
  }
  void band(const std::vector<double>& x, const std::vector<double>& lo,
            const std::vector<double>& hi, const std::string& color) {
    add(Series{Kind::kBand, x, lo, hi, color, "", 0, false, ""});
  }
  void star(double x, double y, const std::string& color, const std::string& label) {
    add(Series{Kind::kStar, {x}, {y}, {}, color, label, 9, false, ""});
  }
  void error_bar(double x, double lo, double hi, const std::string& color) {
    add(Series{Kind::kErrorBar, {x, x}, {lo, hi}, {}, color, "", 0, false, ""});
  }
  bool empty() const { return series_.empty(); }

  std::string svg() const {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& s : series_) {
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        extend(s.x[i], x0, x1, true);
        extend(s.y[i], y0, y1, log_y_);
        if (!s.y2.empty()) extend(s.y2[i], y0, y1, log_y_);
      }
    }
    if (!(x1 >= x0) || !(y1 >= y0)) return "";
    if (x1 - x0 < 1e-9) {
      x0 -= 0.5;
      x1 += 0.5;
    }
    if (y1 - y0 < 1e-12) {
      y0 -= log_y_ ? 0.5 : 0.5 * std::max(1e-9, std::fabs(y0));
      y1 += y0 == y1 ? 1 : (y1 - y0);
    }
    const double px = 0.04 * (x1 - x0), py = 0.06 * (y1 - y0);
    x0 -= px;
    x1 += px;
    y0 -= py;
    y1 += py;
    const double W = 640, H = 400, L = 78, R = 16, T = 34, B = 52;
    auto sx = [&](double x) { return L + (std::log10(x) - x0) / (x1 - x0) * (W - L - R); };
    auto sy = [&](double y) {
      return H - B - ((log_y_ ? std::log10(y) : y) - y0) / (y1 - y0) * (H - T - B);
    };
    auto ok = [&](double x, double y) {
      return std::isfinite(x) && x > 0 && std::isfinite(y) && (!log_y_ || y > 0);
    };
    std::ostringstream o;
    o << "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 " << W << " " << H << "' width='"
      << W << "' height='" << H << "' role='img'>";
    o << "<rect x='0' y='0' width='" << W << "' height='" << H << "' fill='white'/>";
    o << "<text x='" << W / 2 << "' y='20' text-anchor='middle' class='t'>" << esc(title_)
      << "</text>";
    // Grid and ticks: decades on log axes (with 2 and 5 when the range is short), nice steps
    // on the linear axis.
    o << "<g class='grid'>";
    for (const auto& [v, major] : log_ticks(x0, x1)) {
      const double X = L + (v - x0) / (x1 - x0) * (W - L - R);
      o << "<line x1='" << X << "' y1='" << T << "' x2='" << X << "' y2='" << H - B << "' stroke='"
        << (major ? "#ddd" : "#f0f0f0") << "'/>";
      if (major)
        o << "<text x='" << X << "' y='" << H - B + 16 << "' text-anchor='middle'>"
          << tick_label(v, true) << "</text>";
    }
    for (const auto& [v, major] : log_y_ ? log_ticks(y0, y1) : linear_ticks(y0, y1)) {
      const double Y = H - B - (v - y0) / (y1 - y0) * (H - T - B);
      o << "<line x1='" << L << "' y1='" << Y << "' x2='" << W - R << "' y2='" << Y << "' stroke='"
        << (major ? "#ddd" : "#f0f0f0") << "'/>";
      if (major)
        o << "<text x='" << L - 6 << "' y='" << Y + 4 << "' text-anchor='end'>"
          << tick_label(v, log_y_) << "</text>";
    }
    o << "</g>";
    o << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
      << "' fill='none' stroke='#888'/>";
    o << "<text x='" << (L + W - R) / 2 << "' y='" << H - 12 << "' text-anchor='middle'>"
      << esc(xlabel_) << "</text>";
    o << "<text transform='translate(16," << (T + H - B) / 2
      << ") rotate(-90)' text-anchor='middle'>" << esc(ylabel_) << "</text>";
    o << "<clipPath id='c" << id() << "'><rect x='" << L << "' y='" << T << "' width='" << W - L - R
      << "' height='" << H - T - B << "'/></clipPath><g clip-path='url(#c" << id() << ")'>";
    for (const auto& s : series_) {
      if (s.kind == Kind::kBand) {
        std::ostringstream path;
        bool first = true;
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (!ok(s.x[i], s.y[i])) continue;
          path << (first ? "M" : "L") << sx(s.x[i]) << "," << sy(s.y[i]) << " ";
          first = false;
        }
        for (std::size_t i = s.x.size(); i-- > 0;) {
          if (!ok(s.x[i], s.y2[i])) continue;
          path << "L" << sx(s.x[i]) << "," << sy(s.y2[i]) << " ";
        }
        if (!first)
          o << "<path d='" << path.str() << "Z' fill='" << s.color
            << "' fill-opacity='0.18' stroke='none'/>";
      } else if (s.kind == Kind::kLine || s.kind == Kind::kErrorBar) {
        std::ostringstream pts;
        for (std::size_t i = 0; i < s.x.size(); ++i)
          if (ok(s.x[i], s.y[i])) pts << sx(s.x[i]) << "," << sy(s.y[i]) << " ";
        o << "<polyline points='" << pts.str() << "' fill='none' stroke='" << s.color
          << "' stroke-width='" << (s.kind == Kind::kErrorBar ? 2.5 : 2) << "'"
          << (s.dash.empty() ? "" : " stroke-dasharray='" + s.dash + "'") << "/>";
      } else if (s.kind == Kind::kPoints) {
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (!ok(s.x[i], s.y[i])) continue;
          o << "<circle cx='" << sx(s.x[i]) << "' cy='" << sy(s.y[i]) << "' r='" << s.radius << "' "
            << (s.hollow ? "fill='none' stroke='" + s.color + "' stroke-width='1.5'"
                         : "fill='" + s.color + "' fill-opacity='0.75'")
            << "/>";
        }
      } else if (s.kind == Kind::kStar && ok(s.x[0], s.y[0])) {
        const double cx = sx(s.x[0]), cy = sy(s.y[0]);
        std::ostringstream pts;
        for (int k = 0; k < 10; ++k) {
          const double a = -M_PI / 2 + k * M_PI / 5, r = k % 2 ? s.radius * 0.45 : s.radius;
          pts << cx + r * std::cos(a) << "," << cy + r * std::sin(a) << " ";
        }
        o << "<polygon points='" << pts.str() << "' fill='" << s.color
          << "' stroke='black' stroke-width='0.8'/>";
      }
    }
    o << "</g>";
    // Legend in the top corner (left or right) that covers fewer data points.
    int rows = 0;
    for (const auto& s : series_) rows += s.label.empty() ? 0 : 1;
    auto covered = [&](double X) {
      int n = 0;
      for (const auto& s : series_)
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (!ok(s.x[i], s.y[i])) continue;
          const double px = sx(s.x[i]), py = sy(s.y[i]);
          n += px >= X - 6 && px <= X + 196 && py >= T && py <= T + 8 + 16 * rows;
        }
      return n;
    };
    const double legend_x = covered(L + 10) < covered(W - R - 200) ? L + 10 : W - R - 200;
    int row = 0;
    for (const auto& s : series_) {
      if (s.label.empty()) continue;
      const double Y = T + 14 + 16 * row++;
      const double X = legend_x;
      o << "<rect x='" << X - 6 << "' y='" << Y - 11 << "' width='196' height='16' "
        << "fill='white' fill-opacity='0.8'/>";
      if (s.kind == Kind::kLine)
        o << "<line x1='" << X << "' y1='" << Y - 4 << "' x2='" << X + 18 << "' y2='" << Y - 4
          << "' stroke='" << s.color << "' stroke-width='2'"
          << (s.dash.empty() ? "" : " stroke-dasharray='" + s.dash + "'") << "/>";
      else
        o << "<circle cx='" << X + 9 << "' cy='" << Y - 4 << "' r='4' fill='" << s.color << "'/>";
      o << "<text x='" << X + 24 << "' y='" << Y << "'>" << esc(s.label) << "</text>";
    }
    o << "</svg>";
    return o.str();
  }

 private:
  enum class Kind { kPoints, kLine, kBand, kStar, kErrorBar };
  struct Series {
    Kind kind;
    std::vector<double> x, y, y2;
    std::string color, label;
    double radius;
    bool hollow;
    std::string dash;
  };
  void add(Series s) { series_.push_back(std::move(s)); }
  static void extend(double v, double& lo, double& hi, bool log) {
    if (!std::isfinite(v) || (log && !(v > 0))) return;
    const double t = log ? std::log10(v) : v;
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  static std::vector<std::pair<double, bool>> log_ticks(double lo, double hi) {
    std::vector<std::pair<double, bool>> t;
    const bool fine = hi - lo < 2.5;
    for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e) {
      for (int m : {1, 2, 5}) {
        const double v = e + std::log10(m);
        if (v < lo || v > hi) continue;
        if (m == 1 || fine) t.push_back({v, m == 1 || (fine && hi - lo < 1.2)});
      }
    }
    if (t.size() < 2) t = linear_ticks(lo, hi);  // less than a decade: label in between too
    return t;
  }
  static std::vector<std::pair<double, bool>> linear_ticks(double lo, double hi) {
    const double raw = (hi - lo) / 5;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / mag < 2 ? 2 * mag : raw / mag < 5 ? 5 * mag : 10 * mag;
    std::vector<std::pair<double, bool>> t;
    for (double v = std::ceil(lo / step) * step; v <= hi; v += step)
      t.push_back({std::fabs(v) < 1e-12 * step ? 0.0 : v, true});
    return t;
  }
  static std::string tick_label(double v, bool log) {
    if (!log) return num(v, 3);
    const double value = std::pow(10.0, v);
    if (std::fabs(v - std::round(v)) < 1e-9) {
      const int e = static_cast<int>(std::round(v));
      if (e >= -2 && e <= 3) return num(value, 3);
      return "1e" + std::to_string(e);
    }
    return num(value, 2);
  }
  int id() const { return static_cast<int>(reinterpret_cast<std::uintptr_t>(this) % 1000003); }

  std::string title_, xlabel_, ylabel_;
  bool log_y_;
  std::vector<Series> series_;
};

std::vector<double> log_grid(double lo, double hi, int n = 60) {
  std::vector<double> g;
  for (int i = 0; i < n; ++i) g.push_back(lo * std::pow(hi / lo, static_cast<double>(i) / (n - 1)));
  return g;
}

std::string law_formula(const Law& law) {
  auto c = [&](const std::string& k) {
    std::string s = num(law.coef.at(k), 4);
    const auto it = law.interval.find(k);
    if (it != law.interval.end())
      s += " [" + num(it->second.first, 3) + ", " + num(it->second.second, 3) + "]";
    return s;
  };
  if (law.coef.empty()) return "not fitted";
  if (law.form == "power") return law.y + " = " + c("k") + " · C^" + c("p");
  if (law.form == "two_variable")
    return law.y + " = " + c("k") + " · N^" + c("p") + " · D^" + c("q");
  if (law.form == "loss_frontier") return "L = " + c("E") + " + " + c("k") + " · C^-" + c("gamma");
  if (law.form == "loss_surface")
    return "L = " + c("E") + " + " + c("A") + "/N^" + c("alpha") + " + " + c("B") + "/D^" +
           c("beta") + ";  N_opt ∝ C^" + c("a");
  return law.form;
}

std::string pretty_method(const std::string& m) {
  if (m == "pareto_front") return "Pareto front";
  if (m == "near_optimal_band") return "near-optimal band";
  if (m == "approach1") return "Approach 1 (envelope)";
  if (m == "approach2") return "Approach 2 (IsoFLOP)";
  if (m == "approach3") return "Approach 3 (Huber)";
  if (m == "approach3_likelihood") return "Approach 3 (Huber likelihood)";
  return m;
}

}  // namespace

std::string render_report(const FitResult& fit, const Prediction* pred) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
    << "<title>scaletune fit: " << esc(fit.source) << "</title><style>"
    << "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px;color:#222;"
       "max-width:1340px}"
    << "h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}"
    << ".plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #e4e4e4}"
    << "svg text{font-size:12px;fill:#333}svg text.t{font-size:14px;font-weight:600}"
    << "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;"
       "text-align:left;vertical-align:top}th{background:#f5f5f5}"
    << ".flag{color:#b00020}.ok{color:#2a7a2a}.warn{background:#fff4e5;border-left:4px solid "
       "#f0a020;padding:6px 10px;margin:6px 0}"
    << "</style></head><body>";
  h << "<h1>Scaling laws: " << esc(fit.source) << "</h1>";
  h << "<p>" << fit.runs.size() << " runs, compute " << num(fit.min_compute, 3) << " – "
    << num(fit.max_compute, 3) << " FLOPs; " << fit.front.size() << " on the Pareto front, "
    << fit.band.size() << " in the near-optimal band (" << num(100 * fit.options.band_fraction, 3)
    << " %); " << fit.bootstrap_done << " bootstrap resamples of whole runs, "
    << num(100 * fit.options.level, 3) << " % percentile intervals.</p>";
  for (const auto& w : fit.warnings) h << "<div class='warn'>" << esc(w) << "</div>";
  if (pred) {
    h << "<h2>Extrapolation to C = " << num(pred->compute, 3) << " FLOPs</h2>";
    for (const auto& w : pred->warnings) h << "<div class='warn'>" << esc(w) << "</div>";
    h << "<table><tr><th>quantity</th><th>prediction</th><th>interval</th><th>from</th></tr>";
    auto row = [&](const std::string& name, const Estimate& e) {
      h << "<tr><td>" << esc(name) << "</td><td>" << num(e.value) << "</td><td>[" << num(e.lo, 3)
        << ", " << num(e.hi, 3) << "]</td><td>" << esc(e.law)
        << (e.flags.empty() ? "" : " <span class='flag'>(flagged)</span>") << "</td></tr>";
    };
    row("N (parameters)", pred->n);
    row("D (tokens)", pred->d);
    row("loss", pred->loss);
    for (const auto& [k, e] : pred->params) row(k, e);
    h << "<tr><td>shape</td><td colspan='3'>n_layer " << pred->shape.n_layer << ", d_model "
      << pred->shape.d_model << ", n_head " << pred->shape.n_head << " ("
      << num(pred->shape.params, 3) << " non-embedding params)"
      << (std::isfinite(pred->steps) ? ", " + num(pred->steps, 6) + " steps" : "")
      << "</td></tr></table>";
  }

  std::vector<double> all_c, all_l, front_c, front_l, band_c, band_l;
  for (std::size_t i = 0; i < fit.runs.size(); ++i) {
    all_c.push_back(fit.runs[i].compute);
    all_l.push_back(fit.runs[i].loss);
  }
  for (auto i : fit.front) {
    front_c.push_back(fit.runs[i].compute);
    front_l.push_back(fit.runs[i].loss);
  }
  for (auto i : fit.band) {
    band_c.push_back(fit.runs[i].compute);
    band_l.push_back(fit.runs[i].loss);
  }
  const double c_hi = pred ? std::max(fit.max_compute, pred->compute) : fit.max_compute;
  const auto grid = log_grid(fit.min_compute, c_hi);

  h << "<h2>Loss vs compute</h2><div class='plots'>";
  {
    const bool positive_loss =
        std::all_of(all_l.begin(), all_l.end(), [](double v) { return v > 0; });
    Plot p("Loss vs compute", "compute C (FLOPs)", "loss", positive_loss);
    p.points(all_c, all_l, "#9a9a9a", 2.5, "all runs");
    p.points(band_c, band_l, "#ff7f0e", 4.5, "near-optimal band", true);
    p.line(front_c, front_l, "#d62728", "");
    p.points(front_c, front_l, "#d62728", 4, "Pareto front");
    int color = 0;
    for (const auto& law : fit.laws) {
      if (law.y != "loss" || law.coef.empty()) continue;
      std::vector<double> v, lo, hi;
      for (double c : grid) {
        v.push_back(law.at(c));
        std::vector<double> reps;
        for (double r : law.replicate_values(c, "loss"))
          if (std::isfinite(r)) reps.push_back(r);
        lo.push_back(reps.size() > 1 ? quantile(reps, (1 - fit.options.level) / 2) : kNaN);
        hi.push_back(reps.size() > 1 ? quantile(reps, (1 + fit.options.level) / 2) : kNaN);
      }
      const std::string col = kPalette[(2 + color++) % 10];
      if (fit.bootstrap_done > 0) p.band(grid, lo, hi, col);
      p.line(grid, v, col,
             law.form == "loss_frontier"
                 ? "frontier E + k C^-γ"
                 : (law.method == "approach3" ? std::string("Approach 3 L_opt(C)")
                                              : std::string("Approach 3 lik. L_opt(C)")),
             "6,4");
    }
    if (pred && pred->loss.ok()) {
      if (std::isfinite(pred->loss.lo))
        p.error_bar(pred->compute, pred->loss.lo, pred->loss.hi, "#000");
      p.star(pred->compute, pred->loss.value, "#ffd700", "extrapolated");
    }
    h << "<div class='plot'>" << p.svg() << "</div>";
  }
  h << "</div>";

  // One plot per quantity with compute laws: points of each method, fitted line and band.
  std::vector<std::string> quantities;
  for (const auto& law : fit.laws)
    if (law.form == "power" &&
        std::find(quantities.begin(), quantities.end(), law.y) == quantities.end())
      quantities.push_back(law.y);
  h << "<h2>Optimal settings vs compute (log-log)</h2><div class='plots'>";
  for (const auto& q : quantities) {
    Plot p(q + " vs compute", "compute C (FLOPs)", q);
    int color = 0;
    for (const auto& law : fit.laws) {
      if (law.form != "power" || law.y != q) continue;
      const std::string col = kPalette[color++ % 10];
      if (law.points.count("C"))
        p.points(law.points.at("C"), law.points.at(q), col,
                 law.method == "near_optimal_band" ? 4.5 : 3, "",
                 law.method == "near_optimal_band");
      if (law.coef.empty()) continue;
      std::vector<double> v, lo, hi;
      for (double c : grid) {
        v.push_back(law.at(c));
        std::vector<double> reps;
        for (double r : law.replicate_values(c))
          if (std::isfinite(r)) reps.push_back(r);
        lo.push_back(reps.size() > 1 ? quantile(reps, (1 - fit.options.level) / 2) : kNaN);
        hi.push_back(reps.size() > 1 ? quantile(reps, (1 + fit.options.level) / 2) : kNaN);
      }
      if (fit.bootstrap_done > 0) p.band(grid, lo, hi, col);
      p.line(grid, v, col,
             pretty_method(law.method) + " p=" + num(law.coef.at("p"), 3) +
                 (law.flagged() ? " (flagged)" : ""),
             law.flagged() ? "3,3" : "");
    }
    if (pred) {
      const Estimate* e = nullptr;
      if (q == "N")
        e = &pred->n;
      else if (q == "D")
        e = &pred->d;
      else if (pred->params.count(q))
        e = &pred->params.at(q);
      if (e && e->ok()) {
        if (std::isfinite(e->lo)) p.error_bar(pred->compute, e->lo, e->hi, "#000");
        p.star(pred->compute, e->value, "#ffd700", "extrapolated");
      }
    }
    h << "<div class='plot'>" << p.svg() << "</div>";
  }
  h << "</div>";

  // IsoFLOP curves.
  const Law* iso = fit.find("N", "approach2");
  if (iso && iso->extra.contains("curves")) {
    h << "<h2>IsoFLOP curves (Approach 2)</h2><div class='plots'>";
    Plot p("Loss vs model size at fixed compute", "parameters N", "loss", false);
    int color = 0;
    for (const auto& cv : iso->extra["curves"]) {
      const std::string col = kPalette[color++ % 10];
      const auto n = cv.value("N", std::vector<double>{});
      const auto l = cv.value("loss", std::vector<double>{});
      p.points(n, l, col, 3, "C = " + num(cv.value("compute", kNaN), 2));
      if (!cv.value("ok", false) || n.empty()) continue;
      const double lo = *std::min_element(n.begin(), n.end()),
                   hi = *std::max_element(n.begin(), n.end());
      std::vector<double> xs = log_grid(lo, hi, 40), ys;
      for (double x : xs) {
        const double lx = std::log(x);
        ys.push_back(cv["c2"].get<double>() * lx * lx + cv["c1"].get<double>() * lx +
                     cv["c0"].get<double>());
      }
      p.line(xs, ys, col, "");
      p.points({cv["n_opt"].get<double>()}, {cv["loss_opt"].get<double>()}, "#000", 3.5, "", true);
    }
    h << "<div class='plot'>" << p.svg() << "</div></div>";
  }

  // Residuals.
  h << "<h2>Residuals (ln observed − ln fitted)</h2><div class='plots'>";
  for (const auto& law : fit.laws) {
    if (law.residuals.empty() || !law.points.count("C") ||
        law.points.at("C").size() != law.residuals.size())
      continue;
    if (law.form == "power" && law.method == "pareto_front" && law.y != "N") continue;
    Plot p(law.y + " — " + pretty_method(law.method), "compute C (FLOPs)", "residual", false);
    p.points(law.points.at("C"), law.residuals, law.flagged() ? "#b00020" : "#1f77b4", 3, "");
    p.line({law.points.at("C").front(), law.points.at("C").back()}, {0, 0}, "#555", "", "4,3");
    h << "<div class='plot'>" << p.svg() << "</div>";
  }
  h << "</div>";

  h << "<h2>Every law</h2><table><tr><th>quantity</th><th>method</th><th>law ["
    << num(100 * fit.options.level, 3) << " % interval]</th><th>points</th><th>scales</th>"
    << "<th>leave-one-scale-out</th><th>flags</th></tr>";
  for (const auto& law : fit.laws) {
    const std::size_t npts = law.points.empty() ? 0 : law.points.begin()->second.size();
    std::string loso = "—";
    if (law.loso.is_object() && law.loso.contains("relative_error"))
      loso = num(100 * law.loso["relative_error"].get<double>(), 3) +
             " % error at C = " + num(law.loso.value("left_out_compute", kNaN), 2);
    else if (law.loso.is_object())
      loso = law.loso.value("skipped", std::string("—"));
    h << "<tr><td>" << esc(law.y) << "</td><td>" << esc(pretty_method(law.method))
      << (law.form == "two_variable" ? " (N, D)" : "") << "</td><td>" << esc(law_formula(law))
      << "</td><td>" << npts << "</td><td>" << law.scales << "</td><td>" << esc(loso)
      << "</td><td>";
    if (law.flags.empty()) h << "<span class='ok'>determined</span>";
    for (const auto& f : law.flags) h << "<div class='flag'>" << esc(f) << "</div>";
    h << "</td></tr>";
  }
  h << "</table><p style='color:#888;font-size:12px'>scaletune fit — self-contained report, "
       "no network needed.</p></body></html>\n";
  return h.str();
}

std::string write_report(const std::string& dir, const FitResult& fit,
                         const Prediction* prediction) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create report directory '" + dir + "': " + ec.message());
  const std::string path = (std::filesystem::path(dir) / "index.html").string();
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  out << render_report(fit, prediction);
  if (!out) throw std::runtime_error("error writing '" + path + "'");
  return path;
}

}  // namespace scaletune::scaling
