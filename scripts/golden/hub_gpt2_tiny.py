"""A tiny GPT-2 checkpoint laid out as a Hugging Face Hub folder, for tests of #19's import.

Writes tests/fixtures/hub/gpt2-tiny/ as `save_pretrained` + the GPT-2 tokenizer files would:
  config.json                          GPT-2 config (model_type "gpt2", tied head)
  model-00001-of-00002.safetensors     BF16 shards, GPT-2's own tensor names (no "transformer."
  model-00002-of-00002.safetensors       prefix, as in the `gpt2` repository), with the old
  model.safetensors.index.json           `h.N.attn.bias` causal-mask buffers (F32) the app skips
  vocab.json, merges.txt               a tiny byte-level BPE in GPT-2's format (256 byte symbols
                                       in GPT-2's id order, a few merges, <|endoftext|> last)
  generation_config.json, README.md    files a Hub folder has and the app ignores
and tests/fixtures/hub/gpt2-tiny.reference.json: token ids and the logits of an independent
PyTorch GPT-2 forward (scripts/golden/gpt_reference.py's maths, float64) on the BF16-rounded weights.

The safetensors writer is written here from the format's spec (8-byte little-endian header
length, JSON header, data) so the fixture does not depend on the `safetensors` package.

Run with Debian's python:  /usr/bin/python3 scripts/golden/hub_gpt2_tiny.py
"""
import json
import math
import os
import struct

import torch

torch.manual_seed(19)
torch.set_default_dtype(torch.float64)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "hub")
DIR = os.path.join(OUT, "gpt2-tiny")
T, L, H, C = 64, 2, 2, 16
EPS = 1e-5


def bytes_to_unicode():
    """openai/gpt-2 encoder.py: printable bytes map to themselves, the rest to 256 + n."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tokenizer():
    b2u = bytes_to_unicode()
    vocab = {ch: i for i, ch in enumerate(b2u.values())}  # GPT-2's order: printable bytes first
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"),
              ("Ġ", "s"), ("r", "e"), ("a", "n"), ("Ġ", "w"), ("o", "u"), ("Ġthe", "r")]
    for l, r in merges:
        vocab.setdefault(l + r, len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p, idx, V):
    B, t = idx.shape
    x = p["wte.weight"][idx] + p["wpe.weight"][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    hs = C // H
    for i in range(L):
        h = f"h.{i}."
        a = layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"])
        q, k, v = (a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]).split(C, dim=2)
        q, k, v = (z.view(B, t, H, hs).transpose(1, 2) for z in (q, k, v))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(hs)).masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(1, 2).reshape(B, t, C) @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        m = gelu_new(layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"]) @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"])
        x = x + m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    return layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]) @ p["wte.weight"].T


def params(V):
    shapes = {"wte.weight": [V, C], "wpe.weight": [T, C]}
    for i in range(L):
        h = f"h.{i}."
        shapes.update({
            h + "ln_1.weight": [C], h + "ln_1.bias": [C],
            h + "attn.c_attn.weight": [C, 3 * C], h + "attn.c_attn.bias": [3 * C],
            h + "attn.c_proj.weight": [C, C], h + "attn.c_proj.bias": [C],
            h + "ln_2.weight": [C], h + "ln_2.bias": [C],
            h + "mlp.c_fc.weight": [C, 4 * C], h + "mlp.c_fc.bias": [4 * C],
            h + "mlp.c_proj.weight": [4 * C, C], h + "mlp.c_proj.bias": [C],
        })
    shapes.update({"ln_f.weight": [C], "ln_f.bias": [C]})
    p = {}
    for name, shape in shapes.items():
        if "ln_" in name and name.endswith(".weight"):
            t = 1.0 + 0.1 * torch.randn(shape)
        elif name.endswith(".bias"):
            t = 0.05 * torch.randn(shape)
        else:
            t = 0.3 * torch.randn(shape)
        p[name] = t.to(torch.bfloat16)  # stored as BF16; the reference uses the same rounded values
    return p


def write_safetensors(path, tensors):
    """tensors: name → (dtype string, raw little-endian bytes, shape)."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, raw, shape) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, raw, _ in tensors.values():
            f.write(raw)
    return offset


def raw(t):
    if t.dtype == torch.bfloat16:
        return "BF16", t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    return "F32", t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()


def main():
    os.makedirs(DIR, exist_ok=True)
    vocab, merges = tokenizer()
    V = len(vocab)
    with open(os.path.join(DIR, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(DIR, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{l} {r}\n" for l, r in merges))
    config = {
        "_name_or_path": "gpt2-tiny", "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "activation_function": "gelu_new", "attn_pdrop": 0.1, "embd_pdrop": 0.1, "resid_pdrop": 0.1,
        "bos_token_id": V - 1, "eos_token_id": V - 1, "initializer_range": 0.02, "layer_norm_epsilon": EPS,
        "n_ctx": T, "n_positions": T, "n_embd": C, "n_head": H, "n_layer": L, "n_inner": None,
        "vocab_size": V, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.46.0",
    }
    with open(os.path.join(DIR, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(DIR, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": V - 1, "eos_token_id": V - 1, "transformers_version": "4.46.0"}, f, indent=2)
    with open(os.path.join(DIR, "README.md"), "w") as f:
        f.write("A tiny random GPT-2 for tests (scripts/golden/hub_gpt2_tiny.py).\n")

    p = params(V)
    mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T).to(torch.float32)
    shards = [{}, {}]
    for name, t in p.items():
        shards[0 if name.startswith(("wte", "wpe", "h.0.")) else 1][name] = t
        if name.endswith("ln_1.weight"):  # the old causal-mask buffer sits with its block
            shards[0 if name.startswith("h.0.") else 1][name.replace("ln_1.weight", "attn.bias")] = mask
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name, t in shard.items():
            dtype, b = raw(t)
            tensors[name] = (dtype, b, list(t.shape))
            weight_map[name] = fname
        total += write_safetensors(os.path.join(DIR, fname), tensors)
    with open(os.path.join(DIR, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)

    p64 = {k: v.to(torch.float64) for k, v in p.items()}
    idx = torch.tensor([[V - 1, 5, 80, 71, 266 % V, 3, 200, 7, 44, 270 % V, 11, 1]])
    logits = forward(p64, idx, V)
    ref = {
        "ids": idx[0].tolist(),
        "logits": [[round(float(x), 7) for x in row] for row in logits[0]],
        "sums": {k: float(v.sum()) for k, v in p64.items()},
    }
    with open(os.path.join(OUT, "gpt2-tiny.reference.json"), "w") as f:
        json.dump(ref, f)
    print("wrote", DIR, "V =", V)


if __name__ == "__main__":
    main()
