"""Golden values for tests/unit/lora.test.ts: LoRA on a tiny GPT-2, from an independent PyTorch
implementation (no peft, no transformers).

The base model is tests/golden/gpt-tiny.json's (its weights, written by gpt_reference.py, read
here); the GPT-2 forward is written again from scratch below. LoRA as Hu et al. 2021 and PEFT's
`peft/tuners/lora/layer.py` define it for GPT-2's Conv1D (fan_in_fan_out): for a targeted
module with weight W [in, out], y = x @ W + b + (alpha / r) * (x @ A^T) @ B^T with PEFT's
lora_A.weight A [r, in] and lora_B.weight B [out, r]; dropout 0 (its RNG cannot be matched).
Targets match a module when its name equals the target or ends with "." + target, so "c_proj"
selects both attn.c_proj and mlp.c_proj, as in PEFT.

Per case: A random (kaiming-uniform bounds, as nn.Linear's default), B random too (PEFT starts B
at 0, which would make every gradient of A zero and the test blind), fixed seed, float64 maths.
Outputs: logits with adapters on and off, the masked mean NLL, its gradients with respect to
every lora_A and lora_B (PEFT layouts), and A, B after one step of the project's Adam
(src/lib/rlhf/adam.ts: gradients clipped by their global norm as torch's clip_grad_norm_,
then torch.optim.AdamW with weight decay on the matrices).

Run with Debian's python:  /usr/bin/python3 scripts/golden/lora_reference.py
Writes tests/golden/lora.json.
"""
import json
import math
import os

import torch

torch.manual_seed(4321)
torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(__file__)
GOLDEN = os.path.join(HERE, "..", "..", "tests", "golden")

with open(os.path.join(GOLDEN, "gpt-tiny.json")) as f:
    BASE = json.load(f)
CONFIG = BASE["config"]
V, T, L, H, C = (CONFIG[k] for k in ("vocabSize", "blockSize", "nLayer", "nHead", "nEmbd"))
EPS = CONFIG["layerNormEps"]
PARAMS = {n: torch.tensor(w["data"]).reshape(w["shape"]) for n, w in BASE["weights"].items()}

ADAM = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weightDecay=0.01, maxGradNorm=0.5)
CASES = [
    dict(name="c_attn", r=4, alpha=8.0, targets=["c_attn"]),
    dict(name="c_attn+c_proj", r=2, alpha=3.0, targets=["c_attn", "c_proj"]),
]


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def modules():
    out = []
    for i in range(L):
        h = f"transformer.h.{i}."
        out += [(h + "attn.c_attn", C, 3 * C), (h + "attn.c_proj", C, C), (h + "mlp.c_fc", C, 4 * C), (h + "mlp.c_proj", 4 * C, C)]
    return out


def conv1d(p, lora, scaling, name, x):
    y = x @ p[name + ".weight"] + p[name + ".bias"]
    if lora is not None and name in lora:
        a, b = lora[name]
        y = y + scaling * ((x @ a.T) @ b.T)
    return y


def forward(p, idx, lora=None, scaling=1.0):
    B, t = idx.shape
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    hs = C // H
    for i in range(L):
        h = f"transformer.h.{i}."
        a = layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"])
        qkv = conv1d(p, lora, scaling, h + "attn.c_attn", a)
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (z.view(B, t, H, hs).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, t, C)
        x = x + conv1d(p, lora, scaling, h + "attn.c_proj", y)
        m = layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"])
        m = gelu_new(conv1d(p, lora, scaling, h + "mlp.c_fc", m))
        x = x + conv1d(p, lora, scaling, h + "mlp.c_proj", m)
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    return x @ p["transformer.wte.weight"].T


def r8(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def run_case(case, idx, targets, mask):
    r, alpha = case["r"], case["alpha"]
    scaling = alpha / r
    lora = {}
    for name, fin, fout in modules():
        if any(name == tg or name.endswith("." + tg) for tg in case["targets"]):
            bound = 1 / math.sqrt(fin)
            a = ((torch.rand(r, fin) * 2 - 1) * bound).float().double().requires_grad_(True)
            b = (0.2 * torch.randn(fout, r)).float().double().requires_grad_(True)
            lora[name] = (a, b)
    logits = forward(PARAMS, idx, lora, scaling)
    base_logits = forward(PARAMS, idx)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none").view(idx.shape)
    loss = (nll * mask).sum() / mask.sum()
    flat = [t for ab in lora.values() for t in ab]
    grads = torch.autograd.grad(loss, flat)
    # The project's Adam: clip by global norm (scale min(1, max / (norm + 1e-6))), then AdamW.
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    scale = min(1.0, ADAM["maxGradNorm"] / (norm.item() + 1e-6))
    ps = [torch.nn.Parameter(t.detach().clone()) for t in flat]
    opt = torch.optim.AdamW(ps, lr=ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"], weight_decay=ADAM["weightDecay"])
    for p, g in zip(ps, grads):
        p.grad = g * scale
    opt.step()
    out = {"name": case["name"], "r": r, "alpha": alpha, "targets": case["targets"], "adapters": {}}
    for k, name in enumerate(lora):
        a, b = lora[name]
        out["adapters"][name] = {
            "A": r8(a), "B": r8(b),
            "gradA": r8(grads[2 * k]), "gradB": r8(grads[2 * k + 1]),
            "stepA": r8(ps[2 * k]), "stepB": r8(ps[2 * k + 1]),
        }
    out.update(logits=r8(logits), baseLogits=r8(base_logits), loss=loss.item(), gradNorm=norm.item())
    return out


def main():
    B = 2
    idx = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    mask = (torch.rand(B, T) < 0.7).double()
    mask[0, 0] = 1.0
    out = {
        "description": "scripts/golden/lora_reference.py (PyTorch %s, float64); base weights from gpt-tiny.json" % torch.__version__,
        "adam": ADAM,
        "idx": idx.tolist(),
        "targets": targets.tolist(),
        "mask": mask.tolist(),
        "cases": [run_case(c, idx, targets, mask) for c in CASES],
    }
    path = os.path.join(GOLDEN, "lora.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes;", [(c["name"], c["loss"]) for c in out["cases"]])


if __name__ == "__main__":
    main()
