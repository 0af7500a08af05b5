"""Golden values for tests/unit/diversity.test.ts: distinct-n and self-BLEU, written from the papers.

An independent implementation (standard library only; NLTK is not installed), on a different code
path from src/lib/rlhf/diversity.ts: n-grams as tuples from zip(), collections.Counter with `&`/`|`
for clipping, exact fractions.Fraction precisions.

- distinct-n (Li et al. 2016): distinct n-grams over all texts / all n-grams (0 when none).
- BLEU (Papineni et al. 2002): modified n-gram precision, each hypothesis n-gram clipped by its
  largest count in any single reference; brevity penalty with the closest reference length (the
  shorter on a tie, as NLTK's `closest_ref_length`); uniform weights 1/max_n; geometric mean.
- Smoothing: Chen & Cherry 2014 method 1 with epsilon 0.1, as NLTK's SmoothingFunction().method1
  that Texygen uses: a zero precision becomes epsilon / max(1, hypothesis n-grams); a hypothesis
  with no unigram match scores 0 (NLTK's early return).
- self-BLEU (Zhu et al. 2018, Texygen utils/metrics/SelfBleu.py): each text against all others,
  averaged. NaN (written as null) for fewer than two texts.
- Tokens: str.split() on whitespace, case and punctuation kept.

Run with Debian's python:  /usr/bin/python3 scripts/golden/diversity_reference.py
Writes tests/golden/diversity.json.
"""
import json
import math
import os
import random
from collections import Counter
from fractions import Fraction

EPSILON = 0.1


def ngrams(tokens, n):
    return list(zip(*[tokens[i:] for i in range(n)]))


def distinct(texts, n):
    grams = [g for t in texts for g in ngrams(t.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def modified_precision(hyp, refs, n):
    counts = Counter(ngrams(hyp, n))
    max_ref = Counter()
    for ref in refs:
        max_ref |= Counter(ngrams(ref, n))  # elementwise max
    clipped = counts & max_ref  # elementwise min
    return sum(clipped.values()), max(1, sum(counts.values()))


def bleu(hyp, refs, max_n=4):
    precisions = []
    for n in range(1, max_n + 1):
        num, den = modified_precision(hyp, refs, n)
        precisions.append((num, den))
    if precisions[0][0] == 0:
        return 0.0
    log_p = 0.0
    for num, den in precisions:
        p = Fraction(num, den) if num > 0 else EPSILON / den
        log_p += math.log(p) / max_n
    c = len(hyp)
    r = min((len(ref) for ref in refs), key=lambda L: (abs(L - c), L))
    if c > r:
        bp = 1.0
    elif c == 0:
        bp = 0.0
    else:
        bp = math.exp(1 - r / c)
    return bp * math.exp(log_p)


def self_bleu(texts, max_n=4):
    if len(texts) < 2:
        return None
    toks = [t.split() for t in texts]
    scores = [bleu(toks[i], toks[:i] + toks[i + 1:], max_n) for i in range(len(toks))]
    return sum(scores) / len(scores)


def random_texts(rng, count, vocab, lo, hi):
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi))) for _ in range(count)]


def main():
    rng = random.Random(7)
    small = ["the", "movie", "was", "great", "bad", "and", "I", "loved", "it", "."]
    large = small + ["plot", "acting", "fine", "boring", "story", "ending", "a", "very", "not", "really",
                     "film", "scene", "music", "slow", "funny", "sad", "long", "short", "good", "awful"]
    sets = {
        "review-like": [
            "The movie was great and I loved it .",
            "The movie was great , I loved the acting .",
            "The plot was slow and the ending was bad .",
            "I did not like it at all .",
        ],
        "identical": ["the cat sat on the mat"] * 3,
        "disjoint": ["a b c d e", "f g h i j", "k l m n o"],
        "short-and-empty": ["yes", "", "no no", "yes yes yes", "\tyes  no\n"],
        "punctuation-kept": ["great.", "great", "Great!", "great."],
        "random-small-vocab": random_texts(rng, 8, small, 3, 14),
        "random-large-vocab": random_texts(rng, 12, large, 5, 25),
        "random-few": random_texts(rng, 2, large, 1, 6),
        "single": ["only one text here"],
    }
    cases = []
    for name, texts in sets.items():
        case = {
            "name": name,
            "texts": texts,
            "distinct": {str(n): distinct(texts, n) for n in (1, 2, 3, 4)},
            "selfBleu4": self_bleu(texts, 4),
            "selfBleu2": self_bleu(texts, 2),
        }
        if len(texts) >= 2:
            toks = [t.split() for t in texts]
            case["bleu4"] = [bleu(toks[i], toks[:i] + toks[i + 1:], 4) for i in range(len(toks))]
        cases.append(case)
    # A published anchor: NLTK's sentence_bleu docstring example (Papineni et al.'s hypothesis 1
    # against their three references) scores 0.5045666840058485 with no smoothing needed.
    hyp = "It is a guide to action which ensures that the military always obeys the commands of the party"
    refs = [
        "It is a guide to action that ensures that the military will forever heed Party commands",
        "It is the guiding principle which guarantees the military forces always being under the command of the Party",
        "It is the practical guide for the army always to heed the directions of the party",
    ]
    anchor = bleu(hyp.split(), [r.split() for r in refs], 4)
    assert abs(anchor - 0.5045666840058485) < 1e-12, anchor
    published = {"hypothesis": hyp, "references": refs, "bleu4": anchor, "nltkDocstring": 0.5045666840058485}
    out = {"description": "scripts/golden/diversity_reference.py (standard library, exact fractions)", "cases": cases, "published": published}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "diversity.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))
    for c in cases:
        print(f"{c['name']:20s} d1={c['distinct']['1']:.3f} d2={c['distinct']['2']:.3f} selfBLEU4={c['selfBleu4']}")


if __name__ == "__main__":
    main()
