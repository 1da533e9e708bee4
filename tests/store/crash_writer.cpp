// Helper program of the store's crash and concurrent-reader tests: appends a deterministic
// sequence of operations to a records file and reports each completed one on stdout, so the
// test can kill it at any instant and know what must be in the file.
//
//   store_crash_writer PATH FIRST_OP LAST_OP [PAUSE_US]
//
// Operation k: every 5th stores the text "search_state" = "state k", every 3rd appends a
// 3-point curve of trial k, the others append trial row sample_trial_v2(k) (every string column
// set, some values long enough for /overflow). A missing file is created, an existing one
// resumed. PAUSE_US sleeps between operations (a sweep-like pace for the concurrent-reader test;
// the crash test goes flat out). STORE_CRASH_SCHEMA=N creates the file with schema version N
// instead of the newest (to measure an older layout: docs/records.md, "Durability").
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "orchestrator/store/records.h"
#include "tests/store/store_fixtures.h"

namespace st = scaletune::store;

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: %s PATH FIRST_OP LAST_OP [PAUSE_US]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const long first = std::atol(argv[2]);
  const long last = std::atol(argv[3]);
  const long pause_us = argc == 5 ? std::atol(argv[4]) : 0;
  st::WriterOptions options;
  if (const char* schema = std::getenv("STORE_CRASH_SCHEMA"))
    options.schema_version = std::atoi(schema);
  try {
    auto writer = std::filesystem::exists(path)
                      ? st::RecordsWriter::open_existing(path).writer
                      : st::RecordsWriter::create(path, st::test::sample_meta(), options);
    for (long k = first; k <= last; ++k) {
      if (k % 5 == 4) {
        writer.put_text("search_state", "state " + std::to_string(k));
      } else if (k % 3 == 2) {
        writer.append_curve(k, 0, st::test::sample_curve(k, 3));
      } else {
        writer.append_trial(st::test::sample_trial_v2(k));
      }
      // One write(2) per completed operation: it reaches the pipe even if we are killed next.
      const std::string line = std::to_string(k) + "\n";
      if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) return 1;
      if (pause_us > 0) ::usleep(static_cast<useconds_t>(pause_us));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_crash_writer: %s\n", e.what());
    return 1;
  }
  return 0;
}
