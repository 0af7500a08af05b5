"""Golden values for tests/unit/grpo-math.test.ts, from an independent PyTorch implementation.

Written from TRL's formulas (not by importing trl; huggingface/trl):
  - trl/trainer/grpo_trainer.py, GRPOTrainer._generate_and_score_completions: advantages
    rewards - group mean, divided by (std + 1e-4) with torch's Bessel-corrected std of the group
    (scale_rewards "group") or of the whole batch ("batch"), not divided for "none";
    is_std_zero = isclose(std, 0).
  - GRPOTrainer._compute_loss: coef_1 = exp(logp - old), coef_2 = clamp(coef_1, 1 - eps, 1 + eps_high),
    per-token loss -min(coef_1 * A, coef_2 * A) + beta * (exp(ref - logp) - (ref - logp) - 1);
    "grpo": mean over rows of (masked row sum / clamp(row mask sum, 1)); "bnpo": masked sum /
    clamp(mask sum, 1); "dr_grpo": masked sum / (B * max_completion_length); "dapo": masked sum /
    num_items_in_batch; clip_ratio/low_mean, high_mean, region_mean as masked means.
  - trl/trainer/rloo_trainer.py, RLOOTrainer: baselines (group sum - r) / (G - 1), advantages
    r - baseline, normalize_advantages (A - mean) / (std + 1e-4); sequence-level loss with
    logps = (per_token_logps * mask).sum(1), coef_1 = exp(logps - old_logps), loss mean over rows.
Gradients of the losses with respect to the per-token log-probs (autograd, float64) are stored
for the tensor versions.

Run with Debian's python:  /usr/bin/python3 scripts/golden/grpo_reference.py
Writes tests/golden/grpo.json.
"""
import json
import os

import torch

torch.manual_seed(16)
torch.set_default_dtype(torch.float64)


def lst(t):
    return t.detach().tolist()


# ------------------------------------------------------------------------------- advantages


def grpo_adv(rewards, G, scale):
    grouped = rewards.view(-1, G)
    mean = grouped.mean(dim=1).repeat_interleave(G, dim=0)
    adv = rewards - mean
    if scale in ("group", "none"):
        std = grouped.std(dim=1).repeat_interleave(G, dim=0)
    else:
        std = rewards.std().expand_as(rewards)
    zero = torch.isclose(std, torch.zeros_like(std))
    if scale != "none":
        adv = adv / (std + 1e-4)
    return adv, std, zero


def rloo_adv(rewards, G):
    grouped = rewards.view(-1, G)
    base = (grouped.sum(dim=1, keepdim=True) - grouped) / (G - 1)
    return rewards - base.view(-1)


def normalize(adv):
    return (adv - adv.mean()) / (adv.std() + 1e-4)


reward_sets = [
    # binary rewards with one all-equal group (zero std)
    [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    # continuous rewards
    lst(torch.randn(12) * 3 + 1),
    # one group with a tiny spread, one with a large one
    [0.5, 0.5, 0.5, 0.5 + 1e-7, -4.0, 7.0, 2.5, 0.0, 3.0, 3.0, 1.0, 2.0],
]
adv_cases = []
for rewards in reward_sets:
    r = torch.tensor(rewards)
    for G in (2, 3, 4, 6):
        case = {"rewards": rewards, "groupSize": G, "grpo": {}, "std": {}, "zeroStd": {}}
        for scale in ("group", "batch", "none"):
            a, s, z = grpo_adv(r, G, scale)
            case["grpo"][scale] = lst(a)
            case["std"][scale] = lst(s)
            case["zeroStd"][scale] = [bool(x) for x in z.tolist()]
        case["rloo"] = lst(rloo_adv(r, G))
        case["rlooNormalized"] = lst(normalize(rloo_adv(r, G)))
        adv_cases.append(case)

# ------------------------------------------------------------------------------------ losses

B, T = 6, 7
LENGTHS = [7, 5, 3, 7, 1, 4]


def make_mask(lengths, truncated=()):
    m = torch.zeros(B, T)
    for b, n in enumerate(lengths):
        m[b, :n] = 1.0
    for b in truncated:
        m[b] = 0.0
    return m


def grpo_loss(lp, old, ref, adv, m, eps, eps_high, beta, loss_type, max_len, num_items):
    coef_1 = torch.exp(lp - old)
    coef_2 = torch.clamp(coef_1, 1 - eps, 1 + eps_high)
    l1 = coef_1 * adv.unsqueeze(1)
    l2 = coef_2 * adv.unsqueeze(1)
    per_token = -torch.min(l1, l2)
    if beta != 0.0:
        kl = torch.exp(ref - lp) - (ref - lp) - 1
        per_token = per_token + beta * kl
    if loss_type == "grpo":
        loss = ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "bnpo":
        loss = (per_token * m).sum() / m.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = (per_token * m).sum() / (per_token.size(0) * max_len)
    elif loss_type == "dapo":
        loss = (per_token * m).sum() / num_items
    count = m.sum().clamp(min=1.0)
    low = ((coef_1 < 1 - eps) & (adv.unsqueeze(1) < 0)).double()
    high = ((coef_1 > 1 + eps_high) & (adv.unsqueeze(1) > 0)).double()
    region = ((low + high) > 0).double()
    out = {
        "loss": loss,
        "clipRatio": (region * m).sum() / count,
        "clipRatioLow": (low * m).sum() / count,
        "clipRatioHigh": (high * m).sum() / count,
        "kl": ((kl * m).sum() / count) if beta != 0.0 else torch.tensor(0.0),
    }
    return out


def rloo_loss(lp, old, adv, m, eps, eps_high):
    logps = (lp * m).sum(1)
    old_logps = (old * m).sum(1)
    coef_1 = torch.exp(logps - old_logps)
    coef_2 = torch.clamp(coef_1, 1 - eps, 1 + eps_high)
    loss = -torch.min(coef_1 * adv, coef_2 * adv)
    low = ((coef_1 < 1 - eps) & (adv < 0)).double()
    high = ((coef_1 > 1 + eps_high) & (adv > 0)).double()
    return {
        "loss": loss.mean(),
        "clipRatio": ((low + high) > 0).double().mean(),
        "clipRatioLow": low.mean(),
        "clipRatioHigh": high.mean(),
    }


def grad_of(y, x):
    (g,) = torch.autograd.grad(y, x)
    return lst(g)


loss_cases = []
rloo_cases = []
for k in range(3):
    # Log-probs of sampled tokens (negative); the old policy differs by up to ~±0.6 so that
    # some tokens fall outside the clip range on both sides.
    lp0 = -torch.rand(B, T) * 3 - 0.05
    old = lp0 + torch.randn(B, T) * 0.35
    ref = lp0 + torch.randn(B, T) * 0.5
    adv = torch.randn(B) * 1.5
    truncated = [] if k == 0 else [4] if k == 1 else [1, 4]
    m = make_mask(LENGTHS, truncated)
    # Padding carries junk that the mask must hide.
    pad = 1 - make_mask(LENGTHS)
    lp0 = lp0 + pad * 5.0
    num_items = float(sum(LENGTHS))  # counted before truncated rows are masked, as TRL does
    base = {"logprobs": lst(lp0), "oldLogprobs": lst(old), "refLogprobs": lst(ref), "advantages": lst(adv),
            "mask": lst(m), "numItemsInBatch": num_items, "cases": []}
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        for beta in (0.0, 0.04):
            for eps_high in (None, 0.28):
                for max_len in ((7, 24) if loss_type == "dr_grpo" else (7,)):
                    eps = 0.2
                    lp = lp0.clone().requires_grad_(True)
                    out = grpo_loss(lp, old, ref, adv, m, eps, eps if eps_high is None else eps_high, beta,
                                    loss_type, max_len, num_items)
                    grad = grad_of(out["loss"], lp)
                    base["cases"].append({
                        "lossType": loss_type, "beta": beta, "epsilon": eps, "epsilonHigh": eps_high,
                        "maxCompletionLength": max_len,
                        **{key: v.item() for key, v in out.items()},
                        "grad": grad,
                    })
    loss_cases.append(base)

    rloo = {"logprobs": lst(lp0), "oldLogprobs": lst(old), "advantages": lst(adv), "mask": lst(m), "cases": []}
    # Sequence-level log-ratios are sums over up to 7 tokens: shrink the noise so some stay in range.
    old_seq = lp0.detach() + torch.randn(B, T) * 0.08
    rloo["oldLogprobs"] = lst(old_seq)
    for eps_high in (None, 0.28):
        lp = lp0.clone().requires_grad_(True)
        out = rloo_loss(lp, old_seq, adv, m, 0.2, 0.2 if eps_high is None else eps_high)
        grad = grad_of(out["loss"], lp)
        rloo["cases"].append({"epsilon": 0.2, "epsilonHigh": eps_high, **{key: v.item() for key, v in out.items()},
                              "grad": grad})
    rloo_cases.append(rloo)

out = {"advantages": adv_cases, "grpoLoss": loss_cases, "rlooLoss": rloo_cases}
path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "grpo.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
