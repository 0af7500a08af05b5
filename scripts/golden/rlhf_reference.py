"""Golden values for tests/unit/rlhf-math.test.ts, from an independent PyTorch implementation.

Written from the formulas (not by importing trl):
  - GAE: Schulman et al. 2016; TRL ppo_trainer.py reversed loop, values/rewards of padding 0,
    returns = advantages + values.
  - masked mean / unbiased masked var / whiten (eps 1e-8, shift_mean): TRL core.py.
  - KL estimators k1 = lp - ref, k3 = (exp(ref - lp) - 1) - (ref - lp): TRL ppo_trainer.py,
    Schulman "Approximating KL Divergence".
  - PPO clipped policy loss, clipfrac, approxkl; clipped value loss: Schulman et al. 2017 and
    TRL ppo_trainer.py (approxkl masked here).
  - entropy of softmax; log_softmax(logits / temperature) at the tokens.
  - Bradley-Terry: -logsigmoid(r_c - r_r - margin) + coef * mean((r_c + r_r)^2) (TRL reward_trainer).
  - DPO sigmoid (with label smoothing) and IPO: Rafailov et al. 2023, Azar et al. 2023, TRL dpo_trainer.
  - Completion-only sequence log-probs (sum, mean) and the SFT loss: TRL sft_trainer / dpo_trainer.
Gradients (via autograd, float64) of weighted sums are stored for the tensor versions.

Run with Debian's python:  /usr/bin/python3 scripts/golden/rlhf_reference.py
Writes tests/golden/rlhf-math.json.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(2024)
torch.set_default_dtype(torch.float64)

B, T, V, N = 3, 7, 5, 6
LENGTHS = [7, 4, 2]  # ragged, right-padded
mask = torch.zeros(B, T)
for b, n in enumerate(LENGTHS):
    mask[b, :n] = 1.0


def lst(t):
    return t.detach().tolist()


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def masked_var(x, m, unbiased=True):
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    if unbiased:
        n = m.sum()
        var = var * n / (n - 1)
    return var


def whiten(x, m, shift_mean=True):
    mean, var = masked_mean(x, m), masked_var(x, m)
    w = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        w = w + mean
    return w * m  # padding comes out 0


def gae(rewards, values, m, gamma, lam):
    rewards = rewards * m
    values = values * m
    last = torch.zeros(rewards.shape[0])
    rev = []
    for t in reversed(range(rewards.shape[1])):
        nextv = values[:, t + 1] if t < rewards.shape[1] - 1 else 0.0
        delta = rewards[:, t] + gamma * nextv - values[:, t]
        last = delta + gamma * lam * last
        rev.append(last)
    adv = torch.stack(rev[::-1], dim=1)
    return adv * m, (adv + values) * m


def kl(lp, ref, est):
    if est == "k1":
        return lp - ref
    logr = ref - lp
    return (torch.exp(logr) - 1) - logr


def policy_loss(lp, old, adv, m, c):
    diff = lp - old
    ratio = torch.exp(diff)
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1 - c, 1 + c)
    return masked_mean(torch.max(l1, l2), m), masked_mean((l2 > l1).double(), m), 0.5 * masked_mean(diff**2, m)


def value_loss(v, old, ret, m, c):
    vc = torch.clamp(v, old - c, old + c)
    l1 = (v - ret) ** 2
    l2 = (vc - ret) ** 2
    return 0.5 * masked_mean(torch.max(l1, l2), m), masked_mean((l2 > l1).double(), m)


def entropy(logits):
    p = F.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (p * logits).sum(-1)


def bt(ch, rj, margin, coef):
    loss = -F.logsigmoid(ch - rj - margin).mean() + coef * ((ch + rj) ** 2).mean()
    return loss, (ch > rj).double().mean()


def dpo(pc, pr, rc, rr, beta, loss_type, ls):
    h = (pc - pr) - (rc - rr)
    if loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * h) * (1 - ls) - F.logsigmoid(-beta * h) * ls
    return losses.mean(), beta * (pc - rc), beta * (pr - rr)


def leaf(t):
    return t.clone().requires_grad_(True)


def grad_of(y, x):
    (g,) = torch.autograd.grad(y, x)
    return lst(g)


out = {"mask": lst(mask)}

# GAE
rewards = torch.randn(B, T)
values = torch.randn(B, T)
out["gae"] = {"rewards": lst(rewards), "values": lst(values), "cases": []}
for gamma, lam in [(0.99, 0.95), (1.0, 1.0), (0.9, 0.0)]:
    a, r = gae(rewards, values, mask, gamma, lam)
    out["gae"]["cases"].append({"gamma": gamma, "lam": lam, "advantages": lst(a), "returns": lst(r)})

# masked stats and whitening (+ gradient of sum(w * whiten(x)))
x = 2.0 + 3.0 * torch.randn(B, T)
wts = torch.randn(B, T)
out["whiten"] = {"x": lst(x), "weights": lst(wts), "mean": masked_mean(x, mask).item(),
                 "var": masked_var(x, mask).item(), "varBiased": masked_var(x, mask, False).item()}
for shift in (True, False):
    xl = leaf(x)
    w = whiten(xl, mask, shift)
    key = "shift" if shift else "noShift"
    out["whiten"][key] = lst(w)
    out["whiten"][key + "Grad"] = grad_of((w * wts).sum(), xl)

# KL
lp = -torch.rand(B, T) * 3
ref = lp + 0.5 * torch.randn(B, T)
out["kl"] = {"logprobs": lst(lp), "refLogprobs": lst(ref), "k1": lst(kl(lp, ref, "k1")), "k3": lst(kl(lp, ref, "k3"))}

# PPO policy loss: ratios spread over [exp(-0.6), exp(0.6)] so some tokens clip
old = -torch.rand(B, T) * 3
lp = old + 0.3 * torch.randn(B, T)
adv = torch.randn(B, T)
clip = 0.2
lpl = leaf(lp)
loss, cf, akl = policy_loss(lpl, old, adv, mask, clip)
out["policy"] = {"logprobs": lst(lp), "oldLogprobs": lst(old), "advantages": lst(adv), "clipRange": clip,
                 "loss": loss.item(), "clipfrac": cf.item(), "approxKl": akl.item(), "grad": grad_of(loss, lpl)}

# PPO value loss
oldv = torch.randn(B, T)
v = oldv + 0.3 * torch.randn(B, T)
ret = torch.randn(B, T)
cv = 0.2
vl = leaf(v)
loss, cf = value_loss(vl, oldv, ret, mask, cv)
out["value"] = {"values": lst(v), "oldValues": lst(oldv), "returns": lst(ret), "clipRangeValue": cv,
                "loss": loss.item(), "clipfrac": cf.item(), "grad": grad_of(loss, vl)}

# entropy and token log-probs
logits = 2.0 * torch.randn(B, T, V)
tokens = torch.randint(0, V, (B, T))
ll = leaf(logits)
ent = entropy(ll)
ent_mean = masked_mean(ent, mask)
out["entropy"] = {"logits": lst(logits), "perToken": lst(ent), "mean": ent_mean.item(), "grad": grad_of(ent_mean, ll)}
temp = 0.7
out["logprobs"] = {"tokens": lst(tokens), "temperature": temp, "weights": lst(wts), "cases": []}
for tmp in (1.0, temp):
    ll = leaf(logits)
    tok_lp = F.log_softmax(ll / tmp, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    out["logprobs"]["cases"].append({"temperature": tmp, "logprobs": lst(tok_lp), "grad": grad_of((tok_lp * wts).sum(), ll)})

# Bradley-Terry
ch = torch.randn(N)
rj = torch.randn(N)
margin = torch.rand(N)
out["bt"] = {"chosen": lst(ch), "rejected": lst(rj), "margin": lst(margin), "cases": []}
for name, m, coef in [("plain", 0.0, 0.0), ("marginArray", margin, 0.01), ("marginScalar", 0.5, 0.1)]:
    c, r = leaf(ch), leaf(rj)
    loss, acc = bt(c, r, m, coef)
    gc, gr = torch.autograd.grad(loss, (c, r))
    out["bt"]["cases"].append({"name": name, "margin": lst(m) if torch.is_tensor(m) else m, "centerCoef": coef,
                               "loss": loss.item(), "accuracy": acc.item(), "gradChosen": lst(gc), "gradRejected": lst(gr)})

# DPO
rc = -10 - 5 * torch.rand(N)
rr = -10 - 5 * torch.rand(N)
pc = rc + torch.randn(N)
pr = rr + torch.randn(N)
out["dpo"] = {"policyChosen": lst(pc), "policyRejected": lst(pr), "refChosen": lst(rc), "refRejected": lst(rr), "cases": []}
for beta, lt, ls in [(0.1, "sigmoid", 0.0), (0.5, "sigmoid", 0.1), (0.1, "ipo", 0.0), (2.0, "ipo", 0.0)]:
    a, b = leaf(pc), leaf(pr)
    loss, crw, rrw = dpo(a, b, rc, rr, beta, lt, ls)
    ga, gb = torch.autograd.grad(loss, (a, b))
    out["dpo"]["cases"].append({"beta": beta, "lossType": lt, "labelSmoothing": ls, "loss": loss.item(),
                                "chosenRewards": lst(crw), "rejectedRewards": lst(rrw),
                                "gradChosen": lst(ga), "gradRejected": lst(gb)})

# Completion-only sequence log-probs (SFT / DPO inputs), TRL sft_trainer completion_only_loss and
# dpo_trainer get_batch_logps: logits at position t score token t+1; prompt positions masked out.
# Rows: [eot, prompt..., completion...] right-padded; completion starts at column `start`.
SL, SV = 8, 6
starts = [3, 1, 5, 2]
lengths = [8, 4, 7, 5]
seq_logits = 2.0 * torch.randn(len(starts), SL, SV)
seq_ids = torch.randint(0, SV, (len(starts), SL))
seq_targets = torch.zeros(len(starts), SL, dtype=torch.long)
seq_targets[:, :-1] = seq_ids[:, 1:]
seq_mask = torch.zeros(len(starts), SL)
for b, (s0, n) in enumerate(zip(starts, lengths)):
    seq_mask[b, s0 - 1:n - 1] = 1.0
ll = leaf(seq_logits)
tok_lp = F.log_softmax(ll, dim=-1).gather(-1, seq_targets.unsqueeze(-1)).squeeze(-1)
sums = (tok_lp * seq_mask).sum(-1)
means = sums / seq_mask.sum(-1)
sft_loss = -(tok_lp * seq_mask).sum() / seq_mask.sum()
seq_w = torch.randn(len(starts))
out["sequence"] = {"logits": lst(seq_logits), "ids": lst(seq_ids), "starts": starts, "lengths": lengths,
                   "targets": lst(seq_targets), "mask": lst(seq_mask), "sums": lst(sums), "means": lst(means),
                   "weights": lst(seq_w), "sumsGrad": grad_of((sums * seq_w).sum(), ll),
                   "sftLoss": sft_loss.item()}
ll = leaf(seq_logits)
tok_lp = F.log_softmax(ll, dim=-1).gather(-1, seq_targets.unsqueeze(-1)).squeeze(-1)
out["sequence"]["sftGrad"] = grad_of(-(tok_lp * seq_mask).sum() / seq_mask.sum(), ll)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "rlhf-math.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
