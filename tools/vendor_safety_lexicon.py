#!/usr/bin/env python3
"""Select phrases from the Suicide Risk Lexicon v1.0 (construct-tracker 1.0.16, Apache-2.0) into
agent/data/safety/srl_phrases.tsv: construct, category, severity, phrase.

Constructs that by themselves indicate risk are taken as rules, surface forms only (the validated file
lists each column's surface forms, then the same phrases lemmatised), minus phrases too broad to stand
alone ("cutting", "die", "bridge"): those are covered by the hand-written rules in rules.txt, which
need context (a first person, a method, an intent) before they fire.

    python3 tools/vendor_safety_lexicon.py ../shared/data/safety/lexicons/suicide_risk_lexicon
"""
import csv
import sys
from pathlib import Path

CONSTRUCTS = {
    "Passive suicidal ideation": ("suicidal_ideation", "wish_to_be_dead"),
    "Active suicidal ideation & suicidal planning": ("suicidal_ideation", "active_ideation"),
    "Other suicidal language": ("suicidal_ideation", "active_ideation"),
    "Direct self-injury": ("self_harm", "active_ideation"),
    "Eating disorders": ("self_harm", "low"),
    "Burdensomeness": ("suicidal_ideation", "wish_to_be_dead"),
}

# Broad, ambiguous or not-risk-by-themselves (resources, idioms, body words, means without a person).
EXCLUDE = {
    "OD", "attempt", "cutting", "drowning", "end it all", "killing me", "on the edge", "poison",
    "quick and easy", "easy and painless", "make a will", "write a will", "self-harm",
    "suicidal behavior", "crash my car", "I'll die", "I'll be dead", "will be dead", "over dose",
    "overdose", "overdosing", "suffocation", "carbon monoxide", "cutting my wrists",
    "escape from reality", "fade out", "fading away", "giving up", "lifeless", "oblivion",
    "permanent rest", "rest in peace", "eternal sleep", "painless death", "peaceful death",
    "forced to exist", "never wake up", "want death", "cease to exist", "I could disappear",
    "I will be dying", "I'm dying", "I'm in a crisis", "I'm sinking", "being saved", "body bag",
    "breaking point", "crisis center", "crisis hotline", "crisis text line", "dying", "ending it",
    "farewell", "fatal", "if I live or die", "keeping me alive", "kill me", "my death", "my demise",
    "needs to be dead", "nothing to lose", "only thing keeping me going", "safety check",
    "safety plan", "severe depression", "suicide", "suicidal", "thing that kept me going",
    "when I die", "when I'm gone", "when I'm not around", "I don't trust myself", "life is shit",
    "I hate my life", "hate my life", "life is pointless", "exit bag", "I'm not safe",
    "abrasion", "bit myself", "biting myself", "carving", "hair-pulling", "laceration",
    "nail-biting", "scarring", "scars", "scratch at my", "scratch my", "scratched my", "scratching",
    "stick and poke tattoo", "dermatillomania", "dermotillomania", "skin picking", "skin-picking",
    "pick at my skin", "pull my hair", "trichotillomania", "hit my head", "self injury",
    "self harm", "self-injury", "self-injurious", "NSSI",
    "I annoy", "I annoy others", "I make things worse", "I take up space", "I'm annoying", "bother",
    "burden", "dead weight", "demanding", "dependent", "difficult for me to ask for help", "drag",
    "drain", "feel guilty about others caring for me", "hindrance", "imposition", "inconvenience",
    "inconvenient", "intrusive", "nuisance", "overbearing", "put that on them",
    "put that upon them", "responsibility", "unworthy", "useless",
    "hit by a train", "hit by the train", "buying a gun", "pull the trigger", "jump out of the window",
    "jump out the window", "I could just die", "want to jump", "slam my car", "wreck my car",
    "wreck my truck", "exit plan", "quick and painless", "no way out", "when I'm dead", "life is over",
    "the end of my rope", "want to end this", "burn my hand", "burn my face", "bang my head",
    "banging my head", "bash my head", "death wish", "make it look like a accident",
}
EATING_KEEP = {
    "anorexia", "anorexia nervosa", "anorexic", "bulimia", "bulimic", "binge eating", "purging",
    "eating disorder", "chew and spit", "diet pill", "laxative", "stopped eating", "skip meals",
    "not eating enough", "thigh gap", "orthorexia", "I'm not eating", "haven't been eating",
    "don't want to eat",
}


# Weak cues: phrases from the same lexicon too broad to stand alone ("giving up", "no way out",
# "scars", "bridge", "pills"), written with a fifth column: `cue` (an ideation or self-injury
# cue) or `means` (a lethal means). They count only corroborated in the same message (see
# agent/src/safety/mod.rs, `corroborated`): two different cues, a cue and a means, or a cue beside
# a rule's own suicide or self-harm finding. A means alone, or two means, never count.
CUE_CONSTRUCTS = {
    "Passive suicidal ideation": ("suicidal_ideation", "wish_to_be_dead", "cue"),
    "Active suicidal ideation & suicidal planning": ("suicidal_ideation", "wish_to_be_dead", "cue"),
    "Other suicidal language": ("suicidal_ideation", "wish_to_be_dead", "cue"),
    "Direct self-injury": ("self_harm", "active_ideation", "cue"),
    "Lethal means for suicide": ("suicidal_ideation", "wish_to_be_dead", "means"),
}
# From other constructs of the lexicon, the strongest hopelessness, entrapment, burdensomeness and
# defeat phrases (as cues only).
EXTRA_CUES = {
    "Hopelessness": ["I don't have a future", "beyond help", "can't be helped", "hopeless"],
    "Entrapment & desire to escape": ["I want out", "trapped", "no escape"],
    "Burdensomeness": ["burden", "dead weight"],
    "Defeat & feeling like a failure": ["can't take it anymore", "can't take any more of this"],
    "Emptiness": ["I feel nothing", "I feel numb"],
}
# Never used, even as cues: resources, the rules' own words, hyperbole and non-risk body habits.
NOISE = {
    "make a will", "write a will", "being saved", "crisis center", "crisis hotline",
    "crisis text line", "safety check", "safety plan", "severe depression", "suicidal", "suicide",
    "suicidal behavior", "self-harm", "self harm", "self injury", "self-injury", "self-injurious",
    "NSSI", "I'm dying", "dying", "fatal", "killing me", "kill me", "nail-biting", "skin picking",
    "skin-picking", "pick at my skin", "dermatillomania", "dermotillomania", "trichotillomania",
    "hair-pulling", "pull my hair", "stick and poke tattoo", "abrasion", "laceration", "scarring",
    "attempt", "on the edge", "quick and easy", "farewell", "rest in peace", "scratching",
    "scratch my", "scratched my", "scratch at my", "hydrogen", "carbon", "chemicals",
    "illicit drug", "narcotics", "opiate", "sedative", "benzodiazepine", "muscle relaxer",
    "prescription drug", "over the counter drug", "weapon", "9mm", "high place",
}
MEANS_FROM_CUES = {"OD", "overdose", "overdosing", "over dose", "poison", "carbon monoxide",
                   "suffocation", "drowning"}


def cue_rows(rows: list[list[str]], taken: set[str]) -> list[str]:
    header = rows[0]
    out = []
    seen = set(taken)
    for i, name in enumerate(header):
        if name not in CUE_CONSTRUCTS:
            continue
        col = [r[i] for r in rows[5:] if i < len(r) and r[i]]
        category, severity, kind = CUE_CONSTRUCTS[name]
        for phrase in col[: len(col) // 2]:
            if phrase in NOISE or phrase.lower() in seen:
                continue
            k = "means" if phrase in MEANS_FROM_CUES else kind
            cat, sev = ("suicidal_ideation", "wish_to_be_dead") if k == "means" else (category, severity)
            seen.add(phrase.lower())
            out.append(f"{name}\t{cat}\t{sev}\t{phrase}\t{k}")
    for name, phrases in EXTRA_CUES.items():
        for phrase in phrases:
            if phrase.lower() not in seen:
                seen.add(phrase.lower())
                out.append(f"{name}\tsuicidal_ideation\twish_to_be_dead\t{phrase}\tcue")
    return out


def main() -> None:
    src = Path(sys.argv[1])
    path = src / "suicide_risk_lexicon_validated_24-08-02T21-27-35.csv"
    rows = list(csv.reader(path.open(encoding="utf-8")))
    header = rows[0]
    out = ["# construct\tcategory\tseverity\tphrase  (generated by tools/vendor_safety_lexicon.py)"]
    for i, name in enumerate(header):
        if name not in CONSTRUCTS:
            continue
        col = [r[i] for r in rows[5:] if i < len(r) and r[i]]
        surface = col[: len(col) // 2]
        category, severity = CONSTRUCTS[name]
        seen = set()
        for phrase in surface:
            if phrase in EXCLUDE or phrase.lower() in seen:
                continue
            if name == "Eating disorders" and phrase not in EATING_KEEP:
                continue
            seen.add(phrase.lower())
            out.append(f"{name}\t{category}\t{severity}\t{phrase}")
    out += cue_rows(rows, {line.split("\t")[3].lower() for line in out[1:]})
    dest = Path(__file__).resolve().parent.parent / "agent/data/safety/srl_phrases.tsv"
    dest.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {len(out) - 1} phrases to {dest}")


if __name__ == "__main__":
    main()
