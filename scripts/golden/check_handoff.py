"""Check an exported hand-off bundle: its weights load under GPT2LMHeadModel's names into an
independent PyTorch GPT-2 forward pass, and that pass gives the app's numbers.

    /usr/bin/python3 scripts/golden/check_handoff.py <bundle-dir> [--expect expected.json]

`transformers` is not installed here, so the GPT2LMHeadModel name map is written out by hand, as
`GPT2LMHeadModel(config).state_dict()` lists it (transformers/models/gpt2/modeling_gpt2.py):

    transformer.wte.weight                [vocab, n_embd]      nn.Embedding
    transformer.wpe.weight                [n_positions, n_embd]
    transformer.h.{i}.ln_1.weight / .bias [n_embd]             nn.LayerNorm
    transformer.h.{i}.attn.c_attn.weight  [n_embd, 3·n_embd]   Conv1D: y = x @ W + b ([in, out])
    transformer.h.{i}.attn.c_attn.bias    [3·n_embd]
    transformer.h.{i}.attn.c_proj.weight  [n_embd, n_embd]     Conv1D
    transformer.h.{i}.attn.c_proj.bias    [n_embd]
    transformer.h.{i}.ln_2.weight / .bias [n_embd]
    transformer.h.{i}.mlp.c_fc.weight     [n_embd, 4·n_embd]   Conv1D
    transformer.h.{i}.mlp.c_fc.bias       [4·n_embd]
    transformer.h.{i}.mlp.c_proj.weight   [4·n_embd, n_embd]   Conv1D
    transformer.h.{i}.mlp.c_proj.bias     [n_embd]
    transformer.ln_f.weight / .bias       [n_embd]
    lm_head.weight                        [vocab, n_embd]      tied to transformer.wte.weight

(Older transformers versions also list the buffers transformer.h.{i}.attn.bias / .masked_bias, the
causal mask; they are not parameters and are not in the file.) The file must hold exactly the
names above except lm_head.weight, which is rebuilt from wte as `tie_word_embeddings` says.

The forward pass is written here from the GPT-2 paper and modeling_gpt2.py, not imported from
scripts/golden/gpt_reference.py: pre-LayerNorm blocks, gelu_new, causal softmax attention, final
LayerNorm, logits = h @ lm_head.weightᵀ. float64 maths.

--expect: a JSON file {"ids": [[...], ...], "logprobs": [[...], ...]} where logprobs[b][t] is
log p(ids[b][t+1] | ids[b][..t]) from the app (the tests write it from the engine's
`inspectTokens`). Without it, the script checks names, shapes, finiteness and the tokenizer files.
Exit status 0 = everything matched.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F64": (torch.float64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        dtype, size = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=dtype).reshape(e["shape"]) if end > b else torch.zeros(e["shape"], dtype=dtype)
        out[name] = t.to(torch.float64)
    return out, meta, {k: v["dtype"] for k, v in header.items()}


def gpt2_state_dict_shapes(cfg):
    V, P, C, L = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"]
    inner = cfg.get("n_inner") or 4 * C
    s = {"transformer.wte.weight": [V, C], "transformer.wpe.weight": [P, C]}
    for i in range(L):
        h = f"transformer.h.{i}."
        s[h + "ln_1.weight"] = [C]
        s[h + "ln_1.bias"] = [C]
        s[h + "attn.c_attn.weight"] = [C, 3 * C]
        s[h + "attn.c_attn.bias"] = [3 * C]
        s[h + "attn.c_proj.weight"] = [C, C]
        s[h + "attn.c_proj.bias"] = [C]
        s[h + "ln_2.weight"] = [C]
        s[h + "ln_2.bias"] = [C]
        s[h + "mlp.c_fc.weight"] = [C, inner]
        s[h + "mlp.c_fc.bias"] = [inner]
        s[h + "mlp.c_proj.weight"] = [inner, C]
        s[h + "mlp.c_proj.bias"] = [C]
    s["transformer.ln_f.weight"] = [C]
    s["transformer.ln_f.bias"] = [C]
    s["lm_head.weight"] = [V, C]
    return s


def ln(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def gpt2_logits(sd, cfg, ids):
    """ids: LongTensor [T] -> logits [T, V], as GPT2LMHeadModel.forward (eval mode, no cache)."""
    C, H, L, eps = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["layer_norm_epsilon"]
    T = ids.shape[0]
    hd = C // H
    x = sd["transformer.wte.weight"][ids] + sd["transformer.wpe.weight"][torch.arange(T)]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(L):
        p = f"transformer.h.{i}."
        a = ln(x, sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], eps)
        q, k, v = (a @ sd[p + "attn.c_attn.weight"] + sd[p + "attn.c_attn.bias"]).split(C, dim=-1)
        q, k, v = (z.reshape(T, H, hd).permute(1, 0, 2) for z in (q, k, v))  # [H, T, hd]
        w = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        w = w.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (w @ v).permute(1, 0, 2).reshape(T, C)
        x = x + y @ sd[p + "attn.c_proj.weight"] + sd[p + "attn.c_proj.bias"]
        m = ln(x, sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], eps)
        x = x + gelu_new(m @ sd[p + "mlp.c_fc.weight"] + sd[p + "mlp.c_fc.bias"]) @ sd[p + "mlp.c_proj.weight"] + sd[p + "mlp.c_proj.bias"]
    x = ln(x, sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"], eps)
    return x @ sd["lm_head.weight"].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--expect")
    ap.add_argument("--tol", type=float, default=2e-4)
    args = ap.parse_args()
    problems = []
    mdir = os.path.join(args.bundle, "model")
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    if cfg.get("model_type") != "gpt2" or cfg.get("architectures") != ["GPT2LMHeadModel"]:
        problems.append(f"config.json: model_type {cfg.get('model_type')!r}, architectures {cfg.get('architectures')!r}")
    if cfg.get("activation_function") != "gelu_new" or not cfg.get("tie_word_embeddings", True):
        problems.append("config.json: expected gelu_new and tied embeddings")
    tensors, meta, dtypes = read_safetensors(os.path.join(mdir, "model.safetensors"))
    if meta.get("format") != "pt":
        problems.append(f"safetensors __metadata__.format is {meta.get('format')!r}, transformers wants 'pt'")
    want = gpt2_state_dict_shapes(cfg)
    stored = set(tensors)
    expected_in_file = set(want) - {"lm_head.weight"}
    if stored != expected_in_file:
        problems.append(f"names: missing {sorted(expected_in_file - stored)}, unexpected {sorted(stored - expected_in_file)}")
    for name in stored & expected_in_file:
        if list(tensors[name].shape) != want[name]:
            problems.append(f"{name}: shape {list(tensors[name].shape)}, GPT2LMHeadModel has {want[name]}")
        if not torch.isfinite(tensors[name]).all():
            problems.append(f"{name}: non-finite values")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    sd = dict(tensors)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tie_word_embeddings

    # Tokenizer files agree with each other and with the config.
    tok = json.load(open(os.path.join(mdir, "tokenizer.json")))
    vocab = json.load(open(os.path.join(mdir, "vocab.json")))
    merges = open(os.path.join(mdir, "merges.txt"), encoding="utf-8").read().split("\n")
    if tok["model"]["vocab"] != vocab or len(vocab) != cfg["vocab_size"]:
        problems.append("vocab.json differs from tokenizer.json's vocab or from vocab_size")
    if merges[0] != "#version: 0.2" or [m for m in merges[1:] if m] != tok["model"]["merges"]:
        problems.append("merges.txt differs from tokenizer.json's merges")
    if vocab.get("<|endoftext|>") != cfg["eos_token_id"]:
        problems.append("<|endoftext|> id differs from eos_token_id")

    worst = 0.0
    if args.expect:
        exp = json.load(open(args.expect))
        for ids, lps in zip(exp["ids"], exp["logprobs"]):
            t = torch.tensor(ids, dtype=torch.long)
            logp = gpt2_logits(sd, cfg, t).log_softmax(-1)
            got = logp[torch.arange(len(ids) - 1), t[1:]]
            worst = max(worst, (got - torch.tensor(lps, dtype=torch.float64)).abs().max().item())
        if not worst <= args.tol:
            problems.append(f"log-probs differ from the app's by up to {worst:.3g} (tolerance {args.tol})")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    n = sum(t.numel() for t in tensors.values())
    print(f"ok: {len(tensors)} tensors ({n} parameters, {sorted(set(dtypes.values()))}) under GPT2LMHeadModel names"
          + (f"; log-probs match the app within {worst:.2e}" if args.expect else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
