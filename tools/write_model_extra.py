#!/usr/bin/env python3
"""Writes agent/data/safety/model_extra.jsonl: first-person disclosures and hard negatives written for
readi's learned risk scorer (tools/train_risk_model.py), because train.jsonl holds prompts, replies and
hard negatives but few first-person disclosures.

How the rows were written (python3, stdlib only, deterministic):
  * hand-written sentences below (HAND_*), in the voice of patients in chat and of people writing about
    others: euphemisms, methods in plain words, hopelessness, self-harm acts, glued words and typos,
    threats with synonyms of killing and attacking aimed at a person, a group, a place or an
    institution, incitement, abuse disclosures; and hard negatives (advice to someone else, news and
    fiction, games, idioms such as "killing it", negated clinical shorthand, safe medical questions);
  * the Suicide Risk Lexicon v1.0 phrases (construct-tracker, Apache-2.0; the non-lemmatised half of the
    constructs passive/active ideation, direct self-injury, other suicidal language, hopelessness,
    burdensomeness, entrapment) set into first-person frames written here (FRAMES_SH); the same phrases
    in advice, news and negated frames (FRAMES_NEG) are negatives, so the model learns the frame and not
    only the phrase;
  * violence verbs (a thesaurus-style list of synonyms of kill / attack, written here) crossed with
    targets (people, groups, places) in threat frames, and the same verbs in idioms, games and news.
  * forum language (F_*): statements with the subject dropped ("thinking of overdosing on my
    insulin"), preparations, exits and farewells, regret at surviving, wishing not to exist, burden,
    each beside everyday sentences with the same words (tired after a shift, a plan and a date for a
    wedding, checking out of a hotel, rope for a boat) as negatives.
No row comes from dev.jsonl or dev-extra.jsonl; the script never reads them.

    python3 tools/write_model_extra.py [--lexicon DIR] [--out agent/data/safety/model_extra.jsonl]
"""

import argparse
import csv
import json
import random
import sys
from pathlib import Path

SEED = 21

SH_CONSTRUCTS = {
    "Passive suicidal ideation": 1,
    "Active suicidal ideation & suicidal planning": 1,
    "Direct self-injury": 1,
    "Other suicidal language": 1,
    "Hopelessness": 0,  # only in a strong first-person frame, see STRONG_HOPELESS
    "Burdensomeness": 0,
    "Entrapment & desire to escape": 0,
}

# Lexicon entries that are not, by themselves, risk when said in the first person.
LEXICON_SKIP = {
    "attempt", "cutting", "poison", "drowning", "dying", "fatal", "farewell", "suicide", "carving",
    "scars", "scratching", "scarring", "abrasion", "laceration", "nail-biting", "hair-pulling",
    "crisis center", "crisis hotline", "crisis text line", "safety plan", "safety check", "being saved",
    "body bag", "severe depression", "rest in peace", "oblivion", "escape from reality", "fade out",
    "giving up", "lifeless", "quick and easy", "on the edge", "make a will", "write a will",
    "suicidal behavior", "stick and poke tattoo", "dermatillomania", "dermotillomania",
    "trichotillomania", "skin picking", "skin-picking", "suicide attempt", "suicidality",
    "suicidal tendencies", "killing me", "kill me", "I'm dying", "when I die", "my death",
    "thing that kept me going", "only thing keeping me going", "keeping me alive", "if I live or die",
    "nothing to lose", "ending it",
}

FRAMES_SH = [
    "{p}",
    "honestly {p}",
    "i just {p}",
    "lately all i think is {p}",
    "i keep thinking {p}",
    "some nights i feel like {p}",
    "tbh i {p}",
    "I can't stop thinking about it. {p}",
    "my head keeps telling me {p} and i believe it",
    "I'm not okay. {p}",
    "its 3am and {p}",
    "I've felt this way for weeks: {p}",
    "nobody knows this but {p}",
    "i told no one. {p}.",
    "{p}. i mean it this time",
    "{p} and i don't know who to talk to",
    "sorry to dump this here but {p}",
    "Every day it gets worse, {p}",
    "I really feel like {p} tonight",
    "{p}... i'm so tired",
    "I think about it constantly, {p}",
    "i dont even care anymore, {p}",
    "im at the point where {p}",
    "i'm scared of myself. {p}",
]

FRAMES_NEG = [
    "if your friend says '{p}', take it seriously and stay with them",
    "the article lists '{p}' among the warning signs that a teenager needs help",
    "In the novel, the detective finds a note that says {p}.",
    "Research shows that phrases like '{p}' appear often in crisis texts.",
    "what should a teacher do when a student writes {p} in an essay",
    "Pt denies thoughts such as '{p}'.",
    "My daughter's counselor explained what to do if someone says {p}.",
    "The training module teaches volunteers to respond to '{p}' with empathy.",
    "the song lyric '{p}' has been debated by critics for years",
    "Hotline volunteers hear '{p}' and are trained to ask directly about safety.",
]

MILD_FRAMES = [
    "my team's season looks {p} but we'll be back next year lol",
    "the traffic this morning was {p}, anyway how was your weekend",
    "finding a parking spot downtown is {p}",
    "the printer at work is {p} again",
    "my attempts at baking bread are {p} but fun",
]

STRONG_HOPELESS = [
    "there's no point in anything and i don't want to be here anymore, {p}",
    "{p}. i don't see a reason to keep going",
    "{p} and honestly everyone would be better off without me",
    "{p}, i'm done, i can't keep living like this",
]

HAND_SH = """
I took the rest of the bottle of my sleeping pills about an hour ago
i swallowed everything in the medicine cabinet and now i'm just waiting
I've been saving up my pills for a month so I have enough
held a razor to my wrist last night and pressed until it bled
I put the blade against my arm again, I needed to feel something
i burned my thigh with a lighter so nobody sees
I punch the wall until my knuckles split, it's the only way the noise stops
I scratched my arms until they bled again
relapsed tonight. cut deeper than usual
i carved the word into my skin with a safety pin
I tied a noose in the garage and I keep looking at it
I bought rope today. I know what it's for
my dad keeps a gun in the closet and i know where the key is
I drove to the bridge and sat there for an hour deciding
I stood on the edge of the roof and almost let go
i'm going to walk into the sea tonight and not come back
I keep thinking about stepping in front of the train on my way to work
I'm going to crash my car on the highway and make it look like an accident
I wrote letters to my family and gave my dog to my sister
I've started giving my stuff away so nobody has to deal with it later
I won't be around much longer, I've made up my mind
this is my last week, I just wanted someone to know
I'm going to go to sleep and not wake up, it's better this way
I just want to go to sleep forever
I want to disappear and never come back
I don't want to exist anymore
i wish i could just stop existing
i hope i don't wake up tomorrow
I'd rather be dead than keep feeling like this
If I died tomorrow nobody would even notice
everyone would be better off without me around
I'm a burden on everyone and they'd be happier if I was gone
I can't do this anymore. I'm done.
I can't keep going like this, I'm so tired of fighting
There's no way out of this except ending it
I've decided to end things this weekend
tonight is the night, I'm finally going to do it
I have a plan and I know when
i'm checking out for good
I'm going to unalive myself
thinking about unaliving myself again
kms fr this time
i want to kms
gonna kms tonight
ctb soon
i'm going to catch the bus, you know what i mean
i want to sewerslide
iwanttodie
iwanttokillmyself
i want to kil myself
im suicdal again
feeling sucidal tonight
i wanna die so bad
i wana end it
want 2 die
i just wanna not be alive
Life has no point and I want it to end
I feel hopeless and I think about dying every day
Nothing will ever get better and I'm ready to let go
I'm so empty, I keep imagining my funeral
I looked up how many tablets it takes
I googled the easiest way to die
What's the most painless way to go, asking for me
how much of my insulin would it take to not wake up
I counted my antidepressants, there are enough
I'll never get better because I'm going to end it before then
I don't want to die but I can't keep living like this
I don't want to hurt anyone but I'm going to kill myself
I'm not going to tell my therapist but I have the pills ready
no one can stop me, I already decided to die
I wouldn't mind if a car hit me
I hope the plane crashes when I fly home
Sometimes I drive fast hoping I'll crash
i starve myself for days as punishment
I made myself throw up four times today and I can't stop
i keep hurting myself when i'm upset
I hit my head against the wall until I got dizzy
I bit my arm until it bruised
I cut myself again after we argued
My wrists are a mess from last night
my thighs are covered in fresh cuts
I want to hurt myself so badly right now
The urge to cut is so strong tonight
I haven't eaten in four days and I want to keep going until I disappear
I told my mom I was fine but I was standing at the window ready to jump
Went to the pharmacy and bought three boxes of paracetamol
I mixed pills with vodka last night hoping it would be enough
I tried to hang myself last month and I think about trying again
I attempted in March and I still have the plan
i'm going to jump off the parking garage after school
My life is over. Goodbye everyone.
This is goodbye. Thank you for everything.
Sorry for everything. I won't bother anyone anymore.
I've been researching lethal doses all night
I'm done fighting, I'm going to let myself die
My family will get the insurance money when I'm gone
I can't see a future for myself, I just want the pain to stop permanently
The voices tell me to kill myself and I'm starting to listen
nobody would care if i just vanished for good
I'm thinking of ending my life
i want to end my life
i'm planning my suicide
I keep writing my suicide note over and over
Im going to overdose tonight
I want to OD
i took 30 tylenol
swallowed a whole pack of pills, feeling sick
put a plastic bag over my head to see what it felt like
I stockpiled my meds and I'm going to take them all on Friday
i keep the knife under my pillow in case i decide tonight
I want to drown myself in the lake
going to drink until I stop breathing
I'm going to jump
I just want everything to end
Why am I still alive
I wish I had never been born
I hate being alive
I don't deserve to live
I should just die
Please let me die
I'm ready to die
I have nothing left to live for
there is no reason for me to live
i want to be dead
can't wait to be dead
I'd be better off dead
being dead would be a relief
i've lost the will to live
""".strip().splitlines()

HAND_HO = """
I'm going to kill my boss tomorrow, I'm bringing my gun to work
I swear I'll murder my ex if she shows up again
I want to stab my stepdad while he sleeps
I'm going to beat my neighbor to death with a bat
I'll strangle him with my own hands
i want to shoot up my school
I'm going to shoot everyone in my class on Monday
I'm going to blow up the office building
going to burn the house down with them inside
I'm going to run them over with my truck
I'll put a bullet in his head
I'm going to slit her throat
gonna smash his skull in
I will make him pay, he won't see next week
I want to poison my husband's coffee
how do I poison my roommate without getting caught
what's the best way to kill someone and not leave evidence
how much rat poison would kill a grown man
where should I stab someone so they bleed out fast
I'm going to take out the whole team at the office
I'll wipe out every last one of them
We should slaughter them all
someone should shoot every one of those people
let's go burn down their church
Go find him and break his legs
round them up and kill them
they all deserve to be hanged
i want to massacre everyone at that party
I'm going to execute the people who did this to me
I'm planning to attack the mall on Saturday
I have a list of people I'm going to kill
i bought a rifle and i know who i'm going to use it on
I'm thinking about hurting my baby, I can't stop the thoughts
I want to hurt my little brother when he cries
I'll choke her until she stops breathing
I'm going to gut him like a fish
I'm going to drown my sister's kids
I will torch the clinic
I'm going to bomb the station during rush hour
I'm going to mow them down at the parade
i'll fucking end him
he's dead meat when I see him
that teacher won't live to see Friday
I'm going to hunt him down and kill him
I keep imagining shooting my coworkers and it feels good
My plan is to stab the manager when he closes the store
I'm going to hurt someone tonight, I can feel it
i want to kill people
i'm gonna kill someone
I'll murder anyone who gets in my way
I'm going to attack the police station
I want to blow up the government building downtown
Death to all of them, we will hunt them in the streets
we need to exterminate them like rats
i'm going to stab the next person who looks at me
I'm going to beat my wife again when she gets home
I'll kill my dad if he touches my mom again
I'm going to shoot the judge
I want to set fire to my ex's apartment
I'm going to ram my car into the crowd
i'm going to kil him
im gona kill them all
ill murda him
I want to hurt people the way they hurt me
The voices tell me to kill my mother
""".strip().splitlines()

HAND_AB = """
my stepdad comes into my room at night and touches me
my uncle touched me when I was little and he still visits
my husband hits me when he drinks
my boyfriend choked me last night and said he'd kill me if I told
my partner won't let me leave the house and takes my phone
he forced me to have sex when I said no
I was raped at a party last weekend
my mom's boyfriend hurts me and says nobody will believe me
my dad beats me with a belt
my carer takes my pension and shouts at me
the man next door keeps asking me to send him pictures, I'm 13
my coach touches me in ways that make me uncomfortable
my older cousin made me do things I didn't want to
she slaps me and locks me in the closet
my husband threatened to kill me and the kids
I'm scared to go home, he'll hurt me again
my teacher told me to keep our secret and not tell my parents
I'm attracted to children and I'm scared I will act on it
my son pushes me around and takes my money, I'm 82
nobody feeds my grandmother at the care home and she has bruises
he strangled me until I passed out
my ex keeps showing up and threatening me
I'm being sold for sex and can't get away
an adult online is asking me to meet him and keep it secret
""".strip().splitlines()

HAND_NEG = """
I absolutely killed it at my presentation today
this traffic is killing me
my feet are killing me after that hike
I could murder a pizza right now
I'm dying to see the new movie
lol i'm dead, that meme
you look drop dead gorgeous
shoot me an email when you're free
the comedian really bombed last night
I nailed the interview and they want me back
my phone is about to die
kill the lights when you leave
she slayed that performance
the new album is fire
I killed the spider in the bathroom
we need to kill some time before the train
I got destroyed in chess today
I killed him with a headshot in Call of Duty
in Minecraft I blew up my friend's house with TNT
my character died in the game again
the boss fight killed me like six times
If a friend tells you they want to die, stay with them and call 988
Instead of thinking about killing yourself, please reach out to someone you trust
How can I help my brother who says he feels suicidal
what are the warning signs of suicide in teenagers
My friend self-harms, how do I talk to her about it
How do I support a coworker whose husband died by suicide
The documentary is about a man who kills his brother
Police said the suspect shot two people before fleeing
The novel ends when the heroine drinks poison
In the film the villain plans to blow up the city
The news reported a stabbing downtown last night
Historians describe how the army massacred the village in 1942
the murder mystery podcast was really good
Pt denies SI/HI
Patient denies suicidal ideation, intent or plan
Denies thoughts of self harm
No SI, no HI, no AVH
Pt denies SI, HI, plan or intent. Safety plan reviewed
Negative for suicidal or homicidal ideation
Denies SI/HI, contracts for safety
No history of suicide attempts
No thoughts of harming self or others
Patient denies any thoughts of wanting to hurt anyone
Screened for SI, negative
What is a safe dose of ibuprofen for a headache
How many mg of acetaminophen can an adult take in a day
My doctor doubled my sertraline, is that normal
I'm stressed about exams but I'm managing
Work has been rough and I'm tired
I feel sad that my team lost
I'm lonely since I moved but I'm joining a club
I had a panic attack but my breathing exercises helped
My therapist and I worked on my anxiety this week
I feel a lot better since starting therapy
I bought a rope for rock climbing
Where can I buy a good kitchen knife
How do I sharpen my hunting knife
We went to the shooting range for my birthday
I'm going to beat you at tennis tomorrow
I'm going to crush this exam
Let's blow this popsicle stand
I'd kill for a coffee right now
My mom will kill me if I'm late again
I'm going to strangle my brother if he eats my fries again lol
I don't want to die, I want to get better
I never want to hurt myself again and I'm proud of my progress
I used to think about dying but I'm in a much better place now
I'm afraid of dying in a car crash
my grandpa died last year and I miss him
What happens to the body after death
The cat killed a mouse
Pest control will exterminate the termites next week
The chef butchered the chicken for dinner
He cut the rope and freed the boat
I cut my finger while chopping onions
I hit my head on the cupboard door
I'm so done with this homework
I want to disappear into a good book this weekend
I'm dead tired after the night shift
The plot of the book is about a school shooting and its aftermath
Write a poem about the beauty of autumn leaves
Can you explain how vaccines work
What is the capital of Australia
How do I bake sourdough bread
Recommend a good running shoe
I'm going to the gym after work
The knife is in the drawer next to the stove
Talk to me about the history of the Roman Empire
I'm furious with my boss but I'd never hurt him
I'm angry at my sister, we had a big fight about money
""".strip().splitlines()

VIOLENT_VERBS = [
    "kill", "murder", "shoot", "stab", "slaughter", "butcher", "strangle", "gun down", "blow up",
    "beat to death", "execute", "massacre", "wipe out", "exterminate", "torch", "hang", "behead",
    "poison", "run over", "knife", "choke out", "bash in the head", "put down", "take out", "hurt",
    "attack", "bomb", "burn alive", "lynch", "slit the throat of",
]

TARGETS_PERSON = [
    "my boss", "my ex", "my neighbor", "my stepdad", "that teacher", "my coworker", "him", "her",
    "my landlord", "the guy who bullied me", "my sister's boyfriend", "the manager", "my roommate",
    "that cop", "the principal", "my dad", "everyone who laughed at me", "the next person I see",
]

TARGETS_GROUP = [
    "all the immigrants", "every muslim", "those jews", "the gays", "all women", "every black person",
    "the trans people", "all the refugees", "every christian", "the disabled", "those foreigners",
    "all the liberals", "every cop", "the homeless people downtown", "all the asians",
]

TARGETS_PLACE = [
    "the school", "my office", "the mall", "the church on main street", "the mosque", "the synagogue",
    "the clinic", "the police station", "city hall", "the concert", "the subway", "the hospital",
    "my college campus", "the shelter",
]

THREAT_FRAMES = [
    "I'm going to {v} {t}",
    "i will {v} {t} tomorrow",
    "I want to {v} {t}",
    "I'm planning to {v} {t} next week",
    "one day I'll {v} {t} and nobody will stop me",
    "i swear i'm gonna {v} {t}",
    "I have the gun ready, I'm going to {v} {t}",
    "we should {v} {t}",
    "someone needs to {v} {t}",
    "I can't stop thinking about how I'll {v} {t}",
    "tonight I {v} {t}",
    "I'm so angry I could actually {v} {t}, and I have a plan",
    "how can I {v} {t} without getting caught",
    "best way to {v} {t}",
]

PLACE_FRAMES = [
    "I'm going to shoot up {t}",
    "I'm going to bomb {t} on Friday",
    "i will set fire to {t}",
    "I'm going to attack {t} during the service",
    "going to bring a gun to {t} and end it for everyone there",
    "how do I make a bomb to blow up {t}",
    "I'm going to drive my car into the crowd at {t}",
]

# The same threat frames with kind verbs: the verb, not the frame or the target, carries the threat.
KIND_VERBS = [
    "help", "hug", "thank", "visit", "call", "meet", "cook dinner for", "vote for", "hire", "teach",
    "invite", "surprise", "support", "write to", "apologise to", "celebrate with", "pray for",
    "make breakfast for", "welcome", "interview",
]

# Wishes, calls and norms of violence against a group: threats without "I will".
NORM_FRAMES = [
    "{t} deserve to die",
    "{t} should all be shot",
    "the world would be better off if {t} were wiped out",
    "if only someone would slaughter {t}",
    "it's time to exterminate {t}",
    "{t} need to be hanged, every one of them",
    "let's round up {t} and burn them",
    "death to {t}",
]

# Frames about a group that are not threats.
GROUP_NEG_FRAMES = [
    "{t} deserve respect",
    "I'm going to volunteer with {t} tomorrow",
    "we are {t} and we love our neighborhood",
    "my best friends are {t}",
    "I'm going to make {t} feel welcome",
    "I read a great book written by {t}",
    "{t} are just people like anyone else",
    "our school is proud to include {t}",
    "I will always defend {t}",
    "{t} are a big part of our city",
    "the world would be better if we listened to {t}",
    "{t} should all be treated equally",
    "I'm proud to stand with {t}",
    "we are going to celebrate with {t} at the festival",
    "it's wrong to say {t} deserve to die",
]

# Wrongdoing without violence: harm to others is violence, not every crime.
NONVIOLENT_CRIME = [
    "how can I shoplift from the store without getting caught",
    "how do I cheat on my taxes without getting caught",
    "I'm planning to steal my neighbor's wifi",
    "what's the best way to pirate movies",
    "how can I fake a doctor's note for work",
    "I want to hack my ex's instagram",
    "how do I get a fake ID without my parents knowing",
    "best way to scam people online",
    "I'm going to lie to my boss about being sick tomorrow",
    "how can I copy my friend's homework without the teacher noticing",
]

# Everyday first-person chat: short, personal and safe, so "short and about me" is not a signal.
EVERYDAY_SUBJ = ["I", "i", "honestly i", "today I", "lately I", "tbh i", "I just", "I finally"]
EVERYDAY_PRED = [
    "went for a long walk with my dog", "finished my shift and I'm exhausted", "can't decide what to cook",
    "had a great time at my cousin's wedding", "feel nervous about my exam on friday",
    "miss my friends from college", "started a new job and it's going well", "need to call my mom back",
    "am so bored at work today", "got a new phone", "want to learn to play guitar",
    "feel a bit down because it's raining", "am annoyed my bus was late again", "love this song",
    "slept badly but coffee helps", "have a dentist appointment tomorrow", "cried at the end of the movie",
    "am worried about my grades", "argued with my brother about chores", "think my cat is sick",
    "want to go home early", "feel stuck in my career and want a change", "hope she's doing okay",
    "don't know what to wear tonight", "am tired of this weather", "feel lonely on weekends sometimes",
    "had a rough day but talked it out with my partner", "am stressed about moving house",
    "want to quit sugar", "painted my room blue", "am going out with friends tonight",
    "took my meds and went to bed early", "have been reading a lot of books lately",
    "can't stop eating these cookies", "am going to take a nap", "want to move to a bigger city",
    "just got back from the pharmacy with my prescription", "am proud of how far I've come",
    "feel overwhelmed with work but I have a plan for the week", "lost my keys again",
    "am going to cut my hair short", "want to get a tattoo", "am so done with this rain",
    "have a headache from staring at screens", "shot some great photos at the park",
    "am dying to try that new restaurant", "killed it at trivia night", "need a break from social media",
    "finished the whole series in one night", "am nervous about the date tomorrow",
]

NEG_VIOLENT_FRAMES = [
    "the movie shows a gangster who wants to {v} {t}",
    "in the game you have to {v} {t} to win the level",
    "the news said a man tried to {v} {t} last year",
    "I would never {v} {t}",
    "it is wrong to say you want to {v} {t}",
    "the history book describes soldiers ordered to {v} {t}",
    "my character in the novel threatens to {v} {t}",
]

# --- Step 2 (issue 21): more varied positives and first-person hard negatives, so the model reads
# content rather than style. Forum-style posts are assembled from parts: the same openings and
# everyday distress appear in positives and negatives; only a death, method or self-harm sentence
# (or, for threats, a violent act aimed at someone) makes a row positive.
POST_OPEN = [
    "I don't really know why I'm posting this but here goes.",
    "throwaway account because people I know use this site.",
    "Long post, sorry. I'm 24 and I've been struggling for years.",
    "So my girlfriend left me last month and I lost my job two weeks later.",
    "i'm 16 and my parents fight every night and i can't focus at school.",
    "It's 3am and I can't sleep again.",
    "I've been on antidepressants for two years and nothing has really changed.",
    "Title says it all I guess.",
    "My mom passed away in the spring and since then everything has fallen apart.",
    "I moved to a new city for work and I don't know anyone here.",
    "first time posting here.",
    "I'm a nurse and I work nights, and lately it's been too much.",
]
POST_DISTRESS = [
    "I feel empty all the time and I can't get out of bed most days.",
    "Every day feels the same and I'm exhausted.",
    "I cry in the car before work and nobody notices.",
    "I've stopped answering my friends' messages.",
    "I keep messing everything up and I hate myself for it.",
    "the loneliness is crushing and the nights are the worst.",
    "I'm so tired, not sleepy tired, just tired of everything.",
    "I feel like a burden to everyone around me.",
]
POST_RISK = [
    "I want to go to sleep and not wake up.",
    "everyone would be better off without me.",
    "I've started thinking about ending it and it scares me how calm I feel.",
    "last night I took the rest of the bottle and woke up in the hospital, and I'm angry I woke up.",
    "I sat with a blade on my wrist for an hour last night.",
    "I've been counting my pills and I think I have enough now.",
    "I looked up how high the bridge near my house is.",
    "I don't see the point in staying alive any more.",
    "I wrote a note and put it in my drawer.",
    "I keep picturing my funeral and thinking it would be a relief.",
    "I want it all to be over, for good this time.",
    "I cut again last night, deeper than before.",
    "I've decided this will be my last weekend.",
    "if I disappeared tomorrow nobody would even notice, and I'm thinking of making that happen.",
    "I bought a rope and I keep looking at the beam in the garage.",
    "I just want the pain to stop permanently.",
    "there's no future for me and I'm ready to check out.",
    "I've been saying goodbye to people without them knowing.",
    "my family would be happier if I was gone, so I'm going to go.",
    "I sat in the car in the garage with the engine running last night.",
    "I'm tired of living and I don't want to try anymore.",
    "I wish I could just fall asleep forever.",
    "I burned myself with a lighter again so I'd feel something.",
    "I can't do this anymore, I want to die.",
]
POST_COPE = [
    "I started seeing a therapist last week and I'm hopeful it will help.",
    "my sister said she'd come visit next weekend, so that's something.",
    "I'm going to talk to my doctor about changing my medication.",
    "any advice on how to make friends in a new city?",
    "I know it will get better, I just needed to vent.",
    "does anyone have tips for sleeping better?",
    "I signed up for a gym class to get out of the house.",
    "how do you deal with a boss who yells at you?",
    "I'm trying to get back into running.",
    "thanks for reading, it helps just to write it down.",
]
POST_CLOSE = ["", " I don't know what to do.", " sorry for the rant.", " thanks for reading.", ""]

EUPHEMISMS = [
    "I want to go to sleep and not wake up", "everyone would be better off without me",
    "I don't want to be here anymore", "I want to end it all", "I'm thinking about ending things",
    "I want to unalive myself", "I'm going to kms", "I'm done with life", "I won't be a burden much longer",
    "I want to join my dad wherever he is now", "the world would be better without me in it",
    "I've said my goodbyes", "I just want to stop existing", "I want to disappear forever",
    "I'm ready to check out for good", "nobody would miss me if I was gone",
    "I keep thinking about not being alive", "I don't plan on being around next year",
    "I hope I get hit by a car", "I want to die in my sleep", "I'm so tired of being alive",
    "there's no reason for me to keep going", "I want to take my own life", "life isn't worth it anymore",
]
METHODS_PLAIN = [
    "I took the rest of the bottle", "the blade is on my wrist right now", "I swallowed all my mum's pills",
    "I took 30 of my tablets an hour ago", "I've got the pills lined up on my desk", "I tied the rope to the beam",
    "I'm standing on the bridge right now", "I have my dad's gun in my lap", "I've been cutting my thighs every night",
    "I put the knife to my throat", "I'm going to jump off the roof of my building",
    "I've been hitting my head against the wall until it bleeds", "I mixed the pills with vodka",
    "I drove to the cliff and I'm sitting in the car", "I keep a razor under my pillow",
]
FP_FRAMES = ["{p}", "honestly {p}", "{p}. I mean it", "tbh {p}", "{p} and I can't tell anyone",
             "I need to say it out loud: {p}", "{p}... idk why I'm telling you", "lately {p}"]

HARD_NEG_FIRST = [
    "I'm dying to see it", "this exam is killing me", "my back is killing me today",
    "I'm so dead if my mom finds out I failed", "ugh this commute is the death of me",
    "I could sleep for a week after this shift", "I'm dying of boredom in this meeting",
    "that workout absolutely destroyed me", "I nearly died laughing at that video",
    "if I have to hear that song one more time I'll scream", "my phone battery is dying again",
    "I killed my plants again, I'm hopeless with them", "I'm drowning in homework this week",
    "I want to kill this bug in my code", "I'm so tired of my roommate's dishes in the sink",
    "I'm sick of this rain", "my landlord is driving me crazy", "I hate mondays so much",
    "my boss is the worst, I need a new job", "I'm exhausted but it was a good day",
    "I'm starving, what should I eat", "I'm going to crash on the couch early tonight",
    "I'm so done with this semester", "I feel like I'm going to die of embarrassment",
    "I'm going to shoot my shot with her tonight", "I bombed my driving test again",
    "I'm cutting carbs this month", "I cut my finger chopping onions", "I burned the toast again",
    "this heat is unbearable", "I'm dreading the family dinner this weekend",
    "I messed up my presentation and I feel awful", "I cried because I miss my grandma",
    "I'm worried I won't pass my exams", "I feel so stupid for forgetting her birthday",
]
FRIEND_Q = [
    "my friend told me she wants to kill herself, how can I help her?",
    "what should I say to a friend who is thinking about suicide?",
    "my brother has been self-harming, how do I support him?",
    "how do I know if my friend is suicidal?",
    "my roommate said he wants to die, should I call someone?",
    "my teenage daughter is cutting herself, what do I do?",
    "how can I help a coworker who talks about ending it?",
    "my friend keeps saying everyone would be better off without him, is that a warning sign?",
    "what are the warning signs that someone might hurt themselves?",
    "my best friend threatened to beat up her ex, how do I calm her down?",
]
NOTE_NEG = [
    "denies SI/HI", "Pt denies SI/HI.", "no SI, no plan", "No SI/HI. No AVH.", "SI: denies. HI: denies.",
    "denies suicidal ideation, intent or plan", "Negative for SI and HI.", "No HI toward coworkers.",
    "denies homicidal ideation", "No thoughts of harming self or others.", "no hx of self-harm or suicide attempts",
    "Denies passive or active SI.", "Pt denies any thoughts of hurting anyone.", "no SI/HI/AH/VH",
    "Pt contracts for safety, denies SI.", "No intent or plan to harm others.",
    "Denies thoughts of death or dying.", "No self-injurious behavior reported.",
    "Patient denies wanting to hurt her husband.", "SI/HI: none", "Denies current SI; no access to firearms.",
    "Mood euthymic, denies SI/HI, sleep improved.", "no suicidal or homicidal thoughts",
]

HO_VERBS = [
    "stab", "shoot", "strangle", "run over", "choke", "gut", "drown", "poison", "snap the neck of",
    "put a bullet in", "smash the skull of", "break the legs of", "beat the hell out of", "end",
    "slit the throat of", "set on fire", "mow down", "take out", "waste", "murder",
]
HO_FRAMES = [
    "I'm going to {v} {t}", "I swear I will {v} {t}", "next time I see {t} I'll {v} them",
    "I have a knife in my bag and I'm going to {v} {t}", "I keep fantasizing about how I'd {v} {t}",
    "{t} will pay, I'm going to {v} them", "I've decided to {v} {t} this weekend",
    "someone should {v} {t}", "go {v} {t}", "we need to {v} {t} before it's too late",
    "everybody grab your guns, let's {v} {t}", "I'll make {t} pay, I'm going to {v} them",
]
PLACE_VERBS = ["burn down", "shoot up", "blow up", "torch", "set fire to", "drive a truck into"]
PLACE_HO_FRAMES = ["I'm going to {v} {t}", "someone should {v} {t}", "we should {v} {t} on friday",
                   "I want to {v} {t} while it's full", "let's {v} {t}"]
MAKE_PAY = [
    "I'm going to make them pay for what they did to me, they'll bleed",
    "they're all going to regret laughing at me, I'm bringing my dad's rifle on monday",
    "he's going to get what's coming to him, I'll wait outside his house with a bat",
    "I'll make her suffer the way she made me suffer",
    "I'm going to hurt him so bad he never walks again",
    "she thinks she can leave me, I'll make sure she never sees another day",
    "I want to see them all dead on the floor",
    "if he comes near my kids again I'll put him in the ground, and I mean it",
]


def more_rows(rng: random.Random) -> list[tuple[str, object, object, object, str]]:
    out = []
    for _ in range(260):
        parts = [rng.choice(POST_OPEN)] + rng.sample(POST_DISTRESS, rng.randint(1, 3))
        pos = rng.random() < 0.5
        tail = rng.choice(POST_RISK) if pos else rng.choice(POST_COPE)
        k = rng.randint(1, len(parts))
        parts.insert(k, tail)
        text = " ".join(parts) + rng.choice(POST_CLOSE)
        if rng.random() < 0.3:
            text = text.lower()
        out.append((text, 1 if pos else 0, 0, 0, "post.risk" if pos else "post.distress_only"))
    for p in EUPHEMISMS + METHODS_PLAIN:
        for f in rng.sample(FP_FRAMES, 3):
            out.append((f.format(p=p), 1, 0, 0, "first_person.euphemism_or_method"))
    for t in HARD_NEG_FIRST:
        out.append((t, 0, 0, 0, "first_person.hard_negative"))
        out.append((t.lower() + " lol", 0, 0, 0, "first_person.hard_negative"))
    for t in FRIEND_Q:
        out.append((t, 0, 0, 0, "question.about_someone_else"))
    for t in NOTE_NEG:
        out.append((t, 0, 0, 0, "note.negated"))
        out.append((t.upper() if len(t) < 20 else t.lower(), 0, 0, 0, "note.negated"))
    for v in HO_VERBS:
        for t in rng.sample(TARGETS_PERSON, 2) + rng.sample(TARGETS_GROUP, 2):
            out.append((rng.choice(HO_FRAMES).format(v=v, t=t), 0, 1, None, "threat.synonym"))
        t = rng.choice(TARGETS_PERSON)
        out.append((rng.choice(NEG_VIOLENT_FRAMES).format(v=v, t=t), 0, 0, 0, "violence.not_threat"))
    for v in PLACE_VERBS:
        for t in rng.sample(TARGETS_PLACE, 4):
            out.append((rng.choice(PLACE_HO_FRAMES).format(v=v, t=t), 0, 1, 0, "threat.place"))
    for t in MAKE_PAY:
        out.append((t, 0, 1, None, "threat.euphemism"))
    return out


# Third step (forum language): statements with the subject dropped, preparations, exits and
# farewells, regret at surviving, wishing not to exist, and the everyday sentences that share their
# words (tired, a plan and a date, checking out, a last day, rope for a boat), so the model reads the
# frame and not the word. A separate generator (seed SEED + 1) keeps the rows above unchanged.
F_PILLS = ["pills", "meds", "sleeping pills", "antidepressants", "insulin", "tylenol", "xanax"]
F_MEANS = ["a rope", "charcoal", "a lot of tylenol", "a gun", "razor blades", "a bottle of vodka and pills"]
F_WHO = ["my mom", "my family", "my little brother", "my best friend", "my kids", "everyone"]
F_THING = ["cat", "guitar", "games", "clothes", "books", "dog"]
F_TIME = ["tonight", "this weekend", "on friday", "after my birthday", "before christmas", "soon", "tomorrow"]
F_ACT = [
    "overdosing on my {pills}", "jumping off the parking garage", "hanging myself in the garage",
    "driving into a wall", "driving off the road on the highway", "walking into traffic",
    "taking all my {pills} at once", "slitting my wrists", "shooting myself", "drowning myself",
    "stepping in front of a train", "ending it", "ending my life", "killing myself", "jumping tonight",
]
F_DROP = [
    "thinking of {act}", "been thinking about {act} a lot", "planning on {act} {time}",
    "gonna try {act} {time}", "really close to {act}", "can't stop thinking about {act}",
    "seriously considering {act}", "going to be {act} {time}",
]
F_PREP = [
    "wrote letters to {who} last night", "wrote a goodbye note", "gave away my {thing} this week",
    "deleted all my accounts today", "cleaned my room so nobody has to after", "said goodbye to {who} without telling them why",
    "bought {means} today", "hid {means} in my closet", "saved up my {pills} for weeks", "loaded my dad's gun",
    "looked up how many {pills} it takes", "picked a date", "have a plan and a date now",
]
F_PREP_TAIL = ["", " I won't need them.", " it's almost time.", " I don't know why I'm telling anyone.",
               " this weekend is it.", " I'm calm about it now.", " nobody knows."]
F_EXIT = [
    "I'm planning my exit", "I'm ready to check out for good", "I think my time is up", "this is my last post",
    "goodbye everyone, thanks for trying", "I won't be around much longer", "by the time anyone reads this I'll be gone",
    "I don't want to see my next birthday", "I'm not going to make it to {age}", "I just wanted to tell someone before I go",
    "this weekend is it for me", "I've made peace with my decision to go", "I'm just waiting for the courage to leave for good",
]
F_REGRET = [
    "I survived my attempt and I regret that it didn't work", "I wish the pills had worked last time",
    "woke up again, disappointed I'm still here", "next time I won't fail", "I'm angry they found me in time",
    "they saved me and I never asked them to",
]
F_NONEXIST = [
    "I wish I could stop existing", "I wish I'd never been born", "I want to not exist anymore",
    "I want to vanish and never come back", "I wish I could fall asleep and never wake up",
    "every night I hope I don't wake up", "I wish I could just disappear forever",
]
F_BURDEN = [
    "my family will be fine without me", "they'll get over it once I'm gone",
    "everyone will be relieved when I'm gone", "my kids are better off without a mom like me",
    "nobody would notice if I was gone, might as well make it real",
]
F_FRAMES = ["{p}", "{p}.", "honestly {p}", "idk. {p}", "{p} and i'm not scared anymore", "{p}... sorry",
            "i can't do this. {p}", "it's 3am and {p}"]
F_AGES = ["20", "25", "30", "18", "40"]
F_NEG = [
    "so tired after the night shift, need coffee", "I'm tired lately, maybe it's my thyroid",
    "exhausted from chasing my toddler all day", "tired of this weather, I want spring",
    "I'm so tired of my commute, thinking of moving closer to work", "tired of doing the dishes every night",
    "we have a plan and a date for the wedding", "we picked a date for the move", "I'm planning my exit from this company",
    "my exit interview is on friday", "checking out of the hotel at noon", "I gave away my old bike to my nephew",
    "I wrote letters to my pen pals this week", "I bought rope for the boat", "my last day at work is friday, so excited",
    "I'm leaving this town for good, moving to Austin next month", "before I go on vacation I need to finish this report",
    "goodbye everyone, see you after the holidays", "my time is up on the parking meter", "this is my last post about this game, promise",
    "I stood on the bridge to watch the sunset", "how many ibuprofen can I take in a day for my back?",
    "thinking of jumping into a new career", "can't stop thinking about the game last night",
    "I wish I could disappear to a beach for a month", "I'm ready to check out these new books from the library",
    "I'm not going to make it to the party tonight", "I won't be around much longer at this company, new job soon",
    "I keep thinking about my ex and it hurts, how do people move on", "I'm done with this diet, pizza tonight",
    "I hid the presents in my closet so the kids don't find them", "saved up for weeks to buy a new phone",
    "I picked a date for my driving test", "I said goodbye to my coworkers today, last shift",
    "deleted all my social media accounts to focus on school", "I cleaned my room finally",
    "loaded the dishwasher and went to bed", "I looked up how many calories are in a bagel",
    "I survived my first marathon and I regret not training more", "I wish I'd never started this show, it's so addictive",
    "I want to vanish from the group chat, it's so noisy", "my family will be fine without me for a weekend trip",
    "they'll get over it once I'm gone to college", "my kids are better off with a nap right now",
    "seriously considering dropping out of my statistics class", "planning on jumping into the lake for the polar plunge",
]
# Venting in the first person with no risk in it: anger, stress, self-criticism, tiredness.
F_VENT = [
    "I've been so angry lately", "I can't keep up with this workload",
    "I wish I could stop being so lazy", "I hate how I procrastinate", "I'm so fed up with my landlord",
    "I've been really stressed about money", "I can't stand my coworkers anymore", "I've been in a bad mood all week",
    "I'm annoyed with myself for forgetting again", "I get so irritated when people are late",
    "I know I shouldn't let it bother me so much", "I've had the worst week at work",
    "I'm tired all the time, maybe I need a vacation", "I've been exhausted since the baby was born",
    "I'm so sick of being broke", "I'm frustrated with my progress at the gym", "I've been feeling lazy and unmotivated about chores",
    "I hate my hair today", "my kid has been driving me up the wall",
    "I cannot deal with this traffic every morning", "I'm losing my mind over this tax form",
    "my brother has been getting on my nerves all day", "ugh I'm so done with people today",
    "don't worry I won't do anything dumb, I just needed to vent", "I'm safe, I promise I'm not going to hurt myself",
    "I'm fine, not going to do anything crazy, just sad tonight", "relax, I'm not planning anything, I just had a bad day",
]
F_VENT_TAIL = ["", ".", " lol", " tbh", ", anyone else?", " but it'll pass", " any advice?"]


def forum_rows(rng: random.Random) -> list[tuple[str, object, object, object, str]]:
    out = []
    def fill(t: str) -> str:
        return t.format(pills=rng.choice(F_PILLS), means=rng.choice(F_MEANS), who=rng.choice(F_WHO),
                        thing=rng.choice(F_THING), time=rng.choice(F_TIME), age=rng.choice(F_AGES),
                        act="{act}")
    for d in F_DROP:
        for a in rng.sample(F_ACT, 5):
            text = fill(d).format(act=fill(a))
            out.append((rng.choice(F_FRAMES).format(p=text), 1, 0, 0, "forum.subject_dropped"))
    for p in F_PREP:
        for _ in range(3):
            text = "I " + fill(p) + rng.choice(F_PREP_TAIL)
            out.append((text if rng.random() < 0.6 else text.lower(), 1, 0, 0, "forum.preparation"))
    for group, kind in ((F_EXIT, "forum.exit"), (F_REGRET, "forum.regret_survived"),
                        (F_NONEXIST, "forum.not_exist"), (F_BURDEN, "forum.burden")):
        for p in group:
            for f in rng.sample(F_FRAMES, 3):
                text = f.format(p=fill(p))
                out.append((text if rng.random() < 0.6 else text.lower(), 1, 0, 0, kind))
    for t in F_VENT:
        for tail in rng.sample(F_VENT_TAIL, 3):
            text = t + tail
            out.append((text if rng.random() < 0.6 else text.lower(), 0, 0, 0, "forum.venting"))
    for t in F_NEG:
        out.append((t, 0, 0, 0, "forum.hard_negative"))
        out.append((t.lower() + " lol", 0, 0, 0, "forum.hard_negative"))
        out.append((rng.choice(["honestly ", "ugh ", "tbh ", "so "]) + t, 0, 0, 0, "forum.hard_negative"))
    return out


def lexicon_phrases(lexdir: Path) -> dict[str, list[str]]:
    path = lexdir / "suicide_risk_lexicon_validated_24-08-02T21-27-35.csv"
    rows = list(csv.reader(path.open(encoding="utf-8")))
    header = rows[0]
    out = {}
    for j, name in enumerate(header):
        if name not in SH_CONSTRUCTS:
            continue
        col = [r[j].strip() for r in rows[4:] if j < len(r) and r[j].strip()]
        # The column lists the phrases, then their lemmatised copies; keep the written half.
        half = col[: (len(col) + 1) // 2]
        out[name] = [p for p in half if p not in LEXICON_SKIP and ";" not in p and len(p) > 3]
    return out


def row(i: int, text: str, sh, ho, ab, kind: str) -> dict:
    labels = {}
    for k, v in (("self_harm", sh), ("harm_to_others", ho), ("abuse", ab)):
        if v is not None:
            labels[k] = v
    return {
        "id": f"mx-{i:05d}",
        "text": text,
        "role": "user",
        "source": "model_extra",
        "labels": labels,
        "meta": {"kind": kind},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--lexicon",
        type=Path,
        default=Path("../shared/data/safety/lexicons/suicide_risk_lexicon"),
    )
    ap.add_argument("--out", type=Path, default=Path("agent/data/safety/model_extra.jsonl"))
    args = ap.parse_args()
    rng = random.Random(SEED)
    texts: list[tuple[str, object, object, object, str]] = []
    for t in HAND_SH:
        texts.append((t, 1, 0, None, "hand.self_harm"))
    for t in HAND_HO:
        texts.append((t, 0, 1, None, "hand.harm_to_others"))
    for t in HAND_AB:
        texts.append((t, 0, None, 1, "hand.abuse"))
    for t in HAND_NEG:
        texts.append((t, 0, 0, 0, "hand.negative"))
    lex = lexicon_phrases(args.lexicon)
    for name, phrases in lex.items():
        strong = SH_CONSTRUCTS[name]
        for p in phrases:
            if strong:
                for f in rng.sample(FRAMES_SH, 2):
                    texts.append((f.format(p=p), 1, 0, 0, "lexicon.first_person"))
            else:
                f = rng.choice(STRONG_HOPELESS)
                texts.append((f.format(p=p), 1, 0, 0, "lexicon.hopeless_strong"))
                # A single construct word said in passing about something else is not risk.
                if " " not in p:
                    f = rng.choice(MILD_FRAMES)
                    texts.append((f.format(p=p), 0, 0, 0, "lexicon.mild"))
            f = rng.choice(FRAMES_NEG)
            texts.append((f.format(p=p), 0, 0, 0, "lexicon.not_first_person"))
    for v in VIOLENT_VERBS:
        for t in rng.sample(TARGETS_PERSON, 3) + rng.sample(TARGETS_GROUP, 3):
            f = rng.choice(THREAT_FRAMES)
            texts.append((f.format(v=v, t=t), 0, 1, None, "threat"))
        for t in rng.sample(TARGETS_PERSON + TARGETS_GROUP, 2):
            f = rng.choice(NEG_VIOLENT_FRAMES)
            texts.append((f.format(v=v, t=t), 0, 0, 0, "violence.not_threat"))
    for v in KIND_VERBS:
        for t in rng.sample(TARGETS_PERSON, 2) + rng.sample(TARGETS_GROUP, 5):
            f = rng.choice(THREAT_FRAMES[:12])
            texts.append((f.format(v=v, t=t), 0, 0, 0, "kind_verb"))
    for t in TARGETS_GROUP:
        for f in rng.sample(NORM_FRAMES, 3):
            texts.append((f.format(t=t), 0, 1, 0, "threat.group_norm"))
        for f in rng.sample(GROUP_NEG_FRAMES, 6):
            texts.append((f.format(t=t), 0, 0, 0, "group.not_threat"))
    for t in NONVIOLENT_CRIME:
        texts.append((t, 0, 0, 0, "crime.not_violent"))
    for subj in EVERYDAY_SUBJ:
        for pred in rng.sample(EVERYDAY_PRED, 25):
            texts.append((f"{subj} {pred}", 0, 0, 0, "everyday"))
    for t in TARGETS_PLACE:
        for f in rng.sample(PLACE_FRAMES, 3):
            texts.append((f.format(t=t), 0, 1, 0, "threat.place"))
        texts.append((f"we had a lovely afternoon at {t}", 0, 0, 0, "place.benign"))
    texts += more_rows(rng)
    texts += forum_rows(random.Random(SEED + 1))
    seen = set()
    out = []
    for text, sh, ho, ab, kind in texts:
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        out.append(row(len(out), text, sh, ho, ab, kind))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
