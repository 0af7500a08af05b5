"""Golden values for tests/unit/adam.test.ts: PyTorch's AdamW, the independent reference for
src/lib/rlhf/adam.ts `adamUpdate`.

Two parameters, a 2x3 matrix (with decoupled weight decay) and a 3-vector (none: weight decay
applies to matrices only, as the trainers here and nanoGPT do), three steps with fixed gradients.
torch.optim.AdamW: p <- p - lr*wd*p, then p <- p - lr * m_hat / (sqrt(v_hat) + eps), which is
the same as the TS form p <- p - lr * (m_hat / (sqrt(v_hat) + eps) + wd * p) (decay on the
pre-update p).

Run with Debian's python:  /usr/bin/python3 scripts/golden/adam_reference.py
Writes tests/golden/adam.json.
"""
import json
import os

import torch

torch.manual_seed(0)
LR, B1, B2, EPS, WD = 0.01, 0.9, 0.95, 1e-8, 0.1
w = torch.randn(2, 3, dtype=torch.float64)
b = torch.randn(3, dtype=torch.float64)
grads = [(torch.randn(2, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)) for _ in range(3)]

pw = torch.nn.Parameter(w.clone())
pb = torch.nn.Parameter(b.clone())
opt = torch.optim.AdamW(
    [{"params": [pw], "weight_decay": WD}, {"params": [pb], "weight_decay": 0.0}],
    lr=LR, betas=(B1, B2), eps=EPS,
)
after = []
for gw, gb in grads:
    pw.grad = gw.clone()
    pb.grad = gb.clone()
    opt.step()
    after.append({"w": pw.detach().tolist(), "b": pb.detach().tolist()})

out = {
    "hyper": {"lr": LR, "beta1": B1, "beta2": B2, "eps": EPS, "weightDecay": WD},
    "w": w.tolist(),
    "b": b.tolist(),
    "grads": [{"w": gw.tolist(), "b": gb.tolist()} for gw, gb in grads],
    "after": after,
    "torch": torch.__version__,
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "adam.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", os.path.normpath(path))
