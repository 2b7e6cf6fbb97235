#!/usr/bin/env python3
"""Checks agent/data/clinical_vocab.txt, readi's list of safe clinical vocabulary (stdlib only).

Format: UTF-8, one lower-case entry per line, '#' lines are comments. An entry is one word: letters and
digits, with inner apostrophes or hyphens ("cont'd", "c-diff", "fio2"), never digits only.

Prints the entry count and every entry that is also a name or a place in the run-time lexicons:
  - a first name given at least FIRST_MIN times (agent/data/first_names.tsv, name<TAB>count)
  - a Census surname (agent/data/surnames.txt)
  - a one-word US city or county (agent/data/us_cities.txt, agent/data/us_counties.txt)
Each collision was reviewed by hand: the ones kept are clinical far more often than they are a name in
clinical text, and are listed in REVIEWED below with the reason. A collision not in REVIEWED fails the
check, so a new entry that is also a name needs a decision (remove it, or add it to REVIEWED).

Usage: tools/check_clinical_vocab.py [--all]   (--all also prints the reviewed collisions)
Exit status 0 when the file is well formed and every collision is reviewed, 1 otherwise.
"""
import os
import re
import signal
import sys
import unicodedata

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'agent', 'data')
VOCAB = os.path.join(DATA, 'clinical_vocab.txt')
FIRST_MIN = 2000
ENTRY = re.compile(r"^[a-z0-9]+(?:['-][a-z0-9]+)*$")

# Reviewed collisions that stay in the list, grouped by why. Keep this in sync with the vocabulary.
REVIEWED_GROUPS = {
    # Short clinical abbreviations and short words (labs, units, routes, frequencies, services,
    # credentials, diagnoses) that are also rare surnames, mostly short transliterated surnames.
    # Short forms that are common surnames (ng, le, do, ha, wu, lai, koh, cho, shi, dang, yeh) were
    # left out of the vocabulary instead.
    'abbreviation': '''
        sem aaro abd abdo abo aca acs adem ag aga ah ai ain aka aki alb alp als alt ama ambs ams anca ao apap
        aptt ar arb arni asp ast ata au aud bac baza benzo bles bue bun cad cap cas cea cen chol ci cia cin
        co coban colo dai dat dim dip dispo dos dus eco edu elix ems endo ent eom er etts fam fen fena fit
        fu gad gas gen gero gi gip gluc goc gord gu hap has hi hida hus ia ie ige igel im ims iu iv kpa kub
        laa lab laba lac lad lae lat loc lus lytes mammo mar mas mat mers mets mi micu min mins mis miu mo
        moc mody mos mu na nah nas neph niv odd oh ohs om oms or ors os osa ou oz pa pac pap pas pe pea perl
        pet pi pih po pos pu ra ras rass retic ro rom rop ros rub rue sa sah sar sas sat se sed si sot sra
        stach ste stox sud sui sup taa tah tat tee tha timi toa tol trach uc uk uka um urs us uti vap vas
        venti wo xa yo yom pao sao vit
    ''',
    # Drug names (generic, brand, or the ICU shorthand for them) that happen to be Census surnames.
    'drug': '''
        afrin basal bonine cipro coc colace copper esa fent fragmin gent hepa hiss ino intal kadian levo mag
        mero mom neo orencia ovide perles rayos regular revia riss roc sarna savella senna solian supp urso
        vanco vite zometa
    ''',
    # Medical words, anatomy, findings and procedures that are also surnames or place names.
    'term': '''
        ambo ards ashen bals bolt bolus boot bougie brace brief brisk bulla butterfly cage cancer cane canes
        cast chaplain chem chief cocci code collar coma cough cuff daily dangle dols dose drain dressing
        drift dull dusky edema fall fallen falls fast fees fellows flair flank frail french gallop gest gist
        gout gouty graft guardian hives holding hydro iron kappa labs lama leep line linear linen lines
        loose lucid malaise mane mania maroon mars mash mask mass medic melena mews mitts monos mute needle
        needles news note pacer pack pain pale pall panic para paras patent path patient peak peaks phlegm
        pica plan polys port ports prom prox pulse pump purpura ramus rash reason reasons scope shelter
        shelters shingles shock sickle sitter sled slough soap sober sprain staples steady stent stoma
        strain stroke surgeon swab taper taps tech tees temp tender thick thin thrill tingling tips tonic
        trickle trop turns vats vent verbal vial void walkers weak wean wedge staph coli
    ''',
    # Transcript tokens (interjections, disfluencies) that are also rare surnames.
    'speech': '''
        aw coz cuz dunno eh erm golly gon gosh gotta hah heh hehe huh kinda laughing laughter lemme lotta
        musta naw nay ok okay okey okie ouch ow uh uhm unk wan wanna ya yah yea yeah yeap yep yup
    ''',
}
# First names (given >= FIRST_MIN times) and one-word US places kept one by one, with the reason. These
# are core clinical shorthand written in capitals in notes; the detector still takes them for a name
# when the context names a person (a title, a kinship word, a neighbouring name).
REVIEWED_ONE = {
    'asa': 'aspirin (ASA 81 mg) and ASA physical status; Asa is an uncommon given name',
    'tia': 'transient ischaemic attack, in most neurology and stroke notes',
    'mae': "moves all extremities (MAE), the standard neuro-check entry; also a given/middle name",
    'ed': 'emergency department (ED), in most admission notes; also a short form of Edward',
    'aline': 'arterial line (aline), ICU shorthand; Aline is an uncommon given name in the US',
    'cam': 'CAM / CAM-ICU delirium screen',
    'aura': 'seizure and migraine aura',
    'echo': 'echocardiogram',
    'gauge': 'cannula / needle gauge',
    'lue': 'left upper extremity (LUE)',
    'les': 'lower extremities (LEs, BLEs)',
    'nitro': 'nitroglycerin drip shorthand; Nitro, WV is a small town',
    'norco': 'hydrocodone/paracetamol brand; Norco, CA is a small city',
    'candida': 'the yeast (Candida albicans, candidaemia); Candida is an uncommon given name',
    'progress': 'progress note heading; the place (Progress, PA) is a small community',
    'non': 'written apart in notes ("non smoker", "non tender", "non verbal"); Non is a rare surname',
}
REVIEWED = {}


def _load_reviewed():
    for group, words in REVIEWED_GROUPS.items():
        for w in words.split():
            REVIEWED[w] = group
    for w, why in REVIEWED_ONE.items():
        REVIEWED[w] = why


def read_first_names():
    names = {}
    with open(os.path.join(DATA, 'first_names.tsv'), encoding='utf-8') as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) == 2 and parts[1].isdigit():
                names[parts[0].lower()] = int(parts[1])
    return names


def read_set(name, one_word=False):
    out = set()
    with open(os.path.join(DATA, name), encoding='utf-8') as f:
        for line in f:
            w = line.strip().lower()
            if not w or w.startswith('#'):
                continue
            if one_word and ' ' in w:
                continue
            out.add(w)
    return out


def main():
    _load_reviewed()
    show_all = '--all' in sys.argv[1:]
    errors = []
    entries = []
    seen = {}
    with open(VOCAB, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        print(f'not UTF-8: {e}')
        return 1
    for no, line in enumerate(text.split('\n'), 1):
        if line.startswith('#') or line == '':
            continue
        if line != line.strip():
            errors.append(f'line {no}: surrounding white space: {line!r}')
        w = line.strip()
        if unicodedata.normalize('NFC', w) != w:
            errors.append(f'line {no}: not NFC: {w!r}')
        if w != w.lower():
            errors.append(f'line {no}: not lower case: {w!r}')
        if not ENTRY.match(w):
            errors.append(f'line {no}: not one word of letters/digits with inner \' or -: {w!r}')
        elif w.replace('-', '').replace("'", '').isdigit():
            errors.append(f'line {no}: digits only: {w!r}')
        if w in seen:
            errors.append(f'line {no}: duplicate of line {seen[w]}: {w!r}')
        else:
            seen[w] = no
            entries.append(w)

    first = read_first_names()
    surnames = read_set('surnames.txt')
    places = read_set('us_cities.txt', one_word=True) | read_set('us_counties.txt', one_word=True)

    collisions = []
    for w in entries:
        why = []
        if first.get(w, 0) >= FIRST_MIN:
            why.append(f'first name x{first[w]}')
        if w in surnames:
            why.append('surname')
        if w in places:
            why.append('US city/county')
        if why:
            collisions.append((w, ', '.join(why)))

    unreviewed = [(w, why) for w, why in collisions if w not in REVIEWED]
    stale = sorted(w for w in REVIEWED if w not in seen)
    print(f'{len(entries)} entries, {len(collisions)} name/place collisions '
          f'({len(collisions) - len(unreviewed)} reviewed and kept, {len(unreviewed)} unreviewed)')
    if show_all:
        for w, why in collisions:
            if w in REVIEWED:
                print(f'  kept ({REVIEWED[w]}): {w}: {why}')
    for w, why in unreviewed:
        print(f'  UNREVIEWED collision: {w}: {why}')
    for w in stale:
        print(f'  note: reviewed word no longer in the list: {w}')
    for e in errors:
        print(e)
    return 1 if errors or unreviewed else 0


if __name__ == '__main__':
    if hasattr(signal, 'SIGPIPE'):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    sys.exit(main())
