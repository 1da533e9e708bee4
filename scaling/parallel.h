// A minimal parallel-for over an index range with std::thread: the multi-start grid and the
// bootstrap are embarrassingly parallel, and results must not depend on the thread count, so
// each index is processed independently (any randomness is seeded from the index) and written to
// its own output slot.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace scaletune::scaling {

// Number of worker threads to use when the caller asks for `requested` (0 = all hardware threads).
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls body(i) for i in [0, n) on up to `threads` threads. Indices are handed out dynamically in
// small chunks (fits from different starts take very different numbers of iterations). The first
// exception thrown by a body is rethrown on the calling thread after all workers stop.
template <class Body>
void parallel_for(std::size_t n, int threads, Body&& body) {
  const std::size_t workers =
      std::min<std::size_t>(n, static_cast<std::size_t>(std::max(1, threads)));
  if (workers <= 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  const std::size_t chunk = std::max<std::size_t>(1, n / (workers * 16));
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (;;) {
      const std::size_t begin = next.fetch_add(chunk);
      if (begin >= n) return;
      const std::size_t end = std::min(n, begin + chunk);
      try {
        for (std::size_t i = begin; i < end; ++i) body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(n);
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (std::size_t t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace scaletune::scaling
