"""The native peer of `npm run bench`: the same GPT-2 style model and training step in PyTorch.

Builds the architecture of public/models/tiny-gpt/config.json (pre-LayerNorm, learned
positions, tanh-GELU, tied embeddings; written here from scratch, as in
scripts/golden/gpt_reference.py) and times forward + backward + Adam on a batch of
16 x blockSize random tokens on the CPU, with 1 and 2 threads.

    /usr/bin/python3 scripts/bench/torch_step.py [--json] [--steps 20]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, self.h, C // self.h).transpose(1, 2)
        k = k.view(B, T, self.h, C // self.h).transpose(1, 2)
        v = v.view(B, T, self.h, C // self.h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.h)
        att = att.masked_fill(mask[:, :, :T, :T] == 0, float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate='tanh'))


class GPT(nn.Module):
    def __init__(self, V, T, L, H, C):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList([Block(C, H) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.register_buffer('mask', torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.mask)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def time_step(cfg, threads, steps, batch):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    V, T = cfg['vocab_size'], cfg['n_positions']
    model = GPT(V, T, cfg['n_layer'], cfg['n_head'], cfg['n_embd'])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    x = torch.randint(0, V, (batch, T))
    y = torch.randint(0, V, (batch, T))
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--config', default='public/models/tiny-gpt/config.json')
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    rows = [{'threads': t, 'ms': time_step(cfg, t, a.steps, a.batch)} for t in (1, 2)]
    if a.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"PyTorch {torch.__version__}, {r['threads']} thread(s): {r['ms']:.1f} ms/step")


if __name__ == '__main__':
    main()
