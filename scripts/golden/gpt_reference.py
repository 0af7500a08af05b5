"""Golden values for tests/unit/gpt.test.ts, from an independent PyTorch implementation.

A GPT-2 decoder written from scratch in torch (not via `transformers`): pre-LayerNorm blocks,
learned positions, GELU tanh approximation ("gelu_new"), causal self-attention with fused QKV
in Hugging Face Conv1D layout ([in, out], y = x @ W + b), tied LM head, final LayerNorm.
Parameters carry GPT2LMHeadModel names. Random weights (not GPT-2 init: larger values make
the test sensitive), fixed seed, float64 maths; the test compares the TF.js float32 model.

Run with Debian's python:  /usr/bin/python3 scripts/golden/gpt_reference.py
Writes tests/golden/gpt-tiny.json.
"""
import json
import math
import os

import torch

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)

CONFIG = dict(vocabSize=37, blockSize=16, nLayer=2, nHead=4, nEmbd=32, layerNormEps=1e-5)
V, T, L, H, C = (CONFIG[k] for k in ("vocabSize", "blockSize", "nLayer", "nHead", "nEmbd"))
EPS = CONFIG["layerNormEps"]


def shapes():
    s = {"transformer.wte.weight": [V, C], "transformer.wpe.weight": [T, C]}
    for i in range(L):
        h = f"transformer.h.{i}."
        s.update({
            h + "ln_1.weight": [C], h + "ln_1.bias": [C],
            h + "attn.c_attn.weight": [C, 3 * C], h + "attn.c_attn.bias": [3 * C],
            h + "attn.c_proj.weight": [C, C], h + "attn.c_proj.bias": [C],
            h + "ln_2.weight": [C], h + "ln_2.bias": [C],
            h + "mlp.c_fc.weight": [C, 4 * C], h + "mlp.c_fc.bias": [4 * C],
            h + "mlp.c_proj.weight": [4 * C, C], h + "mlp.c_proj.bias": [C],
        })
    s.update({"transformer.ln_f.weight": [C], "transformer.ln_f.bias": [C]})
    return s


def init():
    params = {}
    for name, shape in shapes().items():
        if "ln_" in name and name.endswith(".weight"):
            t = 1.0 + 0.1 * torch.randn(shape)
        elif name.endswith(".bias"):
            t = 0.05 * torch.randn(shape)
        else:
            t = 0.15 * torch.randn(shape)
        # Round to float32 so both sides start from identical numbers.
        params[name] = t.float().double().requires_grad_(True)
    return params


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p, idx):
    B, t = idx.shape
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:t]  # (B, T, C)
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    hs = C // H
    for i in range(L):
        h = f"transformer.h.{i}."
        a = layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"])
        qkv = a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]  # (B, T, 3C)
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (z.view(B, t, H, hs).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, t, C)
        x = x + y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        m = layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"])
        m = gelu_new(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"])
        x = x + m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    return x @ p["transformer.wte.weight"].T  # tied head, (B, T, V)


def main():
    params = init()
    B = 2
    idx = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    mask = (torch.rand(B, T) < 0.7).double()
    mask[0, 0] = 1.0
    logits = forward(params, idx)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none").view(B, T)
    loss = nll.mean()
    masked_loss = (nll * mask).sum() / mask.sum()
    grad_names = ["transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.ln_f.weight", "transformer.wpe.weight"]
    grads = torch.autograd.grad(loss, [params[n] for n in grad_names], retain_graph=True)
    masked_grads = torch.autograd.grad(masked_loss, [params[n] for n in grad_names])

    r = lambda t: [float(f"{v:.8g}") for v in t.detach().reshape(-1).tolist()]
    out = {
        "description": "scripts/golden/gpt_reference.py (PyTorch %s, float64)" % torch.__version__,
        "config": CONFIG,
        "weights": {n: {"shape": list(t.shape), "data": r(t)} for n, t in params.items()},
        "idx": idx.tolist(),
        "targets": targets.tolist(),
        "mask": mask.tolist(),
        "logits": r(logits),
        "loss": loss.item(),
        "maskedLoss": masked_loss.item(),
        "grads": {n: r(g) for n, g in zip(grad_names, grads)},
        "maskedGrads": {n: r(g) for n, g in zip(grad_names, masked_grads)},
    }
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "gpt-tiny.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes; loss", loss.item())


if __name__ == "__main__":
    main()
