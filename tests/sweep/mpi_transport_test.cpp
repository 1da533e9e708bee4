// The transport contract over MPI. Run under mpirun with >= 2 ranks (ctest does, label mpi);
// every rank runs every test.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "orchestrator/sweep/mpi_transport.h"
#include "tests/sweep/transport_scenarios.h"

namespace scaletune::sweep {
namespace {

TEST(MpiTransport, EchoScenario) {
  MpiTransport t;
  ASSERT_GE(t.size(), 2) << "run under mpirun -np 2 or more";
  test::echo_scenario(t);
  t.flush();
  MPI_Barrier(MPI_COMM_WORLD);
}

// No descriptor shows an MPI message: waiters probe again after short intervals that start at
// 50 us after traffic and double while nothing arrives, up to 1 ms, then 5 ms once quiet.
TEST(MpiTransport, PollIntervalGrowsWhileQuietAndRestartsAfterTraffic) {
  MpiTransport t;
  ASSERT_GE(t.size(), 2);
  EXPECT_TRUE(t.wait_fds().empty());
  if (t.rank() == 1) t.send(0, {{"type", "x"}});
  if (t.rank() == 0) {
    std::vector<long> seen;
    for (int i = 0; i < 7; ++i) seen.push_back(static_cast<long>(t.poll_interval().count()));
    EXPECT_EQ(seen, (std::vector<long>{50, 100, 200, 400, 800, 1000, 1000}));
    const Envelope e = test::receive_blocking(t);
    EXPECT_EQ(e.from, 1);
    EXPECT_EQ(t.poll_interval().count(), 50);
    t.poll_interval();
    t.send(1, {{"type", "y"}});
    EXPECT_EQ(t.poll_interval().count(), 50);
    // After 100 ms without traffic the interval may grow to 5 ms (~200 probes a second).
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    long last = 0;
    for (int i = 0; i < 9; ++i) last = static_cast<long>(t.poll_interval().count());
    EXPECT_EQ(last, 5000);
  }
  if (t.rank() == 1) {
    EXPECT_EQ(test::receive_blocking(t).message["type"], "y");
  }
  t.flush();
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace scaletune::sweep

int main(int argc, char** argv) {
  scaletune::sweep::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Only rank 0 prints the test report; failures on any rank fail the run (exit code).
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
