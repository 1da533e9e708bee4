// The transport contract on the in-process hub: every rank runs in its own thread.
#include <gtest/gtest.h>

#include <poll.h>

#include <chrono>
#include <thread>

#include "orchestrator/sweep/events.h"
#include "orchestrator/sweep/transport.h"
#include "tests/sweep/transport_scenarios.h"

namespace scaletune::sweep {
namespace {

TEST(LocalHubTransport, EchoScenario) {
  LocalHub hub(4);
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&hub, r] {
      auto t = hub.endpoint(r);
      test::echo_scenario(*t);
    });
  }
  for (auto& th : threads) th.join();
}

// An endpoint's descriptor is readable exactly while it has a message, so a waiting loop sleeps
// in poll() until a message comes (events.h).
TEST(LocalHubTransport, WaitDescriptorIsReadableWhileMessagesWait) {
  LocalHub hub(2);
  auto a = hub.endpoint(0);
  auto b = hub.endpoint(1);
  ASSERT_EQ(b->wait_fds().size(), 1u);
  EXPECT_EQ(b->poll_interval().count(), 0);  // the descriptor shows every message
  pollfd p{b->wait_fds()[0], POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  a->send(1, {{"type", "x"}, {"i", 1}});
  a->send(1, {{"type", "x"}, {"i", 2}});
  EXPECT_EQ(poll(&p, 1, 0), 1);
  EXPECT_EQ(b->try_receive()->message["i"], 1);
  EXPECT_EQ(poll(&p, 1, 0), 1) << "one message still waits";
  EXPECT_EQ(b->try_receive()->message["i"], 2);
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_FALSE(b->try_receive().has_value());

  // A sender in another thread wakes a receiver blocked in wait_for_events.
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    a->send(1, {{"type", "late"}});
  });
  wait_for_events(*b, {}, std::chrono::hours(1));
  const auto e = b->try_receive();
  sender.join();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message["type"], "late");
}

TEST(LocalHubTransport, RejectsUnknownRanks) {
  LocalHub hub(2);
  EXPECT_THROW(hub.endpoint(2), std::out_of_range);
  auto t = hub.endpoint(0);
  EXPECT_THROW(t->send(5, {{"type", "x"}}), std::out_of_range);
  EXPECT_EQ(t->size(), 2);
}

}  // namespace
}  // namespace scaletune::sweep
