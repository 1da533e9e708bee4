#include "orchestrator/sweep/mpi_transport.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace scaletune::sweep {
namespace {

constexpr int kTag = 7001;
constexpr std::chrono::microseconds kFirstPoll(50);
constexpr std::chrono::microseconds kLongestPoll(1000);  // within kRecent of traffic
constexpr std::chrono::microseconds kLongestQuietPoll(5000);
constexpr std::chrono::milliseconds kRecent(100);

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw std::runtime_error(std::string(what) +
                           " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) check(MPI_Init(argc, argv), "MPI_Init");
  // Errors come back as codes (turned into exceptions) instead of aborting the whole job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

MpiTransport::MpiTransport(MPI_Comm comm) : comm_(comm), interval_(kFirstPoll) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiTransport::~MpiTransport() {
  try {
    flush();
  } catch (...) {
  }
}

void MpiTransport::send(int to, const nlohmann::json& message) {
  if (to < 0 || to >= size_) throw std::out_of_range("no rank " + std::to_string(to));
  pending_.push_back({message.dump(), MPI_REQUEST_NULL});
  PendingSend& p = pending_.back();
  check(MPI_Isend(p.data.data(), static_cast<int>(p.data.size()), MPI_CHAR, to, kTag, comm_,
                  &p.request),
        "MPI_Isend");
  progress();
  interval_ = kFirstPoll;
  last_traffic_ = std::chrono::steady_clock::now();
}

std::chrono::microseconds MpiTransport::poll_interval() {
  const std::chrono::microseconds now = interval_;
  const bool recent = std::chrono::steady_clock::now() - last_traffic_ < kRecent;
  interval_ = std::min(interval_ * 2, recent ? kLongestPoll : kLongestQuietPoll);
  return now;
}

void MpiTransport::progress() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    check(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done ? pending_.erase(it) : std::next(it);
  }
}

void MpiTransport::flush() {
  for (auto& p : pending_) check(MPI_Wait(&p.request, MPI_STATUS_IGNORE), "MPI_Wait");
  pending_.clear();
}

std::optional<Envelope> MpiTransport::try_receive() {
  progress();
  int flag = 0;
  MPI_Status status;
  check(MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm_, &flag, &status), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  interval_ = kFirstPoll;
  last_traffic_ = std::chrono::steady_clock::now();
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::vector<char> buffer(static_cast<std::size_t>(count));
  check(MPI_Recv(buffer.data(), count, MPI_CHAR, status.MPI_SOURCE, kTag, comm_, MPI_STATUS_IGNORE),
        "MPI_Recv");
  Envelope e;
  e.from = status.MPI_SOURCE;
  e.message = nlohmann::json::parse(buffer.begin(), buffer.end());
  return e;
}

}  // namespace scaletune::sweep
