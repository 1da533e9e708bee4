// The PPO trainer in LibTorch (see ppo.h). The only translation unit of trainer/ppo that includes
// <torch/torch.h>. Reads top to bottom: networks, distributions, normalisers, the loss, evaluation,
// then train_ppo itself (setup, the update loop, the result).
#include "trainer/ppo/ppo.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "trainer/core/run_support.h"
#include "trainer/dist/comm.h"
#include "trainer/envs/make_env.h"
#include "trainer/ppo/gae.h"
#include "trainer/ppo/running_stats.h"

namespace scaletune::trainer {
namespace {

using torch::Tensor;
constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)

// ---- networks -------------------------------------------------------------------------------

// Linear layer with CleanRL's layer_init: orthogonal weights with gain `std`, zero bias.
torch::nn::Linear layer(int64_t in, int64_t out, double std) {
  torch::nn::Linear l(in, out);
  torch::NoGradGuard no_grad;
  torch::nn::init::orthogonal_(l->weight, std);
  torch::nn::init::constant_(l->bias, 0.0);
  return l;
}

// Hidden layers (Linear + activation) x layers, optionally followed by an output layer.
torch::nn::Sequential mlp(int64_t in, const PpoModelConfig& m, int64_t out, double out_std) {
  torch::nn::Sequential seq;
  int64_t width = in;
  for (int k = 0; k < m.layers; ++k) {
    seq->push_back(layer(width, m.hidden, std::sqrt(2.0)));
    if (m.activation == "relu") {
      seq->push_back(torch::nn::ReLU());
    } else {
      seq->push_back(torch::nn::Tanh());
    }
    width = m.hidden;
  }
  if (out > 0) seq->push_back(layer(width, out, out_std));
  return seq;
}

// Actor and critic: two MLPs (CleanRL's Agent) or one trunk with two heads.
struct AgentImpl : torch::nn::Module {
  AgentImpl(const envs::EnvSpec& spec, const PpoModelConfig& m)
      : discrete(spec.discrete), shared(m.shared) {
    const int64_t out = spec.discrete ? spec.num_actions : spec.action_dim;
    if (shared) {
      trunk = register_module("trunk", mlp(spec.obs_dim, m, 0, 0.0));
      actor_head = register_module("actor_head", layer(m.hidden, out, 0.01));
      critic_head = register_module("critic_head", layer(m.hidden, 1, 1.0));
    } else {
      actor = register_module("actor", mlp(spec.obs_dim, m, out, 0.01));
      critic = register_module("critic", mlp(spec.obs_dim, m, 1, 1.0));
    }
    if (!discrete)
      log_std = register_parameter("log_std", torch::full({1, spec.action_dim}, m.init_log_std));
  }

  // (policy output: logits or Gaussian mean (B, A), value (B))
  std::pair<Tensor, Tensor> forward(const Tensor& obs) {
    if (shared) {
      const Tensor h = trunk->forward(obs);
      return {actor_head->forward(h), critic_head->forward(h).view({-1})};
    }
    return {actor->forward(obs), critic->forward(obs).view({-1})};
  }
  Tensor value(const Tensor& obs) {
    if (shared) return critic_head->forward(trunk->forward(obs)).view({-1});
    return critic->forward(obs).view({-1});
  }

  bool discrete, shared;
  torch::nn::Sequential actor{nullptr}, critic{nullptr}, trunk{nullptr};
  torch::nn::Linear actor_head{nullptr}, critic_head{nullptr};
  Tensor log_std;
};
TORCH_MODULE(Agent);

// ---- distributions --------------------------------------------------------------------------

struct ActionSample {
  Tensor action;    // (B) int64 or (B, A) float
  Tensor log_prob;  // (B)
};

// Samples (or takes the mode of) the policy at `out`, drawing from `gen` (a CPU generator, with
// `out` on the CPU) or, when there is none, from LibTorch's default generator as training does.
ActionSample sample(Agent& agent, const Tensor& out, bool deterministic,
                    const c10::optional<at::Generator>& gen = c10::nullopt) {
  if (agent->discrete) {
    const Tensor logp = torch::log_softmax(out, -1);  // (B, A)
    const Tensor a = deterministic ? out.argmax(-1, true)
                                   : torch::multinomial(logp.exp(), 1, /*replacement=*/true, gen);
    return {a.view({-1}), logp.gather(1, a).view({-1})};
  }
  const Tensor log_std = agent->log_std.to(out.device()).expand_as(out);
  const Tensor noise = gen ? torch::randn(out.sizes(), gen, out.options()) : torch::randn_like(out);
  const Tensor a = deterministic ? out : out + log_std.exp() * noise;
  const Tensor z = (a - out) * torch::exp(-log_std);
  return {a, (-0.5 * z * z - log_std - 0.5 * kLog2Pi).sum(-1)};
}

// log pi(a | s) and the entropy of pi(. | s), both (B), differentiable.
std::pair<Tensor, Tensor> log_prob_entropy(Agent& agent, const Tensor& out, const Tensor& action) {
  if (agent->discrete) {
    const Tensor logp = torch::log_softmax(out, -1);
    const Tensor lp = logp.gather(1, action.view({-1, 1})).view({-1});
    return {lp, -(logp.exp() * logp).sum(-1)};
  }
  const Tensor log_std = agent->log_std.expand_as(out);
  const Tensor z = (action - out) * torch::exp(-log_std);
  const Tensor lp = (-0.5 * z * z - log_std - 0.5 * kLog2Pi).sum(-1);
  return {lp, (0.5 + 0.5 * kLog2Pi + log_std).sum(-1)};
}

// ---- the loss -------------------------------------------------------------------------------

struct Losses {
  Tensor pg_loss, v_loss, entropy_loss;       // differentiable scalars
  Tensor approx_kl, old_approx_kl, clipfrac;  // detached scalars
};

// Schulman et al. 2017, eq. 7 (clipped surrogate), with CleanRL's clipped value loss.
Losses ppo_losses(const Tensor& new_logprob, const Tensor& old_logprob, Tensor adv,
                  const Tensor& new_value, const Tensor& old_value, const Tensor& returns,
                  const Tensor& entropy, double clip, bool clip_vloss, bool norm_adv) {
  Losses l;
  const Tensor logratio = new_logprob - old_logprob;
  const Tensor ratio = logratio.exp();
  {
    torch::NoGradGuard no_grad;
    // Schulman's unbiased estimator k3 of KL(old || new) (http://joschu.net/blog/kl-approx.html).
    l.old_approx_kl = (-logratio).mean();
    l.approx_kl = ((ratio - 1) - logratio).mean();
    l.clipfrac = ((ratio - 1.0).abs() > clip).to(torch::kFloat).mean();
  }
  if (norm_adv) adv = (adv - adv.mean()) / (adv.std() + 1e-8);
  const Tensor pg1 = -adv * ratio;
  const Tensor pg2 = -adv * torch::clamp(ratio, 1 - clip, 1 + clip);
  l.pg_loss = torch::max(pg1, pg2).mean();
  if (clip_vloss) {
    const Tensor unclipped = (new_value - returns).pow(2);
    const Tensor clipped =
        (old_value + torch::clamp(new_value - old_value, -clip, clip) - returns).pow(2);
    l.v_loss = 0.5 * torch::max(unclipped, clipped).mean();
  } else {
    l.v_loss = 0.5 * (new_value - returns).pow(2).mean();
  }
  l.entropy_loss = entropy.mean();
  return l;
}

// ---- evaluation -----------------------------------------------------------------------------

struct EvalResult {
  double return_sum = 0;
  double episodes = 0;
  double steps = 0;
};

// One episode in each of `episodes` environments seeded from `seed`, policy frozen; returns are
// summed over the first episode of each environment only (fixed start states, no length bias).
// Actions are drawn from a generator of its own seeded from `seed` (on the CPU), so evaluating
// never moves the training's random stream: eval.points / eval.every do not change the run, and
// the same weights score the same on the same seeds.
EvalResult evaluate(Agent& agent, const envs::EnvConfig& env_config, envs::LevelSet set,
                    std::uint64_t seed, int episodes, bool deterministic,
                    const RunningMeanStd* obs_rms, double clip_obs, const torch::Device& device) {
  EvalResult r;
  if (episodes <= 0) return r;
  torch::NoGradGuard no_grad;
  auto env = envs::make_vec_env(env_config, episodes, set);
  const envs::EnvSpec& spec = env->spec();
  Tensor obs = torch::zeros({episodes, spec.obs_dim});
  Tensor action = spec.discrete ? torch::zeros({episodes}, torch::kLong)
                                : torch::zeros({episodes, spec.action_dim});
  std::vector<float> rewards(episodes);
  std::vector<std::uint8_t> terms(episodes), truncs(episodes), finished(episodes, 0);
  std::vector<double> ret(episodes, 0.0);
  envs::VecBuffers b;
  b.observations = obs.data_ptr<float>();
  if (spec.discrete) {
    b.discrete_actions = action.data_ptr<int64_t>();
  } else {
    b.continuous_actions = action.data_ptr<float>();
  }
  b.rewards = rewards.data();
  b.terminations = terms.data();
  b.truncations = truncs.data();
  env->reset(seed, b);
  const c10::optional<at::Generator> gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  int left = episodes;
  while (left > 0) {
    if (obs_rms) obs_rms->normalize(obs.data_ptr<float>(), episodes, clip_obs);
    const auto out = agent->forward(obs.to(device));
    action.copy_(sample(agent, out.first.to(torch::kCPU), deterministic, gen).action);
    env->step(b);
    r.steps += left;
    for (int i = 0; i < episodes; ++i) {
      if (finished[i]) continue;
      ret[i] += rewards[i];
      if (terms[i] || truncs[i]) {
        finished[i] = 1;
        --left;
        r.return_sum += ret[i];
        r.episodes += 1;
      }
    }
  }
  return r;
}

// The share of `total` items rank `rank` of `world` takes.
int share(int total, int rank, int world) { return total / world + (rank < total % world ? 1 : 0); }

// Sums `values` over ranks in place (no-op for one process). On the training device, because
// NCCL reduces only CUDA tensors.
void allreduce_sum(dist::Communicator* comm, const torch::Device& device,
                   std::vector<double>& values) {
  if (!comm || comm->size() == 1) return;
  Tensor t = torch::tensor(values, torch::kDouble).to(device);
  comm->allreduce_sum(t);
  t = t.to(torch::kCPU).contiguous();
  std::copy(t.data_ptr<double>(), t.data_ptr<double>() + t.numel(), values.begin());
}

// allreduce_running_stats (ppo.h). A sum over a buffer in which every rank fills only its own row
// is an exact all-gather (x + 0 == x), so every rank folds bit-identical parts in the same order.
void sync_stats(dist::Communicator* comm, const torch::Device& device,
                const std::vector<StatsPair>& stats) {
  const int world = comm ? comm->size() : 1;
  const int rank = comm ? comm->rank() : 0;
  size_t row = 0;
  for (const auto& s : stats) row += 1 + 2 * static_cast<size_t>(s.fresh->dim());
  std::vector<double> all(row * static_cast<size_t>(world), 0.0);
  size_t at = row * static_cast<size_t>(rank);
  for (const auto& s : stats) {
    all[at++] = s.fresh->count;
    for (double m : s.fresh->mean) all[at++] = m;
    for (double v : s.fresh->var) all[at++] = v;
  }
  allreduce_sum(comm, device, all);
  at = 0;
  for (int r = 0; r < world; ++r) {
    for (const auto& s : stats) {
      RunningMeanStd part = RunningMeanStd::Empty(s.fresh->dim());
      part.count = all[at++];
      for (double& m : part.mean) m = all[at++];
      for (double& v : part.var) v = all[at++];
      s.shared->merge(part);
    }
  }
  for (const auto& s : stats) *s.fresh = RunningMeanStd::Empty(s.fresh->dim());
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  }
  return buf;
}

// ---- the trainer ----------------------------------------------------------------------------

void run(const PpoConfig& cfg, dist::Communicator* comm, int local_rank, TrainResult& result,
         std::chrono::steady_clock::time_point t0) {
  const int rank = comm ? comm->rank() : 0;
  const int world = comm ? comm->size() : 1;
  const bool log = rank == 0;

  // 1. Setup: threads, device, environments, networks, optimizer, rollout storage.
  torch::set_num_threads(cfg.threads);
  bool cuda = cfg.device == "cuda" || (cfg.device == "auto" && torch::cuda::is_available());
  if (cuda && !torch::cuda::is_available()) {
    result.status = RunStatus::kFailed;
    result.reason = "device cuda requested but LibTorch sees no CUDA device; use device: cpu";
    return;
  }
  const torch::Device device =
      cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank))
           : torch::Device(torch::kCPU);
  result.info["device"] = device.str();

  const int T = cfg.num_steps, N = cfg.num_envs;
  const int64_t batch = static_cast<int64_t>(T) * N;  // per rank
  const int64_t minibatch = batch / cfg.num_minibatches;
  const int64_t num_updates =
      static_cast<int64_t>(cfg.total_timesteps / static_cast<double>(batch * world));
  if (num_updates < 1) {
    result.status = RunStatus::kFailed;
    result.reason = "total_timesteps is less than one rollout of all ranks (" +
                    std::to_string(batch * world) + " steps); raise total_timesteps";
    return;
  }
  const int64_t eval_every =
      cfg.eval.every > 0 ? cfg.eval.every : std::max<int64_t>(1, num_updates / cfg.eval.points);

  auto env = envs::make_vec_env(cfg.env, N, envs::LevelSet::kTrain);
  const envs::EnvSpec spec = env->spec();
  const int D = spec.obs_dim;
  const int A = spec.discrete ? 1 : spec.action_dim;

  torch::manual_seed(static_cast<uint64_t>(cfg.seed));  // same initial weights on every rank
  Agent agent(spec, cfg.model);
  agent->to(device);
  std::vector<Tensor> params = agent->parameters();
  if (world > 1) {
    // Identical already; broadcasting rank 0's weights makes it a guarantee.
    Tensor flat = torch::cat([&] {
      std::vector<Tensor> v;
      for (auto& p : params) v.push_back(p.detach().view({-1}));
      return v;
    }());
    comm->broadcast(flat, 0);
    torch::NoGradGuard no_grad;
    int64_t off = 0;
    for (auto& p : params) {
      p.copy_(flat.slice(0, off, off + p.numel()).view_as(p));
      off += p.numel();
    }
  }
  // Sampling differs per rank from here on.
  torch::manual_seed(envs::derive_seed(static_cast<uint64_t>(cfg.seed), 1000 + rank));
  torch::optim::Adam optimizer(params,
                               torch::optim::AdamOptions(cfg.learning_rate).eps(cfg.adam_eps));

  const PpoParamCount n_params = ppo_param_count(spec, cfg.model);
  int64_t counted = 0;
  for (auto& p : params) counted += p.numel();
  if (counted != n_params.total()) {
    throw std::logic_error("network has " + std::to_string(counted) +
                           " parameters, the closed form says " + std::to_string(n_params.total()));
  }

  result.metrics["params_policy"] = static_cast<double>(n_params.policy);
  result.metrics["params_value"] = static_cast<double>(n_params.value);

  // Rollout storage on the CPU: the environments write straight into it.
  Tensor obs = torch::zeros({T, N, D});
  Tensor next_obs = torch::zeros({N, D});
  Tensor actions = spec.discrete ? torch::zeros({T, N}, torch::kLong) : torch::zeros({T, N, A});
  Tensor logprobs = torch::zeros({T, N});
  Tensor rewards = torch::zeros({T, N});
  Tensor dones = torch::zeros({T, N});
  Tensor values = torch::zeros({T, N});
  Tensor advantages = torch::zeros({T, N});
  Tensor returns = torch::zeros({T, N});
  Tensor next_done = torch::zeros({N});
  std::vector<std::uint8_t> terms(N), truncs(N);
  Tensor final_obs = torch::zeros({N, D});  // bootstrap_truncated: last observation of an episode
  std::vector<int64_t> truncated_rows;
  truncated_rows.reserve(static_cast<size_t>(N));
  double bootstrapped = 0;  // truncated steps bootstrapped since the last curve point (this rank)
  std::vector<double> discounted(N, 0.0);  // reward normalisation's running return
  std::vector<float> discounted_f(N);      // the same as floats for the running variance
  // Normalisation statistics: what this rank normalises with. Data parallel, all ranks share
  // them: `*_shared` holds every rank's samples up to the last sync (identical on all ranks),
  // `*_fresh` this rank's samples since; once per rollout sync_normalisers() folds all ranks'
  // fresh parts into the shared statistics and every rank continues from those. A single process
  // updates obs_rms / ret_rms alone, exactly as Gymnasium's wrappers do.
  RunningMeanStd obs_rms(D), ret_rms(1);
  RunningMeanStd obs_shared(D), ret_shared(1);
  RunningMeanStd obs_fresh = RunningMeanStd::Empty(D), ret_fresh = RunningMeanStd::Empty(1);
  const bool share_stats = world > 1 && (cfg.norm_obs || cfg.norm_reward);
  auto observe = [&](RunningMeanStd& current, RunningMeanStd& fresh, const float* x, int rows) {
    current.update(x, rows);
    if (share_stats) fresh.update(x, rows);
  };
  auto sync_normalisers = [&] {
    if (!share_stats) return;
    std::vector<StatsPair> parts;
    if (cfg.norm_obs) parts.push_back({&obs_shared, &obs_fresh});
    if (cfg.norm_reward) parts.push_back({&ret_shared, &ret_fresh});
    sync_stats(comm, device, parts);
    obs_rms = obs_shared;
    ret_rms = ret_shared;
  };

  auto buffers = [&](float* obs_out, int t) {
    envs::VecBuffers b;
    b.observations = obs_out;
    if (spec.discrete) {
      b.discrete_actions = actions[t].data_ptr<int64_t>();
    } else {
      b.continuous_actions = actions[t].data_ptr<float>();
    }
    b.rewards = rewards[t].data_ptr<float>();
    b.terminations = terms.data();
    b.truncations = truncs.data();
    if (cfg.bootstrap_truncated) b.final_observations = final_obs.data_ptr<float>();
    return b;
  };
  const std::uint64_t tune_seed = static_cast<std::uint64_t>(cfg.seed);
  const std::uint64_t heldout_seed = cfg.eval.seed >= 0 ? static_cast<std::uint64_t>(cfg.eval.seed)
                                                        : envs::derive_seed(tune_seed, 0xE7A1);
  env->reset(envs::derive_seed(tune_seed, static_cast<uint64_t>(rank)),
             buffers(next_obs.data_ptr<float>(), 0));
  if (cfg.norm_obs) {
    observe(obs_rms, obs_fresh, next_obs.data_ptr<float>(), N);
    obs_rms.normalize(next_obs.data_ptr<float>(), N, cfg.clip_obs);
  }
  sync_normalisers();  // the first evaluation already normalises identically on every rank

  // Held-out (and tuning-seed) evaluation, summed over ranks.
  const int eval_local = share(cfg.eval.episodes, rank, world);
  double eval_steps = 0, eval_flops = 0;
  auto eval_mean = [&](envs::LevelSet set, std::uint64_t seed) {
    EvalResult r = evaluate(
        agent, cfg.env, set, envs::derive_seed(seed, static_cast<uint64_t>(rank)), eval_local,
        cfg.eval.deterministic, cfg.norm_obs ? &obs_rms : nullptr, cfg.clip_obs, device);
    std::vector<double> v{r.return_sum, r.episodes, r.steps};
    allreduce_sum(comm, device, v);
    eval_steps += v[2];
    eval_flops += 2.0 * static_cast<double>(n_params.total()) * v[2];
    return v[1] > 0 ? v[0] / v[1] : kNaN;
  };

  double global_step = 0, flops = 0;
  double train_episodes = 0;
  double last_train_return = kNaN;
  Losses last;
  double explained_variance = kNaN;
  double lr_now = cfg.learning_rate;
  auto add_point = [&](int64_t update, bool with_eval) {
    envs::EpisodeStats s = env->take_stats();
    std::vector<double> v{s.return_sum, static_cast<double>(s.episodes), bootstrapped};
    allreduce_sum(comm, device, v);
    train_episodes += v[1];
    flops += 2.0 * static_cast<double>(n_params.total()) * v[2];  // bootstrap values
    bootstrapped = 0;
    CurvePoint p;
    p.step = update;
    p.tokens = global_step;
    p.flops = flops;
    p.wall_seconds = seconds_since(t0);
    p.train_return = v[1] > 0 ? v[0] / v[1] : kNaN;
    if (v[1] > 0) last_train_return = p.train_return;
    if (with_eval) p.eval_return = eval_mean(envs::LevelSet::kEval, heldout_seed);
    if (last.pg_loss.defined())
      p.train_loss = (last.pg_loss - cfg.ent_coef * last.entropy_loss + cfg.vf_coef * last.v_loss)
                         .item<double>();
    result.curve.push_back(p);
  };
  add_point(0, true);

  // Diverged: settle the result, every rank has seen the same flag.
  auto diverge = [&](int64_t update, int epoch, const std::string& what) {
    result.status = RunStatus::kDiverged;
    result.reason = what + " at update " + std::to_string(update) + " epoch " +
                    std::to_string(epoch) + " (learning_rate " + std::to_string(cfg.learning_rate) +
                    "); lower learning_rate or max_grad_norm";
  };

  const auto loop_start = std::chrono::steady_clock::now();
  double steps_at_log = 0;
  auto log_time = loop_start;
  for (int64_t update = 1; update <= num_updates; ++update) {
    // 2. Learning-rate annealing (linear to zero, CleanRL's frac).
    if (cfg.anneal_lr) {
      const double frac = 1.0 - static_cast<double>(update - 1) / static_cast<double>(num_updates);
      lr_now = frac * cfg.learning_rate;
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr_now);
    }

    // An Adam step can overflow the weights with a finite loss; sampling would then fail.
    {
      torch::NoGradGuard no_grad;
      bool finite = true;
      for (auto& p : params) finite = finite && torch::isfinite(p).all().item<bool>();
      if (!finite) {
        diverge(update, 0, "the weights became non-finite");
        add_point(update, false);
        return;
      }
    }

    // 3. Rollout: T steps of N environments; observations and rewards land in the storage.
    obs[0].copy_(next_obs);
    dones[0].copy_(next_done);
    {
      torch::NoGradGuard no_grad;
      for (int t = 0; t < T; ++t) {
        const auto out = agent->forward(obs[t].to(device));
        const ActionSample a = sample(agent, out.first, false);
        values[t].copy_(out.second);
        actions[t].copy_(a.action);
        logprobs[t].copy_(a.log_prob);
        float* obs_out = t + 1 < T ? obs[t + 1].data_ptr<float>() : next_obs.data_ptr<float>();
        env->step(buffers(obs_out, t));
        float* done_out = t + 1 < T ? dones[t + 1].data_ptr<float>() : next_done.data_ptr<float>();
        for (int i = 0; i < N; ++i) done_out[i] = (terms[i] || truncs[i]) ? 1.0f : 0.0f;
        if (cfg.norm_reward) {
          float* r = rewards[t].data_ptr<float>();
          for (int i = 0; i < N; ++i)
            discounted[i] = discounted[i] * cfg.gamma * (1.0 - terms[i]) + r[i];
          std::copy(discounted.begin(), discounted.end(), discounted_f.begin());
          observe(ret_rms, ret_fresh, discounted_f.data(), N);
          const double scale = 1.0 / std::sqrt(ret_rms.var[0] + 1e-8);
          for (int i = 0; i < N; ++i)
            r[i] = static_cast<float>(
                std::max(-cfg.clip_reward, std::min(cfg.clip_reward, r[i] * scale)));
        }
        if (cfg.norm_obs) {
          observe(obs_rms, obs_fresh, obs_out, N);
          obs_rms.normalize(obs_out, N, cfg.clip_obs);
        }
        if (cfg.bootstrap_truncated) {
          // A time limit is not the end of the task (Pardo et al. 2018, "Time Limits in RL"):
          // r += gamma V(s_final), as SB3 does; the done flag still cuts GAE at the boundary.
          truncated_rows.clear();
          for (int i = 0; i < N; ++i)
            if (truncs[i] && !terms[i]) truncated_rows.push_back(i);
          if (!truncated_rows.empty()) {
            const int k = static_cast<int>(truncated_rows.size());
            Tensor f = final_obs.index_select(0, torch::tensor(truncated_rows)).contiguous();
            if (cfg.norm_obs) obs_rms.normalize(f.data_ptr<float>(), k, cfg.clip_obs);
            const Tensor v = agent->value(f.to(device)).to(torch::kCPU).contiguous();
            float* r = rewards[t].data_ptr<float>();
            for (int j = 0; j < k; ++j)
              r[truncated_rows[j]] += static_cast<float>(cfg.gamma * v.data_ptr<float>()[j]);
            bootstrapped += k;
          }
        }
      }
    }
    global_step += static_cast<double>(batch * world);
    sync_normalisers();

    // 4. GAE on the CPU storage.
    {
      torch::NoGradGuard no_grad;
      const Tensor next_value = agent->value(next_obs.to(device)).to(torch::kCPU).contiguous();
      compute_gae(T, N, rewards.data_ptr<float>(), values.data_ptr<float>(),
                  dones.data_ptr<float>(), next_value.data_ptr<float>(),
                  next_done.data_ptr<float>(), cfg.gamma, cfg.gae_lambda,
                  advantages.data_ptr<float>(), returns.data_ptr<float>());
    }
    flops += 2.0 * static_cast<double>(n_params.total()) * static_cast<double>((batch + N) * world);

    // 5. Flatten the batch and optimise for update_epochs epochs of minibatches.
    const Tensor b_obs = obs.view({batch, D}).to(device);
    const Tensor b_actions =
        spec.discrete ? actions.view({batch}).to(device) : actions.view({batch, A}).to(device);
    const Tensor b_logprobs = logprobs.view({batch}).to(device);
    const Tensor b_adv = advantages.view({batch}).to(device);
    const Tensor b_returns = returns.view({batch}).to(device);
    const Tensor b_values = values.view({batch}).to(device);
    double approx_kl = 0;
    bool diverged = false;
    int epoch = 0;
    for (; epoch < cfg.update_epochs && !diverged; ++epoch) {
      const Tensor perm =
          torch::randperm(batch, torch::TensorOptions().dtype(torch::kLong).device(device));
      for (int64_t start = 0; start < batch; start += minibatch) {
        const Tensor idx = perm.slice(0, start, start + minibatch);
        const auto out = agent->forward(b_obs.index_select(0, idx));
        const auto [new_logprob, entropy] =
            log_prob_entropy(agent, out.first, b_actions.index_select(0, idx));
        last = ppo_losses(new_logprob, b_logprobs.index_select(0, idx), b_adv.index_select(0, idx),
                          out.second, b_values.index_select(0, idx), b_returns.index_select(0, idx),
                          entropy, cfg.clip_coef, cfg.clip_vloss, cfg.norm_adv);
        const Tensor loss =
            last.pg_loss - cfg.ent_coef * last.entropy_loss + cfg.vf_coef * last.v_loss;
        optimizer.zero_grad();
        loss.backward();
        double nonfinite = std::isfinite(loss.item<double>()) ? 0.0 : 1.0;
        approx_kl = last.approx_kl.item<double>();
        if (world > 1) {
          // One bucket: every gradient, then approx_kl and the non-finite flag, so every rank
          // takes the same early-stop and divergence decisions.
          std::vector<Tensor> parts;
          for (auto& p : params) parts.push_back(p.grad().view({-1}));
          parts.push_back(torch::tensor({approx_kl, nonfinite}, torch::kFloat).to(device));
          Tensor flat = torch::cat(parts);
          comm->allreduce_mean(flat);
          int64_t off = 0;
          for (auto& p : params) {
            p.grad().copy_(flat.slice(0, off, off + p.numel()).view_as(p));
            off += p.numel();
          }
          approx_kl = flat[off].item<double>();
          const double flag = flat[off + 1].item<double>();
          nonfinite = flag == 0.0 ? 0.0 : 1.0;  // NaN compares unequal too
        }
        if (nonfinite != 0.0) {
          diverged = true;
          diverge(update, epoch + 1, "the loss became " + std::to_string(loss.item<double>()));
          break;
        }
        if (cfg.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, cfg.max_grad_norm);
        optimizer.step();
        flops +=
            6.0 * static_cast<double>(n_params.total()) * static_cast<double>(minibatch * world);
      }
      if (cfg.target_kl > 0 && approx_kl > cfg.target_kl) break;  // CleanRL: per epoch
    }
    if (diverged) {
      add_point(update, false);  // no evaluation of non-finite weights
      return;
    }
    {
      torch::NoGradGuard no_grad;
      const Tensor var_y = b_returns.var();
      explained_variance =
          var_y.item<double>() == 0.0
              ? kNaN
              : 1.0 - (b_returns - b_values).var().item<double>() / var_y.item<double>();
    }

    // 6. Progress (rank 0) and curve points.
    if (log && (update % cfg.log_every == 0 || update == num_updates)) {
      const double dt = seconds_since(log_time);
      spdlog::info(
          "update {}/{} | step {} | return {:.1f} | pg_loss {:.4f} | v_loss {:.4f} | "
          "entropy {:.3f} | kl {:.2g} | lr {:.1e} | {} steps/s",
          update, num_updates, static_cast<int64_t>(global_step), env->stats().mean_return(),
          last.pg_loss.item<double>(), last.v_loss.item<double>(), last.entropy_loss.item<double>(),
          approx_kl, lr_now, human(dt > 0 ? (global_step - steps_at_log) / dt : 0.0));
      steps_at_log = global_step;
      log_time = std::chrono::steady_clock::now();
    }
    if (update % eval_every == 0 || update == num_updates) add_point(update, true);
  }

  // 7. Final metrics: held-out and tuning-seed returns of the final policy.
  const double loop_seconds = seconds_since(loop_start);
  const double eval_return = result.curve.back().eval_return;
  result.metrics["eval_return"] = eval_return;
  result.metrics["tune_return"] = eval_mean(envs::LevelSet::kTrain, tune_seed);
  result.metrics["train_return"] = last_train_return;
  result.metrics["train_episodes"] = train_episodes;
  result.metrics["updates"] = static_cast<double>(num_updates);
  result.metrics["env_steps"] = global_step;
  result.metrics["steps_per_second"] = global_step / std::max(loop_seconds, 1e-9);
  result.metrics["pg_loss"] = last.pg_loss.item<double>();
  result.metrics["v_loss"] = last.v_loss.item<double>();
  result.metrics["entropy_loss"] = last.entropy_loss.item<double>();
  result.metrics["approx_kl"] = last.approx_kl.item<double>();
  result.metrics["old_approx_kl"] = last.old_approx_kl.item<double>();
  result.metrics["clipfrac"] = last.clipfrac.item<double>();
  result.metrics["explained_variance"] = explained_variance;
  result.metrics["eval_episodes"] = static_cast<double>(cfg.eval.episodes);
  result.metrics["eval_env_steps"] = eval_steps;
  result.metrics["eval_flops"] = eval_flops;
  if (cfg.norm_obs) {
    // Identical on every rank of a data-parallel run (the statistics are shared).
    double mean_sq = 0, var_sum = 0;
    for (int d = 0; d < D; ++d) {
      mean_sq += obs_rms.mean[d] * obs_rms.mean[d];
      var_sum += obs_rms.var[d];
    }
    result.metrics["obs_norm_count"] = obs_rms.count;
    result.metrics["obs_norm_mean_l2"] = std::sqrt(mean_sq);
    result.metrics["obs_norm_var_sum"] = var_sum;
  }
  if (cfg.norm_reward) {
    result.metrics["reward_norm_count"] = ret_rms.count;
    result.metrics["reward_norm_var"] = ret_rms.var[0];
  }
  {
    // Identical on every rank of a data-parallel run (the weights are), so a cheap sync check.
    torch::NoGradGuard no_grad;
    double sq = 0;
    for (auto& p : params) sq += p.to(torch::kDouble).pow(2).sum().item<double>();
    result.metrics["param_norm"] = std::sqrt(sq);
  }
}

}  // namespace

void allreduce_running_stats(dist::Communicator* comm, const std::vector<StatsPair>& stats,
                             int cuda_device) {
  const torch::Device device =
      cuda_device >= 0 ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cuda_device))
                       : torch::Device(torch::kCPU);
  sync_stats(comm, device, stats);
}

PpoLossTerms ppo_loss_terms(const PpoLossInputs& in) {
  auto t = [](const std::vector<float>& v) { return torch::tensor(v, torch::kFloat); };
  const Losses l = ppo_losses(t(in.new_logprob), t(in.old_logprob), t(in.advantages),
                              t(in.new_value), t(in.old_value), t(in.returns), t(in.entropy),
                              in.clip_coef, in.clip_vloss, in.norm_adv);
  return {l.pg_loss.item<double>(),   l.v_loss.item<double>(),        l.entropy_loss.item<double>(),
          l.approx_kl.item<double>(), l.old_approx_kl.item<double>(), l.clipfrac.item<double>()};
}

TrainResult train_ppo(const PpoConfig& config, dist::Communicator* comm, int local_rank) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainResult result;
  result.task = "ppo";
  result.objective = "eval_return";
  const int world = comm ? comm->size() : 1;
  try {
    run(config, comm, local_rank, result, t0);
  } catch (const std::bad_alloc&) {
    result.status = RunStatus::kOom;
    result.reason = "out of host memory; lower num_envs, num_steps or the network size";
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    const bool oom = what.find("out of memory") != std::string::npos;
    result.status = oom ? RunStatus::kOom : RunStatus::kFailed;
    result.reason = "LibTorch: " + what.substr(0, what.find('\n'));
  } catch (const std::exception& e) {
    result.status = RunStatus::kFailed;
    result.reason = e.what();
  }
  result.cost.tokens = result.curve.empty() ? 0.0 : result.curve.back().tokens;
  result.cost.flops = result.curve.empty() ? 0.0 : result.curve.back().flops;
  if (result.metrics.count("env_steps")) result.cost.tokens = result.metrics["env_steps"];
  result.cost.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.cost.devices = world;
  if (result.metrics.count("params_policy"))
    result.cost.flops_6n = 6.0 *
                           (result.metrics["params_policy"] + result.metrics["params_value"]) *
                           result.cost.tokens;
  result.cost.device_seconds = result.cost.wall_seconds * world;
  result.info["torch_version"] = TORCH_VERSION;
  result.info["threads"] = std::to_string(config.threads);
  result.info["world_size"] = std::to_string(world);
  result.info["backend"] = comm ? comm->backend() : "local";
  result.info["env"] = config.env.id;
  return result;
}

PpoRunEnd run_ppo(const PpoRun& run) {
  PpoRunEnd end;
  std::unique_ptr<dist::Communicator> comm;
  dist::DistEnv denv;
  try {
    denv = dist::parse_dist_env(run.env);
    end.rank = denv.rank;
    const bool cuda =
        run.config.device == "cuda" || (run.config.device == "auto" && torch::cuda::is_available());
    comm = dist::connect(denv, cuda && torch::cuda::is_available());
  } catch (const std::exception& e) {
    end.result.task = "ppo";
    end.result.objective = "eval_return";
    end.result.status = RunStatus::kFailed;
    end.result.reason = std::string("joining the data-parallel world failed: ") + e.what();
    return end;
  }
  end.result = train_ppo(run.config, comm.get(), denv.local_rank);
  return end;
}

}  // namespace scaletune::trainer
