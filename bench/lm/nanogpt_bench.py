#!/usr/bin/env python3
"""Reference for bench/lm: the same GPT, batch, threads and steps as `scaletune train` in
Python PyTorch (nanoGPT-style), printing one JSON line with tokens/s and peak RSS.

Same model as trainer/lm/model.cpp: pre-LayerNorm blocks, GELU MLP, tied embeddings, learned
positions, the fused causal attention kernel LibTorch has (private on 1.13), AdamW with no decay
on norms/biases/embeddings, gradient clipping at 1.0, gradient accumulation over micro-batches.
"""
import argparse, json, math, resource, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return torch.ops.aten._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]


class Block(nn.Module):
    def __init__(self, d, h, ff):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.attn_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = attention(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, L, d, h, ff, T, V):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, d), nn.Embedding(T, d)
        self.h = nn.ModuleList(Block(d, h, ff) for _ in range(L))
        self.ln_f = nn.LayerNorm(d)
        for n, p in self.named_parameters():
            if n.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln_" not in n:
                std = 0.02 / math.sqrt(2 * L) if n.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    a = argparse.ArgumentParser()
    for k, v in dict(n_layer=2, d_model=128, n_head=4, context=128, vocab=256, batch=16,
                     micro=16, steps=50, threads=1).items():
        a.add_argument("--" + k, type=int, default=v)
    args = a.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(args.n_layer, args.d_model, args.n_head, 4 * args.d_model, args.context, args.vocab)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "wte" not in n and "wpe" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
    data = torch.randint(0, args.vocab, (1 << 20,), dtype=torch.int64)
    accumulation = args.batch // args.micro
    start = time.perf_counter()
    for step in range(args.steps):
        for _ in range(accumulation):
            ix = torch.randint(0, data.numel() - args.context - 1, (args.micro,))
            x = torch.stack([data[i:i + args.context] for i in ix])
            y = torch.stack([data[i + 1:i + 1 + args.context] for i in ix])
            (model(x, y) / accumulation).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_second": args.steps * args.batch * args.context / seconds,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
