"""Golden values for tests/unit/pretrain-baselines.test.ts: the counting baselines of the
Pretrain page and its CSV reader, computed on an independent code path.

- Unigram and add-k bigram cross-entropy (nats / token), Jurafsky & Martin ch. 3.5: fitted on a
  training token stream with collections.Counter over zip() pairs; p(b|a) = (c(a,b)+k)/(c(a)+kV),
  p(b) = (c(b)+k)/(N+kV), where c(a) counts a as the first token of a training pair. Scored on
  every target of the validation stream after its first token, and on the targets of the first
  W windows of T+1 tokens (stride T), as src/lib/model/evaluate.ts scores the GPT.
- Bits per byte: total nats / (ln 2 * bytes).
- CSV: Python's csv module (RFC 4180 dialect 'excel') on a text with quoted commas, newlines and
  doubled quotes.

Run with Debian's python:  /usr/bin/python3 scripts/golden/pretrain_reference.py
Writes tests/golden/pretrain.json.
"""
import csv
import io
import json
import math
import os
import random
from collections import Counter


def baselines(train, val, V, k, lo, hi):
    uni = Counter(train)
    pairs = Counter(zip(train, train[1:]))
    first = Counter(train[:-1])
    N = len(train)
    u = b = 0.0
    for i in range(lo, hi):
        a, t = val[i - 1], val[i]
        u -= math.log((uni[t] + k) / (N + k * V))
        b -= math.log((pairs[(a, t)] + k) / (first[a] + k * V))
    n = hi - lo
    return {"unigram": u / n, "bigram": b / n, "tokens": n}


def main():
    rnd = random.Random(17)
    V = 40
    # A stream with structure (a Markov chain over V tokens) so the bigram beats the unigram.
    nxt = {a: [rnd.randrange(V) for _ in range(4)] for a in range(V)}

    def stream(n):
        out = [rnd.randrange(V)]
        while len(out) < n:
            out.append(rnd.choice(nxt[out[-1]]) if rnd.random() < 0.8 else rnd.randrange(V))
        return out

    train = stream(3000)
    val = stream(400)
    T, W = 16, 10
    cases = []
    for k in (0.01, 0.1, 1.0):
        cases.append({"k": k, "all": baselines(train, val, V, k, 1, len(val)),
                      "windows": baselines(train, val, V, k, 1, W * T + 1)})
    bpb = {"natsPerToken": 2.5, "tokens": 1000, "bytes": 3700,
           "bitsPerByte": 2.5 * 1000 / (math.log(2) * 3700)}
    csv_text = ('id,text,note\r\n1,"Hello, world",plain\r\n2,"She said ""hi""\nthen left",x\n'
                '3,unquoted text,"a,b"\n\n4,,empty\n5,"last ""one""",end')
    rows = [r for r in csv.reader(io.StringIO(csv_text, newline='')) if r]
    out = {"V": V, "T": T, "windows": W, "train": train, "val": val, "cases": cases, "bpb": bpb,
           "csv": {"text": csv_text, "rows": rows}}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "pretrain.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
