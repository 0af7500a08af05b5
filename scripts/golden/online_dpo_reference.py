"""Golden values for tests/unit/online-dpo.test.ts, from an independent PyTorch implementation.

Written from TRL's formulas (not by importing trl; huggingface/trl
trl/trainer/online_dpo_trainer.py, OnlineDPOTrainer.training_step):
  - 2B completion rows: the B prompts, then the same B again; rewards of all 2B rows, minus
    missing_eos_penalty where the completion holds no EOS;
    mask = first_half >= second_half; chosen_indices = arange(B) + (~mask * B),
    rejected_indices = arange(B) + (mask * B).
  - per-row sums of the completion log-probs over the completion mask, for policy and reference;
    logits = (chosen - rejected) - (ref_chosen - ref_rejected);
    "sigmoid": -logsigmoid(beta * logits); "ipo": (logits - 1 / (2 beta))^2; loss = mean.
  - logged: rewards/chosen = beta * (chosen - ref_chosen) (mean), rewards/rejected likewise,
    rewards/margins = mean of their difference, rewards/accuracies = mean(margin > 0),
    logps/chosen, logps/rejected (means of the sums), objective/kl = mean over rows of the row
    sum of (logp - ref_logp), objective/non_score_reward = -beta * that, objective/entropy =
    -mean of the row sums of logp, objective/scores = mean reward, objective/scores_margin =
    mean(reward[chosen] - reward[rejected]).
Ours, stated in src/lib/rlhf/online-dpo.ts: the KL and entropy sums run over completion tokens
only (TRL also sums padding positions), so here they use the mask too.
The gradient of the loss with respect to the per-token log-probs (autograd, float64) is stored.

Run with Debian's python:  /usr/bin/python3 scripts/golden/online_dpo_reference.py
Writes tests/golden/online-dpo.json.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(5)
torch.set_default_dtype(torch.float64)


def lst(t):
    return t.detach().tolist()


def case(B, R, beta, loss_type, penalty, ties=False):
    lengths = torch.randint(1, R + 1, (2 * B,))
    lengths[0] = R  # at least one full-length row
    mask = (torch.arange(R).unsqueeze(0) < lengths.unsqueeze(1)).double()
    logprobs = (-torch.rand(2 * B, R) * 3) * mask
    ref = (-torch.rand(2 * B, R) * 3) * mask
    # Padding positions hold junk the loss must ignore.
    logprobs = logprobs + (1 - mask) * -7.0
    ref = ref + (1 - mask) * -5.0
    contain_eos = torch.rand(2 * B) < 0.6
    raw = torch.randn(2 * B)
    if ties:
        raw[B:] = raw[:B]
    rewards = raw.clone()
    if penalty is not None:
        rewards[~contain_eos] -= penalty

    first, second = rewards.split(B)
    m = first >= second
    r = torch.arange(B)
    chosen = r + (~m) * B
    rejected = r + m * B

    lp = logprobs.clone().requires_grad_(True)
    sums = (lp * mask).sum(1)
    ref_sums = (ref * mask).sum(1)
    pc, pr = sums[chosen], sums[rejected]
    rc, rr = ref_sums[chosen], ref_sums[rejected]
    logits = (pc - pr) - (rc - rr)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits)
    else:
        losses = (logits - 1 / (2 * beta)) ** 2
    loss = losses.mean()
    (grad,) = torch.autograd.grad(loss, lp)

    chosen_rewards = beta * (pc - rc)
    rejected_rewards = beta * (pr - rr)
    margins = chosen_rewards - rejected_rewards
    kl = (sums - ref_sums).mean()
    return {
        "beta": beta,
        "lossType": loss_type,
        "missingEosPenalty": penalty,
        "logprobs": lst(logprobs),
        "refLogprobs": lst(ref),
        "mask": lst(mask),
        "rawScores": lst(raw),
        "containEos": lst(contain_eos),
        "scores": lst(rewards),
        "chosen": lst(chosen),
        "rejected": lst(rejected),
        "loss": loss.item(),
        "grad": lst(grad),
        "stats": {
            "loss": loss.item(),
            "rewards/chosen": chosen_rewards.mean().item(),
            "rewards/rejected": rejected_rewards.mean().item(),
            "rewards/accuracies": (margins > 0).double().mean().item(),
            "rewards/margins": margins.mean().item(),
            "logps/chosen": pc.mean().item(),
            "logps/rejected": pr.mean().item(),
            "objective/kl": kl.item(),
            "objective/entropy": -sums.mean().item(),
            "objective/non_score_reward": (-beta * kl).item(),
        },
        "objective/scores": rewards.mean().item(),
        "objective/scores_margin": (rewards[chosen] - rewards[rejected]).mean().item(),
    }


cases = [
    case(4, 6, 0.1, "sigmoid", None),
    case(3, 5, 0.5, "sigmoid", 1.0),
    case(4, 4, 0.1, "ipo", 2.0),
    case(2, 3, 0.2, "sigmoid", None, ties=True),
]
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "online-dpo.json")
with open(out, "w") as f:
    json.dump({"cases": cases}, f, indent=1)
print("wrote", os.path.normpath(out))
