"""Golden values and tiny checkpoints for Hugging Face GPT-2 and Llama models (issue #19).

Independent PyTorch implementations written from the formulas of Hugging Face `transformers`
(`models/gpt2/modeling_gpt2.py`, `models/llama/modeling_llama.py`); `transformers` itself is not
used. Maths in float64; weights rounded to float32 so both sides start from identical numbers.

GPT-2: pre-LayerNorm blocks, learned positions, GELU tanh ("gelu_new"), fused QKV in Conv1D layout
([in, out], y = x @ W + b), tied LM head, final LayerNorm.
Llama (as SmolLM2 uses it): RMSNorm (weight only, x · rsqrt(mean(x²) + eps) · w), RoPE with
`rope_theta` in the rotate_half convention (q·cos + rotate_half(q)·sin, rotate_half(x) = [−x₂, x₁],
inv_freq = theta^(−2i/d), cos/sin tables of cat(freqs, freqs)), grouped-query attention (kv head
h // n_rep serves query head h), SwiGLU MLP (down(silu(gate(x)) · up(x))), no biases, nn.Linear
layout ([out, in], y = x @ Wᵀ), tied or untied head.

1. tests/golden/hf-models.json: three cases (GPT-2 with vocabulary 50257 and context 1024, a
   SmolLM2-shaped tied Llama, an untied Llama) whose weights come from a formula, so the fixture
   holds only inputs and outputs. For a tensor `name` of HF shape `shape` (row-major, flat index i):

       seed(name) = Σ_j (j + 1) · charCode(name[j])  mod 10007      (j from 0)
       w[i]       = offset + scale · sin(seed(name) + 12.9898 · i)   rounded to float32

   with (offset, scale) = (1, 0.1) for norm weights, (0, 0.05) for biases, (0, 0.1) for embeddings
   and heads, (0, 0.15) for every other matrix. tests/unit/hf-models.test.ts implements the same.
   Outputs: logits at a few vocabulary columns for every position, the log-sum-exp of every
   position's full logits row, the mean cross-entropy loss, and rows of the loss gradient of named
   weights (HF layout).
2. tests/fixtures/hf/*: tiny real checkpoints (config.json + safetensors) with torch random weights
   (seed 19), and expected.json: logits of the whole vocabulary for a fixed input, for an end-to-end
   import test. gpt2-tiny, llama-tiny (tied, F32), llama-tiny-untied (F32), llama-tiny-bf16 (the
   llama-tiny weights in BF16; expected logits from the BF16-rounded weights) and llama-tiny-sharded
   (the llama-tiny weights in two shards with model.safetensors.index.json).

Run with Debian's python:  /usr/bin/python3 scripts/golden/hf_models_reference.py
"""
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float64)
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


# ---------------------------------------------------------------- configs (HF config.json fields)

GPT2_GOLDEN = dict(model_type="gpt2", vocab_size=50257, n_positions=1024, n_embd=64, n_layer=2, n_head=4,
                   layer_norm_epsilon=1e-5, activation_function="gelu_new")
LLAMA_GOLDEN = dict(model_type="llama", vocab_size=49152, hidden_size=64, intermediate_size=128,
                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                    rope_theta=100000.0, max_position_embeddings=2048, tie_word_embeddings=True,
                    hidden_act="silu")
LLAMA_UNTIED_GOLDEN = dict(LLAMA_GOLDEN, vocab_size=1000, rope_theta=10000.0, tie_word_embeddings=False,
                           num_key_value_heads=1, rms_norm_eps=1e-6)


def gpt2_shapes(c):
    V, T, C, L = c["vocab_size"], c["n_positions"], c["n_embd"], c["n_layer"]
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


def llama_shapes(c):
    V, C, L, I = c["vocab_size"], c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    hd = C // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd
    s = {"model.embed_tokens.weight": [V, C]}
    for i in range(L):
        h = f"model.layers.{i}."
        s.update({
            h + "input_layernorm.weight": [C],
            h + "self_attn.q_proj.weight": [C, C], h + "self_attn.k_proj.weight": [kv, C],
            h + "self_attn.v_proj.weight": [kv, C], h + "self_attn.o_proj.weight": [C, C],
            h + "post_attention_layernorm.weight": [C],
            h + "mlp.gate_proj.weight": [I, C], h + "mlp.up_proj.weight": [I, C],
            h + "mlp.down_proj.weight": [C, I],
        })
    s["model.norm.weight"] = [C]
    if not c["tie_word_embeddings"]:
        s["lm_head.weight"] = [V, C]
    return s


# ---------------------------------------------------------------- formula weights

def name_seed(name):
    return sum((j + 1) * ord(ch) for j, ch in enumerate(name)) % 10007


def formula_scale(name):
    if name.endswith(".bias"):
        return 0.0, 0.05
    if "ln_" in name or "norm" in name:
        return 1.0, 0.1
    if "wte" in name or "wpe" in name or "embed_tokens" in name or name == "lm_head.weight":
        return 0.0, 0.1
    return 0.0, 0.15


def formula_weight(name, shape):
    offset, scale = formula_scale(name)
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    w = offset + scale * torch.sin(name_seed(name) + 12.9898 * i)
    return w.float().double().reshape(shape).requires_grad_(True)


# ---------------------------------------------------------------- models

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_forward(c, p, idx):
    B, t = idx.shape
    C, H, eps = c["n_embd"], c["n_head"], c["layer_norm_epsilon"]
    hs = C // H
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(c["n_layer"]):
        h = f"transformer.h.{i}."
        a = layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps)
        qkv = a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]
        q, k, v = (z.view(B, t, H, hs).transpose(1, 2) for z in qkv.split(C, dim=2))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(hs)).masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, t, C)
        x = x + y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        m = layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps)
        m = gelu_new(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"])
        x = x + m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
    return x @ p["transformer.wte.weight"].T


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def llama_forward(c, p, idx):
    B, t = idx.shape
    C, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, eps, rep = C // H, c["rms_norm_eps"], H // KV
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.arange(t, dtype=torch.float64)[:, None] * inv_freq[None, :]  # (t, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # (t, hd)
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    lin = lambda x, name: x @ p[name].T  # nn.Linear, no bias
    x = p["model.embed_tokens.weight"][idx]
    for i in range(c["num_hidden_layers"]):
        h = f"model.layers.{i}."
        a = rms_norm(x, p[h + "input_layernorm.weight"], eps)
        q = lin(a, h + "self_attn.q_proj.weight").view(B, t, H, hd).transpose(1, 2)
        k = lin(a, h + "self_attn.k_proj.weight").view(B, t, KV, hd).transpose(1, 2)
        v = lin(a, h + "self_attn.v_proj.weight").view(B, t, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(B, KV, rep, t, hd).reshape(B, H, t, hd)  # repeat_kv
        v = v[:, :, None].expand(B, KV, rep, t, hd).reshape(B, H, t, hd)
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(hd)).masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, t, C)
        x = x + lin(y, h + "self_attn.o_proj.weight")
        m = rms_norm(x, p[h + "post_attention_layernorm.weight"], eps)
        gate = lin(m, h + "mlp.gate_proj.weight")
        m = lin(torch.nn.functional.silu(gate) * lin(m, h + "mlp.up_proj.weight"), h + "mlp.down_proj.weight")
        x = x + m
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.T


def forward(c, p, idx):
    return gpt2_forward(c, p, idx) if c["model_type"] == "gpt2" else llama_forward(c, p, idx)


def shapes(c):
    return gpt2_shapes(c) if c["model_type"] == "gpt2" else llama_shapes(c)


# ---------------------------------------------------------------- golden cases

def r(t):
    return [float(f"{v:.8g}") for v in t.detach().reshape(-1).tolist()]


def golden_case(c, B, T, seed, grad_rows):
    """grad_rows: {name: [row indices]} (None: every row) of the HF-layout gradient to store."""
    torch.manual_seed(seed)
    V = c["vocab_size"]
    params = {n: formula_weight(n, s) for n, s in shapes(c).items()}
    idx = torch.randint(0, V, (B, T))
    idx[0, 0] = V - 1
    targets = torch.randint(0, V, (B, T))
    logits = forward(c, params, idx)  # (B, T, V)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    names = list(grad_rows)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    cols = sorted({0, 1, 2, V // 3, V // 2, V - 2, V - 1, int(targets[0, -1])})
    stored = {}
    for n, g in zip(names, grads):
        rows = grad_rows[n] if grad_rows[n] is not None else list(range(g.shape[0]))
        rows = [int(x) for x in rows]
        stored[n] = {"rows": rows, "data": r(g[rows])}
    return {
        "hf": c,
        "idx": idx.tolist(),
        "targets": targets.tolist(),
        "columns": cols,
        "logits": r(logits[:, :, cols]),  # (B, T, len(cols))
        "logsumexp": r(torch.logsumexp(logits, -1)),  # (B, T)
        "loss": loss.item(),
        "grads": stored,
    }


def write_golden():
    gpt2 = golden_case(GPT2_GOLDEN, 1, 520, 1901, {
        "transformer.wte.weight": [50256, 0, 17, 40000],
        "transformer.wpe.weight": [0, 1, 300, 513, 519, 520],
        "transformer.h.0.attn.c_attn.weight": None,
        "transformer.h.1.mlp.c_proj.weight": None,
        "transformer.ln_f.weight": None,
        "transformer.h.0.ln_1.bias": None,
    })
    llama = golden_case(LLAMA_GOLDEN, 2, 80, 1902, {
        "model.embed_tokens.weight": [49151, 0, 5, 30000],
        "model.layers.0.self_attn.q_proj.weight": None,
        "model.layers.0.self_attn.k_proj.weight": None,
        "model.layers.1.self_attn.v_proj.weight": None,
        "model.layers.1.self_attn.o_proj.weight": None,
        "model.layers.0.mlp.gate_proj.weight": None,
        "model.layers.1.mlp.down_proj.weight": None,
        "model.layers.0.input_layernorm.weight": None,
        "model.norm.weight": None,
    })
    untied = golden_case(LLAMA_UNTIED_GOLDEN, 2, 40, 1903, {
        "model.embed_tokens.weight": [999, 0, 7],
        "lm_head.weight": [999, 0, 7, 500],
        "model.layers.1.self_attn.k_proj.weight": None,
        "model.layers.0.mlp.up_proj.weight": None,
        "model.layers.1.post_attention_layernorm.weight": None,
    })
    out = {
        "description": "scripts/golden/hf_models_reference.py (PyTorch %s, float64); weights from the formula in its header"
        % torch.__version__,
        "cases": {"gpt2": gpt2, "llama": llama, "llamaUntied": untied},
    }
    path = os.path.join(ROOT, "tests", "golden", "hf-models.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", path, os.path.getsize(path), "bytes; losses", gpt2["loss"], llama["loss"], untied["loss"])


# ---------------------------------------------------------------- tiny checkpoints

def safetensors_bytes(tensors, dtype="F32"):
    """Our own safetensors writer (the format's spec; no `safetensors` package here)."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        if dtype == "F32":
            data = t.detach().float().contiguous().numpy().tobytes()
        else:  # BF16: the bits of torch's bfloat16 (round to nearest even)
            data = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def hf_config_json(c):
    if c["model_type"] == "gpt2":
        return dict(c, architectures=["GPT2LMHeadModel"], n_ctx=c["n_positions"], n_inner=None,
                    bos_token_id=c["vocab_size"] - 1, eos_token_id=c["vocab_size"] - 1, tie_word_embeddings=True,
                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.02, torch_dtype="float32")
    return dict(c, architectures=["LlamaForCausalLM"], attention_bias=False, mlp_bias=False, rope_scaling=None,
                attention_dropout=0.0, head_dim=c["hidden_size"] // c["num_attention_heads"], pretraining_tp=1,
                bos_token_id=0, eos_token_id=0, initializer_range=0.02, use_cache=True, torch_dtype="float32")


def write_checkpoint(folder, c, params, files, dtype="F32"):
    """files: one file name, or a list of [name, [tensor names]] shards."""
    d = os.path.join(ROOT, "tests", "fixtures", "hf", folder)
    os.makedirs(d, exist_ok=True)
    cfg = hf_config_json(c)
    if dtype == "BF16":
        cfg["torch_dtype"] = "bfloat16"
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if isinstance(files, str):
        with open(os.path.join(d, files), "wb") as f:
            f.write(safetensors_bytes(params, dtype))
    else:
        weight_map, total = {}, 0
        for fname, names in files:
            with open(os.path.join(d, fname), "wb") as f:
                f.write(safetensors_bytes({n: params[n] for n in names}, dtype))
            for n in names:
                weight_map[n] = fname
                total += params[n].numel() * 4
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    # Expected logits of a fixed input with the weights as stored (BF16-rounded for BF16).
    stored = {n: (t.detach().to(torch.bfloat16) if dtype == "BF16" else t.detach().float()).double()
              for n, t in params.items()}
    model_params = dict(stored)
    if c["model_type"] == "gpt2":
        model_params = {("transformer." + n if not n.startswith("transformer.") else n): t for n, t in stored.items()}
    V = c["vocab_size"]
    input_ids = [[V - 1, 1, 2, 3, 40, 41, 100, 200, 7, 7, 7, V - 2]]
    logits = forward(c, model_params, torch.tensor(input_ids))
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"description": "logits of input_ids under these weights, float64 maths (scripts/golden/hf_models_reference.py)",
                   "input_ids": input_ids, "shape": list(logits.shape), "logits": r(logits)}, f, separators=(",", ":"))
    sizes = {fn: os.path.getsize(os.path.join(d, fn)) for fn in os.listdir(d)}
    print("wrote", d, sizes)


def random_params(c, gen):
    out = {}
    for n, s in shapes(c).items():
        if "ln_" in n or "norm" in n:
            t = 1.0 + 0.1 * torch.randn(s, generator=gen)
        elif n.endswith(".bias"):
            t = 0.05 * torch.randn(s, generator=gen)
        else:
            t = 0.2 * torch.randn(s, generator=gen)
        out[n] = t.float()
    return out


def write_checkpoints():
    gen = torch.Generator().manual_seed(19)
    gpt2 = dict(model_type="gpt2", vocab_size=512, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                layer_norm_epsilon=1e-5, activation_function="gelu_new")
    llama = dict(model_type="llama", vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=100000.0,
                 max_position_embeddings=128, tie_word_embeddings=True, hidden_act="silu")
    untied = dict(llama, tie_word_embeddings=False, num_key_value_heads=1)
    # GPT-2 as `save_pretrained` writes GPT2LMHeadModel: "transformer." names, the tied lm_head left out.
    write_checkpoint("gpt2-tiny", gpt2, random_params(gpt2, gen), "model.safetensors")
    lp = random_params(llama, gen)
    write_checkpoint("llama-tiny", llama, lp, "model.safetensors")
    write_checkpoint("llama-tiny-untied", untied, random_params(untied, gen), "model.safetensors")
    write_checkpoint("llama-tiny-bf16", llama, lp, "model.safetensors", dtype="BF16")
    names = list(lp)
    half = names.index("model.layers.1.input_layernorm.weight")
    write_checkpoint("llama-tiny-sharded", llama, lp, [
        ["model-00001-of-00002.safetensors", names[:half]],
        ["model-00002-of-00002.safetensors", names[half:]],
    ])


if __name__ == "__main__":
    write_checkpoints()
    write_golden()
