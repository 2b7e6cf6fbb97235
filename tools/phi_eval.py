#!/usr/bin/env python3
"""Scores `readi-agent detect` on every PHI dev set and on its metamorphic variants: the text recased
to all lower and all upper case, and hard-wrapped at 60 columns (a space becomes a line break; offsets
and gold spans are unchanged). The detector must read them all alike (issue: case and layout invariance).

Usage: tools/phi_eval.py [--bin target/release/readi-agent] [--data ../shared/data/phi] [--sets a,b]
                         [--variants orig,lower,upper,wrap60] [--keep DIR]
Prints cover recall, token precision and PHI-free documents untouched per set and variant."""
import argparse, json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def recase(text, f):
    # Per character, so offsets never move: a character whose case mapping changes its length stays.
    return ''.join(c2 if len(c2 := f(c)) == 1 else c for c in text)


def wrap(text, width=60):
    out, col, last_space = list(text), 0, -1
    for i, c in enumerate(out):
        if c == '\n':
            col, last_space = 0, -1
            continue
        if c == ' ':
            last_space = i
        col += 1
        if col > width and last_space >= 0:
            out[last_space] = '\n'
            col, last_space = i - last_space, -1
    return ''.join(out)


VARIANTS = {
    'orig': lambda t: t,
    'lower': lambda t: recase(t, str.lower),
    'upper': lambda t: recase(t, str.upper),
    'wrap60': wrap,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'readi-agent'))
    ap.add_argument('--data', default=os.path.join(ROOT, '..', 'shared', 'data', 'phi'))
    ap.add_argument('--sets', default='notes-dev,scq-dev,presidio-synth-v2,' + os.path.join(ROOT, 'agent', 'tests', 'data', 'nursing_notes.jsonl'))
    ap.add_argument('--variants', default='orig,lower,upper,wrap60')
    ap.add_argument('--keep', help='directory to keep gold and predictions in')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    scorer = os.path.join(ROOT, '..', 'shared', 'eval', 'score_phi.py')
    work = a.keep or tempfile.mkdtemp(prefix='phi-eval-')
    os.makedirs(work, exist_ok=True)
    results = {}
    for s in a.sets.split(','):
        path = s if s.endswith('.jsonl') else os.path.join(a.data, s + '.jsonl')
        rows = [json.loads(l) for l in open(path)]
        s = os.path.basename(s).removesuffix('.jsonl')
        for v in a.variants.split(','):
            gold = os.path.join(work, f'{s}.{v}.gold.jsonl')
            pred = os.path.join(work, f'{s}.{v}.pred.jsonl')
            with open(gold, 'w') as f:
                for r in rows:
                    f.write(json.dumps(dict(r, text=VARIANTS[v](r['text']))) + '\n')
            subprocess.run([a.bin, 'detect', '--input', gold, '--output', pred], check=True)
            out = subprocess.run([sys.executable, scorer, '--json', gold, pred], check=True,
                                 capture_output=True, text=True).stdout
            j = json.loads(out)
            p = j['scopes']['PHI']
            spec = j.get('specificity', {})
            results[(s, v)] = (p['span_recall_cover'], p['token_precision'], p['token_recall'],
                               spec.get('docs_untouched'), spec.get('docs_without_gold'))
    if a.json:
        print(json.dumps({f'{s}.{v}': r for (s, v), r in results.items()}))
        return
    print(f"{'set':20} {'variant':7} {'cover':>6} {'tok.P':>6} {'tok.R':>6} {'untouched':>10}")
    for (s, v), (rc, tp, tr, u, n) in results.items():
        un = f'{u}/{n}' if n else '-'
        print(f'{s:20} {v:7} {rc:6.3f} {tp:6.3f} {tr:6.3f} {un:>10}')


if __name__ == '__main__':
    main()
