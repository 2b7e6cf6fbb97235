#!/usr/bin/env python3
"""Trains readi's learned risk scorer: one logistic regression per risk category (self_harm,
harm_to_others, abuse) over hashed word 1-2-grams and character 3-5-grams of normalised text, and
writes the weights readi-agent embeds (agent/data/safety/risk_model.bin) plus reference scores the Rust
tests compare against (agent/data/safety/risk_model_reference.json).

Reproducible: same data, same seed, same numpy -> byte-identical weights. Requires numpy==2.1.3
(`pip install numpy==2.1.3`); nothing else outside the standard library.

    python3 tools/train_risk_model.py \
        --data ../shared/data/safety --extra agent/data/safety/model_extra.jsonl

Training data: DATA/train.jsonl plus the rows written for readi in --extra. DATA/dev.jsonl and
DATA/dev-extra.jsonl are read only to pick each category's threshold (never fitted on).

The feature extraction here and in agent/src/safety/model.rs must stay identical:
  normalise: per character, drop apostrophes (' ` U+2018 U+2019) so "don't" = "dont"; a character that
             is alphanumeric becomes its lower case (per character, str.lower / char::to_lowercase);
             anything else is a word break.
  features:  for each word w: "w:" + w; for each adjacent pair: "b:" + w1 + " " + w2; for each word
             padded as " " + w + " ", every character n-gram of length 3, 4 and 5 as "c:" + gram.
  hashing:   FNV-1a 32-bit over the feature's UTF-8 bytes, masked to BUCKETS (a power of two); a
             bucket's value is its count; the vector is scaled to unit L2 norm.
  score:     sigmoid(bias + sum(weight[bucket] * value)), weights int8 * scale per category.
"""

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np

SEED = 21
BUCKETS = 1 << 18
CATEGORIES = ["self_harm", "harm_to_others", "abuse"]
# L2 penalty and optimiser steps: fixed here, not searched.
L2 = 1e-4
STEPS = 600
LR = 0.05
# Thresholds: the one with the highest recall of the model alone on the development rows it applies
# to (role user) whose precision there is still at least this: see pick_threshold. The rules run
# beside the model, so the model is asked to be precise and add recall, not to carry it alone.
PRECISION_TARGET = {"self_harm": 0.80, "harm_to_others": 0.80, "abuse": 0.80}
# With --rules-pred (the rules' own predictions on the dev rows, `readi-agent assess --rules-only`),
# the threshold is picked for the rules and the model together, as they run: a row is positive when
# the rules find the category or the model scores at or above the threshold; the threshold is the one
# with the highest combined dev recall whose combined dev precision is still at least this.
COMBINED_PRECISION_TARGET = {"self_harm": 0.85, "harm_to_others": 0.88, "abuse": 0.88}
# ... and the model alone may escalate at most this share of the dev rows whose known labels are all 0
# and that the rules leave alone (every such row, whichever label keys it has: a self_harm finding on
# a row labelled only for harm_to_others is still a false escalation). Three categories at this
# budget keep the false-escalation rate of rules and model within the 0.05.
FALSE_ESCALATION_BUDGET = 0.012
# self_harm: dev holds prompts and moderation samples, not forum posts, and the rules already find
# all its self-harm, so every threshold from 0.98 down to about 0.8 ties on dev recall. Ties used to
# go to the highest threshold, which left the model silent where the rules miss (forum language).
# A missed disclosure is the costliest error, so for self_harm the threshold is the lowest one
# reached scanning down from the top before any check fails: dev precision (rules OR model) at
# least the target, dev false escalation within the budget, and the model alone escalating at most
# CHECK_BUDGET of the everyday sentences in --check (written for readi, never trained on: tired
# after work, a date for a wedding, checking out of a hotel).
LOWEST_ADMISSIBLE = {"self_harm"}
CHECK_BUDGET = 0.02
CATEGORY_LABEL = {
    "suicidal_ideation": "self_harm", "suicidal_behavior": "self_harm", "self_harm": "self_harm",
    "harm_to_others": "harm_to_others", "abuse": "abuse",
}
MIN_THRESHOLD = 0.05
# Texts whose scores the Rust tests check to 1e-4.
REFERENCE_TEXTS = [
    "I want to kill myself tonight",
    "Pt denies SI/HI.",
    "I absolutely killed it at my presentation today",
    "I'm going to shoot up the school on Monday",
    "my stepdad comes into my room at night and touches me",
    "Café talk — I can’t do this anymore, nobody would miss me",
    "",
    "KMS fr",
]

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
APOSTROPHES = {"'", "`", "\u2018", "\u2019"}


def normalise(text: str) -> list[str]:
    words: list[str] = []
    cur: list[str] = []
    for c in text:
        if c in APOSTROPHES:
            continue
        if c.isalnum():
            cur.append(c.lower())
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    return words


def fnv1a(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def features(text: str) -> list[str]:
    words = normalise(text)
    out = ["w:" + w for w in words]
    out += ["b:" + a + " " + b for a, b in zip(words, words[1:])]
    for w in words:
        p = " " + w + " "
        for n in (3, 4, 5):
            for i in range(len(p) - n + 1):
                out.append("c:" + p[i : i + n])
    return out


_cache: dict[str, int] = {}


def bucket(f: str) -> int:
    b = _cache.get(f)
    if b is None:
        b = fnv1a(f.encode("utf-8")) & (BUCKETS - 1)
        _cache[f] = b
    return b


def vectorise(text: str) -> tuple[np.ndarray, np.ndarray]:
    counts: dict[int, int] = {}
    for f in features(text):
        b = bucket(f)
        counts[b] = counts.get(b, 0) + 1
    idx = np.array(sorted(counts), dtype=np.int64)
    val = np.array([counts[i] for i in idx], dtype=np.float64)
    norm = math.sqrt(float((val * val).sum())) if len(val) else 1.0
    return idx, val / (norm if norm > 0 else 1.0)


class Csr:
    def __init__(self, texts: list[str]):
        rows, idxs, vals = [], [], []
        for r, t in enumerate(texts):
            i, v = vectorise(t)
            rows.append(np.full(len(i), r, dtype=np.int64))
            idxs.append(i)
            vals.append(v)
        self.n = len(texts)
        self.rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        self.idx = np.concatenate(idxs) if idxs else np.zeros(0, np.int64)
        self.val = np.concatenate(vals) if vals else np.zeros(0)

    def dot(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=self.val * w[self.idx], minlength=self.n)

    def tdot(self, e: np.ndarray) -> np.ndarray:
        return np.bincount(self.idx, weights=self.val * e[self.rows], minlength=BUCKETS)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit(x: Csr, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression, full-batch Adam from a small seeded start."""
    w = rng.normal(0.0, 1e-4, BUCKETS)
    b = 0.0
    pos = max(1, int(y.sum()))
    neg = max(1, len(y) - pos)
    sw = np.where(y > 0, len(y) / (2 * pos), len(y) / (2 * neg))
    sw /= sw.sum()
    m_w = np.zeros(BUCKETS)
    v_w = np.zeros(BUCKETS)
    m_b = v_b = 0.0
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, STEPS + 1):
        p = sigmoid(x.dot(w) + b)
        e = (p - y) * sw
        g_w = x.tdot(e) + L2 * w
        g_b = float(e.sum())
        m_w = b1 * m_w + (1 - b1) * g_w
        v_w = b2 * v_w + (1 - b2) * g_w * g_w
        m_b = b1 * m_b + (1 - b1) * g_b
        v_b = b2 * v_b + (1 - b2) * g_b * g_b
        lr = LR * math.sqrt(1 - b2**t) / (1 - b1**t)
        w -= lr * m_w / (np.sqrt(v_w) + eps)
        b -= lr * m_b / (math.sqrt(v_b) + eps)
    return w, b


def quantise(w: np.ndarray) -> tuple[np.ndarray, float]:
    scale = float(np.abs(w).max()) / 127.0 or 1.0
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale


def score(q: np.ndarray, scale: float, bias: float, text: str) -> float:
    i, v = vectorise(text)
    z = bias + scale * float((q[i].astype(np.float64) * v).sum())
    return 1.0 / (1.0 + math.exp(-z))


def pick_threshold(scores: list[float], gold: list[int], target: float) -> tuple[float, dict]:
    """The threshold with the highest dev recall at which dev precision is at least `target`
    (candidates: every positive's score; ties go to the higher threshold)."""
    pairs = sorted(zip(scores, gold), reverse=True)
    pos = sum(gold)
    if pos == 0:
        return 0.5, {}
    best = None
    tp = fp = 0
    for s, g in pairs:
        tp += g
        fp += 1 - g
        if g and tp / (tp + fp) >= target:
            best = (s, tp, fp)
    if best is None:
        best = (pairs[0][0], 0, 0)
    t = max(MIN_THRESHOLD, best[0] - 1e-9)
    tp = sum(1 for s, g in pairs if s >= t and g)
    fp = sum(1 for s, g in pairs if s >= t and not g)
    return t, {
        "rule": f"highest dev recall with dev precision >= {target} (model alone, role user)",
        "dev_n": len(pairs),
        "dev_pos": pos,
        "dev_recall": round(tp / pos, 4),
        "dev_precision": round(tp / max(1, tp + fp), 4),
    }


def pick_combined(
    scores: list[float],
    gold: list[int],
    ruled: list[int],
    target: float,
    benign: list[float],
    lowest: bool = False,
    check: list[float] = (),
) -> tuple[float, dict]:
    """The threshold with the highest dev recall of rules OR model at which that precision is still
    at least `target` and the model alone escalates at most FALSE_ESCALATION_BUDGET of the `benign`
    rows' scores (candidates: every score; ties go to the higher threshold). With `lowest`, the
    lowest candidate reached scanning down before a check fails, the `check` rows (everyday
    sentences) included at CHECK_BUDGET."""
    pos = sum(gold)
    best = None
    candidates = sorted(set(scores) | set(benign) | set(check), reverse=True)
    for t in candidates:
        if t < MIN_THRESHOLD:
            break
        if sum(1 for b in benign if b >= t) > FALSE_ESCALATION_BUDGET * max(1, len(benign)):
            break
        if lowest and sum(1 for c in check if c >= t) > CHECK_BUDGET * max(1, len(check)):
            break
        yhat = [r or s >= t for s, r in zip(scores, ruled)]
        tp = sum(1 for y, g in zip(yhat, gold) if y and g)
        pp = sum(yhat)
        ok = pp and tp / pp >= target
        if lowest and not ok:
            break
        if ok and (lowest or best is None or tp > best[1]):
            best = (t, tp, pp)
    rules_tp = sum(1 for r, g in zip(ruled, gold) if r and g)
    rules_pp = sum(ruled)
    if best is None:
        best = (1.0, rules_tp, rules_pp)
    t = max(MIN_THRESHOLD, best[0] - 1e-9)
    return t, {
        "rule": f"highest dev recall of rules OR model with dev precision >= {target}",
        "dev_n": len(gold),
        "dev_pos": pos,
        "rules_recall": round(rules_tp / max(1, pos), 4),
        "rules_precision": round(rules_tp / max(1, rules_pp), 4),
        "dev_recall": round(best[1] / max(1, pos), 4),
        "dev_precision": round(best[1] / max(1, best[2]), 4),
        "check_rows": len(check),
        "check_escalated": sum(1 for c in check if c >= t),
    }


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/safety"))
    ap.add_argument("--extra", type=Path, default=Path("agent/data/safety/model_extra.jsonl"))
    ap.add_argument("--out", type=Path, default=Path("agent/data/safety/risk_model.bin"))
    ap.add_argument(
        "--reference", type=Path, default=Path("agent/data/safety/risk_model_reference.json")
    )
    ap.add_argument(
        "--rules-pred",
        type=Path,
        nargs="*",
        default=[],
        help="the rules' predictions on dev.jsonl and dev-extra.jsonl (readi-agent assess --rules-only)",
    )
    ap.add_argument(
        "--check",
        type=Path,
        default=Path("agent/data/safety/threshold_check.jsonl"),
        help="everyday sentences (never trained on) that bound the self_harm threshold from below",
    )
    args = ap.parse_args()
    check_rows = load(args.check) if args.check.exists() else []
    ruled_ids: dict[str, set[str]] = {}
    rules_escalated: set[str] = set()
    for path in args.rules_pred:
        for r in load(path):
            ruled_ids[r["id"]] = {CATEGORY_LABEL[c] for c in r["categories"] if c in CATEGORY_LABEL}
            if r["escalate"]:
                rules_escalated.add(r["id"])
    train = load(args.data / "train.jsonl") + load(args.extra)
    dev = [r for name in ("dev.jsonl", "dev-extra.jsonl") for r in load(args.data / name)]
    dev_texts = {" ".join(r["text"].lower().split()) for r in dev}
    overlap = [r["id"] for r in train if " ".join(r["text"].lower().split()) in dev_texts]
    if overlap:
        print(f"refusing: {len(overlap)} training rows repeat a dev text: {overlap[:5]}", file=sys.stderr)
        return 1
    train_texts = {" ".join(r["text"].lower().split()) for r in train}
    leaked = [r["id"] for r in check_rows if " ".join(r["text"].lower().split()) in train_texts]
    if leaked:
        print(f"refusing: {len(leaked)} --check rows are training rows: {leaked[:5]}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)
    header = {
        "format": "readi-risk-model/1",
        "buckets": BUCKETS,
        "features": "w:word, b:word word, c:char 3-5-grams of ' word '; fnv1a32; L2-normalised counts",
        "seed": SEED,
        "l2": L2,
        "steps": STEPS,
        "train_sha256": hashlib.sha256((args.data / "train.jsonl").read_bytes()).hexdigest(),
        "extra_sha256": hashlib.sha256(args.extra.read_bytes()).hexdigest(),
        "check_sha256": hashlib.sha256(args.check.read_bytes()).hexdigest() if check_rows else None,
        "categories": [],
    }
    weights = []
    for cat in CATEGORIES:
        rows = [r for r in train if cat in r["labels"]]
        y = np.array([float(r["labels"][cat]) for r in rows])
        x = Csr([r["text"] for r in rows])
        w, b = fit(x, y, rng)
        q, scale = quantise(w)
        if ruled_ids:
            missing = [r["id"] for r in dev if r["id"] not in ruled_ids]
            if missing:
                print(f"refusing: --rules-pred lacks {len(missing)} dev ids", file=sys.stderr)
                return 1
            # Every dev row with the label; the model reads user and note text only.
            d = [r for r in dev if cat in r["labels"]]
            s = [
                score(q, scale, b, r["text"]) if r.get("role", "user") in ("user", "note") else 0.0
                for r in d
            ]
            g = [int(r["labels"][cat]) for r in d]
            ruled = [int(cat in ruled_ids[r["id"]]) for r in d]
            benign = [
                score(q, scale, b, r["text"])
                for r in dev
                if r.get("role", "user") in ("user", "note")
                and r["labels"]
                and not any(r["labels"].values())
                and r["id"] not in rules_escalated
            ]
            check = [score(q, scale, b, r["text"]) for r in check_rows]
            t, how = pick_combined(
                s, g, ruled, COMBINED_PRECISION_TARGET[cat], benign, cat in LOWEST_ADMISSIBLE, check
            )
            how["benign_rows"] = len(benign)
            how["model_false_escalation"] = round(
                sum(1 for x in benign if x >= t) / max(1, len(benign)), 4
            )
        else:
            d = [r for r in dev if cat in r["labels"] and r.get("role", "user") in ("user", "note")]
            s = [score(q, scale, b, r["text"]) for r in d]
            g = [int(r["labels"][cat]) for r in d]
            t, how = pick_threshold(s, g, PRECISION_TARGET[cat])
        train_p = sigmoid(x.dot(q.astype(np.float64) * scale) + b)
        train_acc = float(((train_p >= t) == (y > 0)).mean())
        header["categories"].append(
            {
                "name": cat,
                "bias": b,
                "scale": scale,
                "threshold": t,
                "threshold_choice": how,
                "train_rows": len(rows),
                "train_positives": int(y.sum()),
                "train_accuracy_at_threshold": round(train_acc, 4),
            }
        )
        weights.append(q)
        print(f"{cat}: rows {len(rows)} (+{int(y.sum())}), threshold {t:.4f}, {how}", file=sys.stderr)
    blob = np.stack(weights, axis=1).astype(np.int8).tobytes()  # bucket-major: [b0c0, b0c1, b0c2, ...]
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    args.out.write_bytes(head + b"\n" + blob)
    ref = []
    for text in REFERENCE_TEXTS:
        ref.append(
            {
                "text": text,
                "scores": [
                    score(weights[k], c["scale"], c["bias"], text)
                    for k, c in enumerate(header["categories"])
                ],
            }
        )
    args.reference.write_text(json.dumps(ref, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(head) + 1 + len(blob)} bytes) and {args.reference}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
