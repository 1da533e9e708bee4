// The HTML report: self-contained (no scripts, no external resources), one SVG per plot, and
// it renders in headless Chromium (screenshot checked for size and content; skipped when
// chromium is not installed).
#include "scaling/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "scaling/extrapolate.h"

namespace scaletune::scaling {
namespace {

// A small sweep over the Chinchilla surface with lr/batch around DeepSeek's optima.
Dataset sweep() {
  const LossSurface s{1.69, 406.4, 410.7, 0.34, 0.28};
  std::mt19937_64 rng(4);
  std::normal_distribution<double> eps(0, 0.03);
  Dataset data;
  data.source = "synthetic sweep";
  for (int k = 0; k < 6; ++k) {
    const double c = 1e17 * std::pow(10.0, 0.5 * k);
    for (double fn : {0.25, 0.5, 1.0, 2.0, 4.0})
      for (double flr : {0.5, 1.0, 2.0}) {
        Run r;
        r.compute = c * (1 + 0.03 * eps(rng));
        r.n = s.n_opt(c) * fn;
        r.d = r.compute / (6 * r.n);
        const double lr_star = 0.3118 * std::pow(c, -0.125);
        const double lr = lr_star * flr * std::exp(eps(rng));
        r.params = {{"lr", lr}, {"batch_tokens", 0.292 * std::pow(c, 0.3271) * std::exp(eps(rng))}};
        r.loss = s.loss(r.n, r.d) + 0.1 * std::pow(std::log10(lr / lr_star), 2);
        data.runs.push_back(r);
      }
  }
  return data;
}

std::string build_dir(const std::string& name) {
  const auto dir = std::filesystem::path(SCALETUNE_BINARY_DIR) / "tests" / "tmp" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

TEST(Report, SelfContainedPageWithEveryPlot) {
  FitOptions o;
  o.bootstrap = 100;
  o.laws = {"power", "frontier", "approach2"};
  const FitResult fit = fit_laws(sweep(), o);
  ExtrapolateOptions x;
  x.compute = 1e21;
  const Prediction p = extrapolate(fit, x);
  const std::string html = render_report(fit, &p);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "<script"), 0u);
  EXPECT_EQ(count(html, "src="), 0u);
  EXPECT_EQ(count(html, "href="), 0u);
  EXPECT_EQ(count(html, "url(http"), 0u);
  // loss vs compute + N, D, lr, batch_tokens + IsoFLOP + residual plots.
  EXPECT_GE(count(html, "<svg"), 7u);
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_NE(html.find("Pareto front"), std::string::npos);
  EXPECT_NE(html.find("IsoFLOP"), std::string::npos);
  EXPECT_NE(html.find("Extrapolation to C = 1e+21"), std::string::npos);
  EXPECT_GE(count(html, "<polygon"), 5u);             // the extrapolated stars
  EXPECT_GE(count(html, "fill-opacity='0.18'"), 4u);  // bootstrap bands
  // Every number in the SVG coordinates is finite.
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf'"), std::string::npos);
}

TEST(Report, RendersInHeadlessChromium) {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
  std::string chromium;
  for (const char* c : candidates)
    if (std::filesystem::exists(c)) chromium = c;
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  FitOptions o;
  o.bootstrap = 100;
  o.laws = {"power", "frontier", "approach2"};
  const FitResult fit = fit_laws(sweep(), o);
  ExtrapolateOptions x;
  x.compute = 1e21;
  const Prediction p = extrapolate(fit, x);
  const std::string dir = build_dir("report_chromium");
  const std::string page = write_report(dir, fit, &p);
  const std::string png = dir + "/screenshot.png";
  // A private profile directory: chromium must not touch the user's, and two tests must not
  // share one.
  const std::string cmd = "timeout 120 " + chromium +
                          " --headless --no-sandbox --disable-gpu --hide-scrollbars"
                          " --user-data-dir=" +
                          dir +
                          "/profile --window-size=1380,3600"
                          " --screenshot=" +
                          png + " file://" + page + " > " + dir + "/chromium.log 2>&1";
  const int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << "chromium failed; see " << dir << "/chromium.log";
  ASSERT_TRUE(std::filesystem::exists(png));
  std::ifstream in(png, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  // A blank page of this size compresses to a few kB; plots with text and points to far more.
  EXPECT_GT(bytes.size(), 60000u) << png;
}

}  // namespace
}  // namespace scaletune::scaling
