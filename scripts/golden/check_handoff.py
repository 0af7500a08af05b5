"""Check an exported hand-off bundle: its weights load under GPT2LMHeadModel's names into an
independent PyTorch GPT-2 forward pass (or, for a Llama-family model, under LlamaForCausalLM's names
into an independent Llama forward pass), and that pass gives the app's numbers.

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

A Llama bundle (config.json model_type "llama", architectures ["LlamaForCausalLM"]) is checked
against LlamaForCausalLM(config).state_dict() (transformers/models/llama/modeling_llama.py), every
nn.Linear weight [out, in], no biases:

    model.embed_tokens.weight                         [vocab, hidden]
    model.layers.{i}.input_layernorm.weight           [hidden]          LlamaRMSNorm
    model.layers.{i}.self_attn.q_proj.weight          [heads·hd, hidden]
    model.layers.{i}.self_attn.k_proj.weight          [kv_heads·hd, hidden]
    model.layers.{i}.self_attn.v_proj.weight          [kv_heads·hd, hidden]
    model.layers.{i}.self_attn.o_proj.weight          [hidden, heads·hd]
    model.layers.{i}.post_attention_layernorm.weight  [hidden]
    model.layers.{i}.mlp.gate_proj.weight / up_proj   [intermediate, hidden]
    model.layers.{i}.mlp.down_proj.weight             [hidden, intermediate]
    model.norm.weight                                 [hidden]
    lm_head.weight                                    [vocab, hidden]   not stored when tie_word_embeddings

and its forward written here from modeling_llama.py and the RoFormer / Llama papers: RMSNorm
x·rsqrt(mean(x²)+eps)·w, RoPE in the rotate-half convention with inv_freq = θ^(−2i/hd), causal
softmax attention with key/value head ⌊h / (heads/kv_heads)⌋ serving query head h, SwiGLU
down(silu(gate(x))·up(x)), final RMSNorm, logits = h @ lm_head.weightᵀ. float64 maths.

--expect: a JSON file {"ids": [[...], ...], "logprobs": [[...], ...]} where logprobs[b][t] is
log p(ids[b][t+1] | ids[b][..t]) from the app (the tests write it from the engine's
`inspectTokens`). Without it, the script checks names, shapes, finiteness and the tokenizer files.

The reward model (bundle folder reward_model/, when present) is checked the same way against
`GPT2ForSequenceClassification` (modeling_gpt2.py, the class TRL's reward models and
`reward_model_name_or_path` load), or for a Llama-family model `LlamaForSequenceClassification`
(modeling_llama.py: `model = LlamaModel`, the same score head and pooling): the names above
without lm_head.weight, plus

    score.weight                          [num_labels, n_embd]  nn.Linear(n_embd, num_labels, bias=False)

and its forward, written here from the class's published code (transformers >= 4.49,
huggingface/transformers#35911): hidden = GPT2Model(input_ids, attention_mask) after ln_f,
logits = hidden @ score.weightᵀ [B, T, 1], and the score of row b is logits[b, last_b] where
last_b = argmax_t(t · [input_ids[b, t] != pad_token_id]), the rightmost non-pad token. Rows are
right-padded with pad_token_id into one batch, as TRL's GRPOTrainer / RLOOTrainer do. A Llama
model's final RMSNorm has no bias to fold the head's constant into, so config.json's
rlhf_playground.score_offset is added to the class's logits before comparing (it must be 0 for GPT-2).

--expect-reward: a JSON file {"ids": [[...], ...], "scores": [...]}: the app's input ids
([eot] + prompt + response) and its normalised rewards (the tests write it from the engine's
`scoreResponses`). With config.json's rlhf_playground.pooling "last" HF's scores (+ score_offset) must match; with
"mean" (no counterpart in HF's class) the app's scores must match a mean over each row's real tokens
of the same per-token logits (the weights are right), and the script reports how far HF's scores are.
The bundle's rlhf_reward.py (the reward function the TRL configs use for mean pooling) is imported
and its pooling code is run on this script's forward pass; it must give the app's scores.

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


def gpt2_hidden(sd, cfg, ids, attention_mask=None):
    """ids: LongTensor [B, T] -> hidden states after ln_f [B, T, C], as GPT2Model.forward (eval
    mode, no cache). attention_mask [B, T] (1 = real token) masks padded keys, as HF does."""
    C, H, L, eps = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["layer_norm_epsilon"]
    B, T = ids.shape
    hd = C // H
    x = sd["transformer.wte.weight"][ids] + sd["transformer.wpe.weight"][torch.arange(T)]
    mask = torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T)
    if attention_mask is not None:
        mask = mask & attention_mask.bool()[:, None, None, :]
    for i in range(L):
        p = f"transformer.h.{i}."
        a = ln(x, sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], eps)
        q, k, v = (a @ sd[p + "attn.c_attn.weight"] + sd[p + "attn.c_attn.bias"]).split(C, dim=-1)
        q, k, v = (z.reshape(B, T, H, hd).permute(0, 2, 1, 3) for z in (q, k, v))  # [B, H, T, hd]
        w = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        w = w.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (w @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ sd[p + "attn.c_proj.weight"] + sd[p + "attn.c_proj.bias"]
        m = ln(x, sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], eps)
        x = x + gelu_new(m @ sd[p + "mlp.c_fc.weight"] + sd[p + "mlp.c_fc.bias"]) @ sd[p + "mlp.c_proj.weight"] + sd[p + "mlp.c_proj.bias"]
    return ln(x, sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"], eps)


def gpt2_logits(sd, cfg, ids):
    """ids: LongTensor [T] -> logits [T, V], as GPT2LMHeadModel.forward (eval mode, no cache)."""
    return gpt2_hidden(sd, cfg, ids[None])[0] @ sd["lm_head.weight"].T


def llama_state_dict_shapes(cfg):
    V, C, L, I = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or C // H
    s = {"model.embed_tokens.weight": [V, C]}
    for i in range(L):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = [C]
        s[p + "self_attn.q_proj.weight"] = [H * hd, C]
        s[p + "self_attn.k_proj.weight"] = [KV * hd, C]
        s[p + "self_attn.v_proj.weight"] = [KV * hd, C]
        s[p + "self_attn.o_proj.weight"] = [C, H * hd]
        s[p + "post_attention_layernorm.weight"] = [C]
        s[p + "mlp.gate_proj.weight"] = [I, C]
        s[p + "mlp.up_proj.weight"] = [I, C]
        s[p + "mlp.down_proj.weight"] = [C, I]
    s["model.norm.weight"] = [C]
    s["lm_head.weight"] = [V, C]
    return s


def rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def llama_hidden(sd, cfg, ids, attention_mask=None):
    """ids: LongTensor [B, T] -> hidden states after the final RMSNorm [B, T, C], as
    LlamaModel.forward (eval mode, no cache; positions 0..T-1 in every row, as HF's cache_position
    gives right-padded rows). attention_mask [B, T] (1 = real token) masks padded keys, as HF does."""
    C, L, eps = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["rms_norm_eps"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or C // H
    B, T = ids.shape
    inv_freq = 1.0 / (float(cfg.get("rope_theta", 10000.0)) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [T, hd/2]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()  # [T, hd]

    def rope(z):  # z: [B, heads, T, hd]
        z1, z2 = z[..., : hd // 2], z[..., hd // 2:]
        return z * cos + torch.cat([-z2, z1], -1) * sin

    mask = torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T)
    if attention_mask is not None:
        mask = mask & attention_mask.bool()[:, None, None, :]
    x = sd["model.embed_tokens.weight"][ids]  # [B, T, C]
    for i in range(L):
        p = f"model.layers.{i}."
        a = rms(x, sd[p + "input_layernorm.weight"], eps)
        q = (a @ sd[p + "self_attn.q_proj.weight"].T).reshape(B, T, H, hd).transpose(1, 2)
        k = (a @ sd[p + "self_attn.k_proj.weight"].T).reshape(B, T, KV, hd).transpose(1, 2)
        v = (a @ sd[p + "self_attn.v_proj.weight"].T).reshape(B, T, KV, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        g = H // KV
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)  # kv head h // g serves query head h
        w = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        w = w.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (w @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + y @ sd[p + "self_attn.o_proj.weight"].T
        m = rms(x, sd[p + "post_attention_layernorm.weight"], eps)
        gate = m @ sd[p + "mlp.gate_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * (m @ sd[p + "mlp.up_proj.weight"].T)) @ sd[p + "mlp.down_proj.weight"].T
    return rms(x, sd["model.norm.weight"], eps)


def llama_logits(sd, cfg, ids):
    """ids: LongTensor [T] -> logits [T, V], as LlamaForCausalLM.forward (eval mode, no cache)."""
    return llama_hidden(sd, cfg, ids[None])[0] @ sd["lm_head.weight"].T


def is_llama(cfg):
    return cfg.get("model_type") == "llama"


def trunk_hidden(cfg):
    """The trunk's forward for the config's architecture: gpt2_hidden or llama_hidden."""
    return llama_hidden if is_llama(cfg) else gpt2_hidden


def seq_cls_scores(sd, cfg, rows):
    """GPT2ForSequenceClassification.forward (or LlamaForSequenceClassification.forward, the same
    head and pooling on LlamaModel) on rows right-padded with pad_token_id (as TRL's
    reward_processing_class(..., padding=True, padding_side="right") does): returns the pooled
    scores [B] (HF: rightmost non-pad token), the per-token logits [B, T] and the padding mask."""
    pad = cfg["pad_token_id"]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    attn = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        attn[b, : len(r)] = 1
    logits = trunk_hidden(cfg)(sd, cfg, ids, attn) @ sd["score.weight"].T  # [B, T, num_labels]
    non_pad = (ids != pad).to(torch.int64)
    last = (torch.arange(T) * non_pad).argmax(-1)
    return logits[torch.arange(len(rows)), last, 0], logits[..., 0], attn


def check_reward_model(bundle, expect_path, tol):
    """Problems (list of str) and a summary line for reward_model/ in the bundle."""
    rdir = os.path.join(bundle, "reward_model")
    cfg = json.load(open(os.path.join(rdir, "config.json")))
    problems = []
    llama = is_llama(cfg)
    cls = "LlamaForSequenceClassification" if llama else "GPT2ForSequenceClassification"
    if cfg.get("model_type") not in ("gpt2", "llama") or cfg.get("architectures") != [cls]:
        problems.append(f"reward_model/config.json: model_type {cfg.get('model_type')!r}, architectures {cfg.get('architectures')!r}")
    num_labels = cfg.get("num_labels", len(cfg.get("id2label") or {}))
    if num_labels != 1 or cfg.get("id2label") not in (None, {"0": "LABEL_0"}):
        problems.append(f"reward_model/config.json: num_labels {num_labels!r}, id2label {cfg.get('id2label')!r}; a reward model has 1 label")
    if not isinstance(cfg.get("pad_token_id"), int):
        problems.append("reward_model/config.json: pad_token_id must be set (HF finds the last token by it)")
    tensors, meta, _ = read_safetensors(os.path.join(rdir, "model.safetensors"))
    if meta.get("format") != "pt":
        problems.append(f"reward_model safetensors __metadata__.format is {meta.get('format')!r}, transformers wants 'pt'")
    shapes = llama_state_dict_shapes(cfg) if llama else gpt2_state_dict_shapes(cfg)
    want = {k: v for k, v in shapes.items() if k != "lm_head.weight"}
    want["score.weight"] = [1, cfg["hidden_size"] if llama else cfg["n_embd"]]
    if set(tensors) != set(want):
        problems.append(f"reward_model names: missing {sorted(set(want) - set(tensors))}, unexpected {sorted(set(tensors) - set(want))}")
    for name in set(tensors) & set(want):
        if list(tensors[name].shape) != want[name]:
            problems.append(f"reward_model {name}: shape {list(tensors[name].shape)}, {cls} has {want[name]}")
        if not torch.isfinite(tensors[name]).all():
            problems.append(f"reward_model {name}: non-finite values")
    for f in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        if not os.path.exists(os.path.join(rdir, f)):
            problems.append(f"reward_model/{f} is missing (TRL loads the reward tokenizer from the reward model's folder)")
    playground = cfg.get("rlhf_playground") or {}
    offset = float(playground.get("score_offset", 0.0))
    if not math.isfinite(offset) or (offset != 0 and not llama):
        problems.append(f"reward_model/config.json: score_offset {offset!r}; a GPT-2 export folds it into ln_f.bias")
    if problems or not expect_path:
        return problems, f"reward model: {len(tensors)} tensors under {cls} names"
    exp = json.load(open(expect_path))
    hf, per_token, attn = seq_cls_scores(tensors, cfg, exp["ids"])
    app = torch.tensor(exp["scores"], dtype=torch.float64)
    pooling = playground.get("pooling", "last")
    # The tab's reward = the class's logit + score_offset (0 when folded into the weights).
    hf_err = (hf + offset - app).abs().max().item()
    plus = f" + score_offset {offset:.6g}" if offset else ""
    if pooling == "last":
        if not hf_err <= tol:
            problems.append(f"reward model: {cls} scores{plus} differ from the app's by up to {hf_err:.3g} (tolerance {tol})")
        return problems, f"reward model: {len(tensors)} tensors; {cls} scores{plus} match the app within {hf_err:.2e}"
    mean = (per_token * attn).sum(-1) / attn.sum(-1) + offset
    mean_err = (mean - app).abs().max().item()
    if not mean_err <= tol:
        problems.append(f"reward model (mean pooling): the mean of the per-token scores differs from the app's by up to {mean_err:.3g} (tolerance {tol})")
    return problems, (f"reward model: {len(tensors)} tensors; mean pooling reproduces the app within {mean_err:.2e}; "
                      f"{cls} (last token) differs from the app by up to {hf_err:.3g}")


def check_reward_function(bundle, expect_path, tol):
    """Run the bundle's rlhf_reward.py pooling code (the TRL reward function) on this script's own
    forward pass: `model.base_model(...)` and `model.score` are stand-ins built on gpt2_hidden or
    llama_hidden (HF's `base_model` is the class's `transformer` or `model`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rlhf_reward", os.path.join(bundle, "rlhf_reward.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # imports transformers only when its reward_model() first loads
    rdir = os.path.join(bundle, "reward_model")
    cfg = json.load(open(os.path.join(rdir, "config.json")))
    sd, _, _ = read_safetensors(os.path.join(rdir, "model.safetensors"))

    class Out:
        def __init__(self, h):
            self.last_hidden_state = h

    class Model:
        def base_model(self, input_ids, attention_mask):
            return Out(trunk_hidden(cfg)(sd, cfg, input_ids, attention_mask))

        def score(self, h):
            return h @ sd["score.weight"].T

    exp = json.load(open(expect_path))
    rows = exp["ids"]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), cfg["pad_token_id"], dtype=torch.long)
    attn = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        attn[b, : len(r)] = 1
    how = mod.pooling(rdir)
    got = mod.pooled_scores(Model(), ids, attn, how, mod.offset(rdir))
    err = (got - torch.tensor(exp["scores"], dtype=torch.float64)).abs().max().item()
    if not err <= tol:
        return [f"rlhf_reward.py ({how} pooling) differs from the app's scores by up to {err:.3g} (tolerance {tol})"], None
    return [], f"rlhf_reward.py ({how} pooling) reproduces the app within {err:.2e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--expect")
    ap.add_argument("--expect-reward")
    ap.add_argument("--tol", type=float, default=2e-4)
    args = ap.parse_args()
    problems = []
    mdir = os.path.join(args.bundle, "model")
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    llama = cfg.get("model_type") == "llama"
    arch = "LlamaForCausalLM" if llama else "GPT2LMHeadModel"
    tied = cfg.get("tie_word_embeddings", not llama)  # LlamaConfig defaults to untied, GPT2Config to tied
    if cfg.get("model_type") not in ("gpt2", "llama") or cfg.get("architectures") != [arch]:
        problems.append(f"config.json: model_type {cfg.get('model_type')!r}, architectures {cfg.get('architectures')!r}")
    elif llama and (cfg.get("hidden_act") != "silu" or cfg.get("attention_bias") or cfg.get("mlp_bias") or cfg.get("rope_scaling")):
        problems.append("config.json: expected silu, no attention or MLP biases and no rope_scaling")
    elif not llama and (cfg.get("activation_function") != "gelu_new" or not tied):
        problems.append("config.json: expected gelu_new and tied embeddings")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    tensors, meta, dtypes = read_safetensors(os.path.join(mdir, "model.safetensors"))
    if meta.get("format") != "pt":
        problems.append(f"safetensors __metadata__.format is {meta.get('format')!r}, transformers wants 'pt'")
    want = llama_state_dict_shapes(cfg) if llama else gpt2_state_dict_shapes(cfg)
    stored = set(tensors)
    expected_in_file = set(want) - ({"lm_head.weight"} if tied else set())
    if stored != expected_in_file:
        problems.append(f"names: missing {sorted(expected_in_file - stored)}, unexpected {sorted(stored - expected_in_file)}")
    for name in stored & expected_in_file:
        if list(tensors[name].shape) != want[name]:
            problems.append(f"{name}: shape {list(tensors[name].shape)}, {arch} has {want[name]}")
        if not torch.isfinite(tensors[name]).all():
            problems.append(f"{name}: non-finite values")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    sd = dict(tensors)
    if tied:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight" if llama else "transformer.wte.weight"]

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
            logp = (llama_logits if llama else gpt2_logits)(sd, cfg, t).log_softmax(-1)
            got = logp[torch.arange(len(ids) - 1), t[1:]]
            worst = max(worst, (got - torch.tensor(lps, dtype=torch.float64)).abs().max().item())
        if not worst <= args.tol:
            problems.append(f"log-probs differ from the app's by up to {worst:.3g} (tolerance {args.tol})")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    reward_line = None
    if os.path.isdir(os.path.join(args.bundle, "reward_model")):
        rp, reward_line = check_reward_model(args.bundle, args.expect_reward, args.tol)
        problems += rp
        fn_line = None
        if not rp and args.expect_reward and os.path.exists(os.path.join(args.bundle, "rlhf_reward.py")):
            fp, fn_line = check_reward_function(args.bundle, args.expect_reward, args.tol)
            problems += fp
        if fn_line:
            reward_line += "\nok: " + fn_line
    elif args.expect_reward:
        problems.append("--expect-reward given but the bundle has no reward_model/ folder")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    n = sum(t.numel() for t in tensors.values())
    print(f"ok: {len(tensors)} tensors ({n} parameters, {sorted(set(dtypes.values()))}) under {arch} names"
          + (f"; log-probs match the app within {worst:.2e}" if args.expect else ""))
    if reward_line:
        print("ok: " + reward_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
