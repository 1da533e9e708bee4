#!/usr/bin/python3
"""CleanRL-style PPO (vwxyzjn/cleanrl ppo.py, discrete actions) on a numpy CartPole-v1.

The Python reference of bench/ppo: the same network (64x2 tanh actor and critic, orthogonal
init), batch (num_envs x num_steps), minibatches, epochs and thread count as the C++ trainer, so
the two end-to-end rates compare the implementations, not the settings. Gymnasium is not in
Debian, so the environment is a vectorised numpy CartPole with Gymnasium's dynamics, limits and
same-step auto-reset (what gymnasium.vector.SyncVectorEnv hands CleanRL).

Prints one JSON line: {"sps": ..., "env_sps": ..., "final_return": ..., "steps": ...}.
Runs with Debian's python3-torch and python3-numpy (/usr/bin/python3).
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical


class CartPoleVec:
    """num_envs CartPole-v1 copies stepped together; done envs reset in the same step."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masscart + masspole
    polemass_length = masspole * length
    theta_threshold = 12 * 2 * np.pi / 360
    x_threshold = 2.4
    max_steps = 500

    def __init__(self, num_envs, seed):
        self.n = num_envs
        self.rng = np.random.default_rng(seed)
        self.state = self.rng.uniform(-0.05, 0.05, size=(num_envs, 4))
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self.ep_return = np.zeros(num_envs)
        self.finished_returns = []

    def reset(self):
        return self.state.astype(np.float32)

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(action == 1, self.force_mag, -self.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        self.state = np.stack([x + self.tau * x_dot, x_dot + self.tau * xacc,
                               theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc], 1)
        self.elapsed += 1
        x, theta = self.state[:, 0], self.state[:, 2]
        terminated = (x < -self.x_threshold) | (x > self.x_threshold) | \
                     (theta < -self.theta_threshold) | (theta > self.theta_threshold)
        truncated = self.elapsed >= self.max_steps
        reward = np.ones(self.n, dtype=np.float32)
        self.ep_return += reward
        done = terminated | truncated
        if done.any():
            self.finished_returns.extend(self.ep_return[done].tolist())
            self.ep_return[done] = 0
            self.elapsed[done] = 0
            self.state[done] = self.rng.uniform(-0.05, 0.05, size=(int(done.sum()), 4))
        return self.state.astype(np.float32), reward, terminated, truncated


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=1.0))
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, n_actions), std=0.01))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def env_rate(num_envs, steps, seed):
    """Raw environment steps per second with random actions."""
    env = CartPoleVec(num_envs, seed)
    rng = np.random.default_rng(seed + 1)
    actions = rng.integers(0, 2, size=(steps // num_envs, num_envs))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return (steps // num_envs) * num_envs / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--total-timesteps", type=int, default=50000)
    p.add_argument("--learning-rate", type=float, default=2.5e-4)
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--num-minibatches", type=int, default=4)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--clip-coef", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--env-steps", type=int, default=0,
                   help="only measure raw environment steps/s over this many steps")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    if args.env_steps:
        print(json.dumps({"env_sps": env_rate(args.num_envs, args.env_steps, args.seed)}))
        return

    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_updates = args.total_timesteps // batch_size
    envs = CartPoleVec(args.num_envs, args.seed)
    agent = Agent(4, 2, args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    obs = torch.zeros((args.num_steps, args.num_envs, 4))
    actions = torch.zeros((args.num_steps, args.num_envs))
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))

    global_step = 0
    start = time.perf_counter()
    next_obs = torch.Tensor(envs.reset())
    next_done = torch.zeros(args.num_envs)
    for update in range(1, num_updates + 1):
        frac = 1.0 - (update - 1.0) / num_updates
        optimizer.param_groups[0]["lr"] = frac * args.learning_rate
        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob
            next_obs, reward, terminated, truncated = envs.step(action.cpu().numpy())
            rewards[step] = torch.tensor(reward).view(-1)
            next_obs = torch.Tensor(next_obs)
            next_done = torch.Tensor(np.logical_or(terminated, truncated).astype(np.float32))

        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = (
                    delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam)
            returns = advantages + values

        b_obs = obs.reshape((-1, 4))
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)
        b_inds = np.arange(batch_size)
        for epoch in range(args.update_epochs):
            np.random.shuffle(b_inds)
            for s in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[s:s + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions.long()[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                mb_adv = b_advantages[mb_inds]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss1 = -mb_adv * ratio
                pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()
                newvalue = newvalue.view(-1)
                v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                v_clipped = b_values[mb_inds] + torch.clamp(
                    newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef)
                v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
        del approx_kl

    elapsed = time.perf_counter() - start
    last = envs.finished_returns[-20:]
    print(json.dumps({"sps": global_step / elapsed, "steps": global_step,
                      "final_return": float(np.mean(last)) if last else None}))


if __name__ == "__main__":
    main()
