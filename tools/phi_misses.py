#!/usr/bin/env python3
"""Lists gold PHI spans a `readi-agent detect` run left (partly) uncovered, and predicted spans that touch no
gold span. Usage: tools/phi_misses.py GOLD.jsonl PRED.jsonl [--fp]"""
import json, sys

gold = {(r := json.loads(l))['id']: r for l in open(sys.argv[1])}
pred = {(r := json.loads(l))['id']: r for l in open(sys.argv[2])}
misses, fps = [], []
for i, g in gold.items():
    t, ps = g['text'], pred.get(i, {'spans': []})['spans']
    cov = {k for p in ps for k in range(p['start'], p['end'])}
    for s in g['spans']:
        if not all(k in cov for k in range(s['start'], s['end']) if not t[k].isspace()):
            part = ''.join(t[k] if k in cov else '_' for k in range(s['start'], s['end']))
            misses.append((s['type'], part, t[max(0, s['start'] - 40):s['end'] + 20].replace('\n', ' ')))
    gs = {k for s in g['spans'] for k in range(s['start'], s['end'])}
    for p in ps:
        if not any(k in gs for k in range(p['start'], p['end'])):
            fps.append((p['type'], p.get('rule'), t[p['start']:p['end']], t[max(0, p['start'] - 30):p['end'] + 20].replace('\n', ' ')))
print(len(misses), 'misses')
for m in sorted(misses):
    print(m)
if '--fp' in sys.argv:
    print(len(fps), 'false positives')
    for f in fps:
        print(f)
