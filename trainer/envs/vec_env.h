// The vectorized environment interface: N copies of one environment stepped together over
// buffers the caller owns (PufferLib-style). What it is not: a Gym clone with spaces, wrappers and
// info dicts; observations are float32, actions int64 (discrete) or float32 (continuous).
//
// Contract (tests/envs/vec_env_test.cpp runs it against every environment):
//   reset(seed, b)  seeds environment i from (seed, i), resets all, writes b.observations.
//   step(b)         reads the actions, writes observations, rewards, terminations, truncations.
//                   An environment whose episode ended resets itself in the same call, so the
//                   observation written for it is the first of the next episode (Gymnasium's
//                   vector auto-reset, as CleanRL's PPO consumes it). With final_observations
//                   set, the last observation of that episode goes there (Gymnasium's
//                   final_obs), e.g. to bootstrap the value of a truncated episode.
//   Episode statistics (return, length of every finished episode) accumulate in place.
// No heap allocation after construction; every environment owns its RNG state.
//
// Torch-free on purpose: the environments are plain C++ and usable without LibTorch.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace scaletune::envs {

// What an environment looks like to a policy.
struct EnvSpec {
  std::string name;
  int obs_dim = 0;
  bool discrete = true;
  int num_actions = 0;        // discrete: actions are 0 .. num_actions-1
  int action_dim = 0;         // continuous: length of one action vector
  float action_low = 0.0f;    // continuous: bounds the environment clips to
  float action_high = 0.0f;   //
  int max_episode_steps = 0;  // truncation limit
};

// Caller-owned buffers for one reset/step of N environments (row-major).
struct VecBuffers {
  float* observations = nullptr;                   // (N, obs_dim)       written
  const std::int64_t* discrete_actions = nullptr;  // (N)                read (discrete envs)
  const float* continuous_actions = nullptr;       // (N, action_dim)    read (continuous envs)
  float* rewards = nullptr;                        // (N)                written by step
  std::uint8_t* terminations = nullptr;            // (N) 1 = terminal state reached
  std::uint8_t* truncations = nullptr;             // (N) 1 = time limit hit
  float* final_observations = nullptr;  // (N, obs_dim) optional; written by step only for the
                                        // environments whose episode ended, before the reset
};

// Finished episodes since the last take_stats().
struct EpisodeStats {
  std::int64_t episodes = 0;
  double return_sum = 0.0;
  double length_sum = 0.0;
  double mean_return() const {
    return episodes ? return_sum / static_cast<double>(episodes)
                    : std::numeric_limits<double>::quiet_NaN();
  }
  double mean_length() const {
    return episodes ? length_sum / static_cast<double>(episodes)
                    : std::numeric_limits<double>::quiet_NaN();
  }
};

// SplitMix64 (Steele, Lea & Flood 2014): one 64-bit word of state, passes BigCrush, and seeding
// it from any integer is safe, which is what per-environment streams need.
struct Rng {
  std::uint64_t state = 0;
  explicit Rng(std::uint64_t seed = 0) : state(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi) with 53 random bits.
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53;
  }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64).
  std::uint64_t below(std::uint64_t n) {
    __extension__ typedef unsigned __int128 U128;  // GCC/Clang builtin; pedantic-clean
    return static_cast<std::uint64_t>((static_cast<U128>(next()) * n) >> 64);
  }
};

// A well-mixed seed for stream `index` of `seed` (environment i of a run, level id, rank).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index) {
  Rng a(seed ^ 0xD1B54A32D192ED03ull);
  a.state += index * 0x8CB92BA72F3D8DD7ull;
  return a.next();
}

class VecEnv {
 public:
  explicit VecEnv(int num_envs)
      : num_envs_(num_envs), episode_return_(num_envs, 0.0), episode_length_(num_envs, 0) {}
  virtual ~VecEnv() = default;
  VecEnv(const VecEnv&) = delete;
  VecEnv& operator=(const VecEnv&) = delete;

  virtual const EnvSpec& spec() const = 0;
  virtual void reset(std::uint64_t seed, const VecBuffers& b) = 0;
  virtual void step(const VecBuffers& b) = 0;

  int num_envs() const { return num_envs_; }
  const EpisodeStats& stats() const { return stats_; }
  // Returns the statistics gathered since the last call and starts a new window.
  EpisodeStats take_stats() {
    EpisodeStats s = stats_;
    stats_ = EpisodeStats{};
    return s;
  }

 protected:
  // Adds one step of environment i to its running episode; closes the episode when it ended.
  void record(int i, float reward, bool done) {
    episode_return_[i] += reward;
    episode_length_[i] += 1;
    if (done) {
      stats_.episodes += 1;
      stats_.return_sum += episode_return_[i];
      stats_.length_sum += static_cast<double>(episode_length_[i]);
      episode_return_[i] = 0.0;
      episode_length_[i] = 0;
    }
  }
  void clear_episodes() {
    for (int i = 0; i < num_envs_; ++i) {
      episode_return_[i] = 0.0;
      episode_length_[i] = 0;
    }
  }

  int num_envs_;

 private:
  std::vector<double> episode_return_;
  std::vector<std::int64_t> episode_length_;
  EpisodeStats stats_;
};

}  // namespace scaletune::envs
