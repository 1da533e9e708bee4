// The agent with real child processes: results, crashes, timeouts, multi-rank trials, stops.
#include "orchestrator/sweep/agent.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace scaletune::sweep {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("scaletune-agent-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    AgentOptions o;
    o.host = "localhost";
    for (int i = 0; i < 3; ++i) o.slots.push_back({i, "cpu", -1});
    o.self_exe = "/bin/sh";
    o.timeout_grace_seconds = 0.5;
    o.failure_grace_seconds = 0.5;
    agent_ = std::make_unique<Agent>(o, [this](const nlohmann::json& m) { sent_.push_back(m); });
  }

  LaunchTrial shell_trial(std::int64_t id, const std::string& script, int ranks = 1) {
    LaunchTrial m;
    m.trial = id;
    m.world_size = ranks;
    for (int r = 0; r < ranks; ++r) m.ranks.push_back({r, r, r});
    m.argv = {"@scaletune", "-c", script};
    m.dir = (dir_ / ("trial" + std::to_string(id))).string();
    m.threads = 2;
    return m;
  }

  // Polls until a message of `type` for `trial` arrives; returns it.
  nlohmann::json wait_for(const std::string& type, std::int64_t trial, double seconds = 20) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      agent_->poll();
      for (const auto& m : sent_)
        if (m["type"] == type && (!m.contains("trial") || m["trial"] == trial)) return m;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "no '" << type << "' for trial " << trial;
    return {};
  }

  fs::path dir_;
  std::vector<nlohmann::json> sent_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentTest, RunsATrialAndReturnsItsResult) {
  setenv("OMPI_COMM_WORLD_RANK", "3", 1);  // as under mpirun: must not leak into trials
  LaunchTrial m = shell_trial(
      1,
      "printf "
      "'{\"rank\":\"%s\",\"world\":\"%s\",\"threads\":\"%s\",\"cuda\":\"%s\",\"ompi\":\"%s\","
      "\"cfg\":\"%s\"}' \"$RANK\" \"$WORLD_SIZE\" \"$OMP_NUM_THREADS\" "
      "\"${CUDA_VISIBLE_DEVICES-unset}\" "
      "\"${OMPI_COMM_WORLD_RANK:-none}\" \"$(cat config.yaml)\" > result.json");
  m.config_file = "config.yaml";
  m.config_text = "lr: 0.1";
  agent_->handle(encode(m));
  EXPECT_EQ(agent_->free_slots(), 2u);
  const auto ended = decode_ended(wait_for("ended", 1));
  unsetenv("OMPI_COMM_WORLD_RANK");
  ASSERT_EQ(ended.ranks.size(), 1u);
  EXPECT_EQ(ended.ranks[0].code, 0);
  ASSERT_TRUE(ended.result.has_value());
  const auto& r = *ended.result;
  EXPECT_EQ(r["rank"], "0");
  EXPECT_EQ(r["world"], "1");
  EXPECT_EQ(r["threads"], "2");
  EXPECT_EQ(r["cuda"], "");  // CPU slots see no GPU
  EXPECT_EQ(r["ompi"], "none");
  EXPECT_EQ(r["cfg"], "lr: 0.1");
  EXPECT_FALSE(ended.timed_out);
  EXPECT_EQ(agent_->free_slots(), 3u);
  EXPECT_EQ(ended.log_path, m.dir + "/rank0.log");
}

TEST_F(AgentTest, CrashIsReportedNotFatal) {
  agent_->handle(encode(shell_trial(2, "echo dying; kill -SEGV $$")));
  const auto ended = decode_ended(wait_for("ended", 2));
  EXPECT_EQ(ended.ranks[0].signal, SIGSEGV);
  EXPECT_FALSE(ended.result.has_value());
  std::ifstream log(ended.log_path);
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line, "dying");
}

TEST_F(AgentTest, HangPastTimeoutIsStopped) {
  LaunchTrial m = shell_trial(3, "sleep 60");
  m.timeout_seconds = 0.3;
  agent_->handle(encode(m));
  const auto ended = decode_ended(wait_for("ended", 3));
  EXPECT_TRUE(ended.timed_out);
  EXPECT_EQ(ended.ranks[0].signal, SIGTERM);
}

TEST_F(AgentTest, MultiRankTrialGetsRendezvous) {
  LaunchTrial m = shell_trial(
      4,
      "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT\" > rank$RANK.txt; "
      "[ \"$RANK\" = 0 ] && echo '{}' > result.json; exit 0",
      3);
  agent_->handle(encode(m));
  const auto launched = decode_launched(wait_for("launched", 4));
  EXPECT_EQ(launched.master_addr, "localhost");
  EXPECT_GT(launched.master_port, 0);
  const auto ended = decode_ended(wait_for("ended", 4));
  ASSERT_EQ(ended.ranks.size(), 3u);
  for (int r = 0; r < 3; ++r) {
    std::ifstream in(m.dir + "/rank" + std::to_string(r) + ".txt");
    int rank = -1, local = -1, world = -1, port = -1;
    std::string addr;
    in >> rank >> local >> world >> addr >> port;
    EXPECT_EQ(rank, r);
    EXPECT_EQ(local, r);
    EXPECT_EQ(world, 3);
    EXPECT_EQ(addr, "localhost");
    EXPECT_EQ(port, launched.master_port);
  }
}

TEST_F(AgentTest, OneFailingRankStopsTheOthers) {
  agent_->handle(encode(shell_trial(5, "[ \"$RANK\" = 1 ] && exit 9; sleep 60", 2)));
  const auto ended = decode_ended(wait_for("ended", 5));
  ASSERT_EQ(ended.ranks.size(), 2u);
  EXPECT_EQ(ended.ranks[1].code, 9);
  EXPECT_EQ(ended.ranks[0].signal, SIGTERM);
  EXPECT_FALSE(ended.stop_requested);
}

TEST_F(AgentTest, StopRequestSignalsTheTrial) {
  agent_->handle(encode(shell_trial(6, "trap 'exit 4' TERM; sleep 60 & wait")));
  std::this_thread::sleep_for(100ms);
  agent_->handle(encode(StopTrial{6, 0, SIGTERM, 5}));
  const auto ended = decode_ended(wait_for("ended", 6));
  EXPECT_TRUE(ended.stop_requested);
  EXPECT_EQ(ended.ranks[0].code, 4);  // the trial's own "interrupted" exit
}

TEST_F(AgentTest, LaunchFailures) {
  LaunchTrial missing = shell_trial(7, "true");
  missing.argv = {"no-such-program-xyz"};
  agent_->handle(encode(missing));
  EXPECT_NE(decode_launch_failed(wait_for("launch_failed", 7)).reason.find("not found"),
            std::string::npos);
  EXPECT_EQ(agent_->free_slots(), 3u);

  agent_->handle(encode(shell_trial(8, "sleep 60")));
  agent_->handle(encode(shell_trial(9, "true")));  // wants slot 0, which trial 8 holds
  EXPECT_NE(decode_launch_failed(wait_for("launch_failed", 9)).reason.find("busy"),
            std::string::npos);
  LaunchTrial bad_slot = shell_trial(10, "true");
  bad_slot.ranks[0].slot = 7;
  agent_->handle(encode(bad_slot));
  EXPECT_NE(decode_launch_failed(wait_for("launch_failed", 10)).reason.find("does not exist"),
            std::string::npos);
  EXPECT_THROW(agent_->handle({{"type", "hello"}}), std::invalid_argument);
  EXPECT_THROW(agent_->handle({{"type", "launch"}}), std::invalid_argument);
}

TEST_F(AgentTest, StaleResultFromAnEarlierAttemptIsRemoved) {
  LaunchTrial m = shell_trial(11, "exit 1");
  fs::create_directories(m.dir);
  std::ofstream(m.dir + "/result.json") << "{\"status\":\"ok\"}";
  agent_->handle(encode(m));
  EXPECT_FALSE(decode_ended(wait_for("ended", 11)).result.has_value());
}

TEST_F(AgentTest, MalformedResultIsReported) {
  agent_->handle(encode(shell_trial(12, "echo '{not json' > result.json")));
  const auto ended = decode_ended(wait_for("ended", 12));
  EXPECT_FALSE(ended.result.has_value());
  EXPECT_NE(ended.result_error.find("not valid JSON"), std::string::npos);
}

TEST_F(AgentTest, ShutdownStopsEverythingAndSaysBye) {
  agent_->handle(encode(shell_trial(13, "sleep 60")));
  agent_->handle(encode(Shutdown{SIGTERM, 5}));
  const auto ended = decode_ended(wait_for("ended", 13));
  EXPECT_TRUE(ended.stop_requested);
  wait_for("bye", 0);
  EXPECT_TRUE(agent_->finished());
  LaunchTrial late = shell_trial(14, "true");
  agent_->handle(encode(late));
  EXPECT_NE(decode_launch_failed(wait_for("launch_failed", 14)).reason.find("shutting down"),
            std::string::npos);
}

// The agent's loop sleeps on the ranks' pidfds: each is quiet while its rank runs and readable
// once it has exited, so the loop wakes for a trial's end instead of polling for it.
TEST_F(AgentTest, RanksPidfdsWakeTheLoopWhenTheyExit) {
  EXPECT_GE(agent_->poll_within(), std::chrono::microseconds(std::chrono::hours(1)));
  LaunchTrial m = shell_trial(20, "sleep 60");
  m.timeout_seconds = 100;
  agent_->handle(encode(m));
  const std::vector<int> fds = agent_->wait_fds();
  if (fds.empty()) GTEST_SKIP() << "no pidfd_open on this kernel (the agent polls every ms)";
  ASSERT_EQ(fds.size(), 1u);
  // Next due: the memory sample (0.5 s by default), well before the 100 s timeout.
  EXPECT_LE(agent_->poll_within(), std::chrono::microseconds(500ms));
  pollfd p{fds[0], POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "readable while the rank runs";
  agent_->handle(encode(StopTrial{20, 0, SIGKILL, 0}));
  EXPECT_EQ(poll(&p, 1, 30000), 1) << "not readable after the rank was killed";
  agent_->poll();  // one poll after the wake-up reports the end
  ASSERT_FALSE(sent_.empty());
  EXPECT_EQ(sent_.back()["type"], "ended");
  EXPECT_EQ(decode_ended(sent_.back()).ranks[0].signal, SIGKILL);
  EXPECT_TRUE(agent_->wait_fds().empty());
}

// A stop's SIGKILL escalation and a timeout are deadlines the loop must not sleep through.
TEST_F(AgentTest, PollWithinCoversTimeoutsAndStopGracePeriods) {
  LaunchTrial m = shell_trial(21, "trap '' TERM; sleep 60 & wait; sleep 60");
  m.timeout_seconds = 0.2;
  agent_->handle(encode(m));
  EXPECT_LE(agent_->poll_within(), std::chrono::microseconds(200ms));
  // It ignores SIGTERM: the agent must SIGKILL it after the 0.5 s timeout grace.
  const auto ended = decode_ended(wait_for("ended", 21));
  EXPECT_TRUE(ended.timed_out);
  EXPECT_EQ(ended.ranks[0].signal, SIGKILL);
}

TEST(Messages, RoundTrip) {
  LaunchTrial m;
  m.trial = 3;
  m.attempt = 1;
  m.world_size = 2;
  m.ranks = {{0, 0, 1}, {1, 1, 2}};
  m.argv = {"@scaletune", "train"};
  m.env = {{"A", "b"}};
  m.timeout_seconds = 5;
  const LaunchTrial back = decode_launch(nlohmann::json::parse(encode(m).dump()));
  EXPECT_EQ(back.trial, 3);
  EXPECT_EQ(back.ranks[1].slot, 2);
  EXPECT_EQ(back.env.at("A"), "b");
  TrialEnded e;
  e.result = nlohmann::json{{"status", "ok"}};
  e.ranks = {{0, -1, 9}};
  const TrialEnded e2 = decode_ended(encode(e));
  EXPECT_EQ(e2.result->at("status"), "ok");
  EXPECT_EQ(e2.ranks[0].signal, 9);
  EXPECT_THROW(decode_ended(encode(m)), std::invalid_argument);
  EXPECT_THROW(message_type(nlohmann::json::array()), std::invalid_argument);
}

}  // namespace
}  // namespace scaletune::sweep
