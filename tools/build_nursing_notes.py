#!/usr/bin/env python3
"""Builds the synthetic ICU nursing-note PHI test set (Python 3, standard library only, deterministic).

    python3 tools/build_nursing_notes.py [--src agent/tests/data/nursing_notes.src.txt]
                                         [--out agent/tests/data/nursing_notes.jsonl]

Source format: notes separated by lines that hold only `---`; inside a note, PHI is marked inline as
`{{TYPE|text}}` with TYPE one of NAME, LOCATION, DATE, PHONE, AGE, MRN. The marked text may span a line
break, must not be empty, must not start or end with whitespace and must not contain `{`, `}` or `|`.
Everything in the notes is invented.

Output: one JSON line per note, {"id": "nn-NNN", "text": ..., "spans": [{"start", "end", "type"}]},
offsets in Unicode code points (Python str indices), end exclusive, markup removed, spans sorted.
Each note's lines lose trailing whitespace and the note loses leading and trailing blank lines.

Annotation conventions: titles, kinship words and credentials stay outside the span ("Dr. [Lee]",
"wife [Donna]", "[K. Murphy] RN"); an initial's trailing period is outside ("[J.T]. aware"); a
facility's name includes its type word when written with it ("[Pine Ridge Rehab]"); a pager or
extension keeps only its digits ("beeper #[5567]", "x[4-2233]"); an age is the number alone and is PHI
only over 89; weekday names, months and day-month dates are DATE; "OSH", unit names such as MICU,
ages up to 89, times, doses, ratios (3/6, 5/5, 4/10, 1/2 NS) and eponyms are not PHI.

Any malformed markup stops the build with the note number and source line.
"""
import argparse
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_SRC = os.path.join(ROOT, "agent", "tests", "data", "nursing_notes.src.txt")
DEFAULT_OUT = os.path.join(ROOT, "agent", "tests", "data", "nursing_notes.jsonl")

TYPES = ("NAME", "LOCATION", "DATE", "PHONE", "AGE", "MRN")
OPEN, CLOSE, SEP = "{{", "}}", "|"


class MarkupError(Exception):
    pass


def split_notes(src):
    """Yields (first source line number, list of lines) per note."""
    notes, cur, start = [], [], 1
    lines = src.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if line.strip() == "---":
            notes.append((start, cur))
            cur, start = [], n + 1
        else:
            cur.append(line.rstrip())
    notes.append((start, cur))
    out = []
    for k, (start, body) in enumerate(notes):
        while body and not body[0]:
            body.pop(0)
            start += 1
        while body and not body[-1]:
            body.pop()
        if not body:
            if k in (0, len(notes) - 1):   # a separator at the very start or end of the file
                continue
            raise MarkupError(f"line {start}: empty note between separators")
        out.append((start, body))
    return out


def parse_note(raw, first_line):
    """Returns (text, spans) for one note's marked-up text."""
    def where(pos):
        return f"line {first_line + raw.count(chr(10), 0, pos)}"

    text, spans, i = [], [], 0
    length = 0
    while i < len(raw):
        j = raw.find(OPEN, i)
        if j < 0:
            chunk = raw[i:]
            i = len(raw)
        else:
            chunk = raw[i:j]
        for c in "{}|":
            k = chunk.find(c)
            if k >= 0:
                raise MarkupError(f"{where(i + k)}: stray {c!r} outside markup: {chunk[max(0, k - 20):k + 20]!r}")
        text.append(chunk)
        length += len(chunk)
        if j < 0:
            break
        end = raw.find(CLOSE, j + 2)
        if end < 0:
            raise MarkupError(f"{where(j)}: unclosed markup {raw[j:j + 40]!r}")
        body = raw[j + 2:end]
        if OPEN in body or "{" in body or "}" in body:
            raise MarkupError(f"{where(j)}: nested or broken markup {raw[j:end + 2]!r}")
        if body.count(SEP) != 1:
            raise MarkupError(f"{where(j)}: markup needs exactly one '|': {raw[j:end + 2]!r}")
        typ, val = body.split(SEP)
        if typ not in TYPES:
            raise MarkupError(f"{where(j)}: unknown type {typ!r} (allowed: {', '.join(TYPES)})")
        if not val or val != val.strip():
            raise MarkupError(f"{where(j)}: empty text or surrounding whitespace in {raw[j:end + 2]!r}")
        spans.append({"start": length, "end": length + len(val), "type": typ})
        text.append(val)
        length += len(val)
        i = end + 2
    text = "".join(text)
    for s in spans:
        assert 0 <= s["start"] < s["end"] <= len(text)
    spans.sort(key=lambda s: (s["start"], s["end"], s["type"]))
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise MarkupError(f"line {first_line}: overlapping spans")
    return text, spans


def case_style(text):
    letters = [c for c in text if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        return "upper"
    if letters and all(c.islower() for c in letters):
        return "lower"
    return "mixed"


def build(src_path, out_path):
    with open(src_path, encoding="utf-8") as f:
        src = f.read()
    try:
        notes = split_notes(src)
    except MarkupError as e:
        raise MarkupError(f"{src_path}: {e}")
    records = []
    for k, (first, lines) in enumerate(notes, 1):
        raw = "\n".join(lines)
        try:
            text, spans = parse_note(raw, first)
        except MarkupError as e:
            raise MarkupError(f"{src_path}: note {k}: {e}")
        records.append({"id": f"nn-{k:03d}", "text": text, "spans": spans})
    if not records:
        raise MarkupError(f"{src_path}: no notes")
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=DEFAULT_SRC)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    try:
        records = build(args.src, args.out)
    except MarkupError as e:
        sys.exit(f"error: {e}")
    by_type = collections.Counter(s["type"] for r in records for s in r["spans"])
    styles = collections.Counter(case_style(r["text"]) for r in records)
    n = len(records)
    print(f"wrote {n} notes to {os.path.relpath(args.out)}")
    print(f"spans: {sum(by_type.values())} ({', '.join(f'{t} {by_type[t]}' for t in TYPES)})")
    print(f"notes without PHI: {sum(1 for r in records if not r['spans'])}")
    print("case: " + ", ".join(f"{s} {styles[s]} ({100 * styles[s] / n:.0f}%)" for s in ("upper", "lower", "mixed")))


if __name__ == "__main__":
    main()
