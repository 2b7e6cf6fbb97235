//! Detection tests: every identifier kind, every date form, clinical vocabulary that must survive.

use super::*;

#[test]
#[ignore]
fn phase_timing() {
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/phi/scq-dev.jsonl"
    ))
    .unwrap_or_default();
    let texts: Vec<String> = body
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let d = Detector::global();
    let bytes: usize = texts.iter().map(String::len).sum::<usize>() * 10;
    let t = std::time::Instant::now();
    let mut cands = Vec::new();
    for _ in 0..10 {
        for x in &texts {
            cands.clear();
            d.patterns.find(x, &mut cands);
        }
    }
    let p = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        for x in &texts {
            let mut c = Vec::new();
            d.patterns.find(x, &mut c);
            let taken = c.clone();
            tokens::find(x, d.lexicon, &taken, &mut c);
        }
    }
    let all = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        for x in &texts {
            d.detect(x);
        }
    }
    let det = t.elapsed();
    let mb = bytes as f64 / 1e6;
    println!(
        "patterns {:.1} MB/s, patterns+tokens {:.1} MB/s, detect {:.1} MB/s",
        mb / p.as_secs_f64(),
        mb / all.as_secs_f64(),
        mb / det.as_secs_f64()
    );
}

/// The spans of `text`, as (covered text, type, rule).
fn found(text: &str) -> Vec<(String, PhiType, &'static str)> {
    Detector::global()
        .detect(text)
        .into_iter()
        .map(|s| (text[s.start..s.end].to_owned(), s.kind, s.rule))
        .collect()
}

/// Asserts that every non-space character of `needle` (which occurs in `text`) is inside a span of type `kind`.
#[track_caller]
fn covered(text: &str, needle: &str, kind: PhiType) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
    let spans = Detector::global().detect(text);
    let ok = needle
        .char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .all(|(i, _)| {
            spans
                .iter()
                .any(|s| s.start <= at + i && at + i < s.end && s.kind == kind)
        });
    assert!(
        ok,
        "{needle:?} not covered as {kind} in {text:?}: {:?}",
        found(text)
    );
}

#[track_caller]
fn untouched(text: &str, needle: &str) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
    let spans = Detector::global().detect(text);
    assert!(
        !spans
            .iter()
            .any(|s| s.start < at + needle.len() && at < s.end),
        "{needle:?} was redacted in {text:?}: {:?}",
        found(text)
    );
}

#[test]
fn names_of_patients_relatives_and_clinicians() {
    let t = "Pt seen with wife Mary at bedside; updated by Dr. Kowalski. Son John called. Jane M., 45F, and Robert Smith, RN.";
    covered(t, "Mary", PhiType::Name);
    covered(t, "Kowalski", PhiType::Name);
    // The title stays outside the span, so the reader still knows a clinician is meant.
    untouched(t, "Dr.");
    covered(t, "John", PhiType::Name);
    covered(t, "Jane M.", PhiType::Name);
    covered(t, "Robert Smith", PhiType::Name);
    let t = "Spoke with daughter María José Núñez; pt's son Andrés Peña visited. Call José Ortiz.";
    covered(t, "María José Núñez", PhiType::Name);
    covered(t, "Andrés Peña", PhiType::Name);
    covered(t, "José Ortiz", PhiType::Name);
    let t = "Jesus Garcia's mother called. Family (son Tom and dtr Sue) visited. Pt Ed Smith. RN: J. Martinez.";
    for name in ["Jesus Garcia", "Tom", "Sue", "Ed Smith", "J. Martinez"] {
        covered(t, name, PhiType::Name);
    }
    let t = "Addison's disease, Braden scale 14, Lou Gehrig's disease; admitted from Newton-Wellesley ED.";
    for word in ["Addison's", "Braden", "Lou", "Gehrig's"] {
        untouched(t, word);
    }
    covered(t, "Newton-Wellesley ED", PhiType::Location);
    let t = "Name: SMITH, JOHN  Unit No: 1234567. Attending: DR. PATEL. Pt: MARIA LOPEZ. Pt: NPO, SOB. ICU: stable.";
    for name in ["SMITH, JOHN", "DR. PATEL", "MARIA LOPEZ"] {
        covered(t, name, PhiType::Name);
    }
    for word in ["ICU", "NPO", "SOB", "stable"] {
        untouched(t, word);
    }
    let t = "pt's wife mary at bedside, son called, daughter and niece jessica visited.";
    covered(t, "mary", PhiType::Name);
    covered(t, "jessica", PhiType::Name);
    for word in ["called", "and", "visited", "bedside"] {
        untouched(t, word);
    }
    let t = "Spoke w/ Mr. O'Brien re: dispo. Her daughter (Susan) is HCP. Maria: I can't sleep.";
    covered(t, "O'Brien", PhiType::Name);
    covered(t, "Susan", PhiType::Name);
    covered(t, "Maria", PhiType::Name);
}

#[test]
fn locations_smaller_than_a_state() {
    let t = "Transferred from St. Elizabeth's on arrival; lives at 42 Elm Street, Apt 3, Quincy, MA 02169 near Boston.";
    covered(t, "St. Elizabeth's", PhiType::Location);
    covered(
        t,
        "42 Elm Street, Apt 3, Quincy, MA 02169",
        PhiType::Location,
    );
    covered(t, "Boston", PhiType::Location);
    let t = "Admitted to Mercy General Hospital, then Cedars-Sinai and the Cleveland Clinic. Lives in Suffolk County.";
    covered(t, "Mercy General Hospital", PhiType::Location);
    covered(t, "Cedars-Sinai", PhiType::Location);
    covered(t, "Cleveland Clinic", PhiType::Location);
    covered(t, "Suffolk County", PhiType::Location);
}

#[test]
fn every_date_form() {
    for (text, date) in [
        ("seen 3/4 for f/u", "3/4"),
        ("DOB 03/04/2019.", "03/04/2019"),
        ("admitted March 4th with SOB", "March 4th"),
        ("admitted 4-Mar-19 with SOB", "4-Mar-19"),
        ("will return on the 4th for labs", "4th"),
        ("extubate Tues 3/4 if ABG ok", "Tues 3/4"),
        ("procedure 2019-03-04 10:30 uneventful", "2019-03-04 10:30"),
        ("last seen January 15, 2023 in clinic", "January 15, 2023"),
        ("since 12 May 2021 no episodes", "12 May 2021"),
        ("discharged Christmas Eve", "Christmas Eve"),
        ("started in July 2021", "July 2021"),
    ] {
        covered(text, date, PhiType::Date);
    }
    untouched("rated pain 5/10 after dose", "5/10");
    untouched("blood cultures 2/2 bottles positive", "2/2");
    untouched("diagnosed in 2019, stable since", "2019");
    untouched("BP 120/80, HR 72", "120/80");
}

#[test]
fn ages_over_89_only() {
    covered("a 92-year-old woman with CHF", "92-year-old", PhiType::Age);
    covered("pt is 95 yo, lives alone", "95 yo", PhiType::Age);
    covered("aged 101, DNR", "101", PhiType::Age);
    untouched("a 72-year-old man with COPD", "72-year-old");
}

#[test]
fn contact_details_and_network_identifiers() {
    let t = "Call 617-555-0199 or (206) 555-0134; fax: 617.555.0100. Email jdoe@example.org, see https://portal.example.org/p/123 or www.example.com. Host 192.168.10.5 and fe80::1ff:fe23:4567:890a.";
    covered(t, "617-555-0199", PhiType::Phone);
    covered(t, "(206) 555-0134", PhiType::Phone);
    covered(t, "617.555.0100", PhiType::Fax);
    covered(t, "jdoe@example.org", PhiType::Email);
    covered(t, "https://portal.example.org/p/123", PhiType::Url);
    covered(t, "www.example.com", PhiType::Url);
    covered(t, "192.168.10.5", PhiType::Ip);
    covered(t, "fe80::1ff:fe23:4567:890a", PhiType::Ip);
    untouched("BP 120/80 at 10:30, temp 37.2", "37.2");
}

#[test]
fn record_numbers_and_validated_identifiers() {
    let t = "SSN 123-45-6789. MRN: 4471920. Member ID: HPX345678. Acct #BA-98765432. NPI 1234567893. VIN 1M8GDM9AXKP042788. Pacemaker serial number: PM44-1192-7A. Card 4111 1111 1111 1111. Fingerprint ID FP-20394.";
    covered(t, "123-45-6789", PhiType::Ssn);
    covered(t, "4471920", PhiType::Mrn);
    covered(t, "HPX345678", PhiType::HealthPlanId);
    covered(t, "#BA-98765432", PhiType::Account);
    covered(t, "1234567893", PhiType::License);
    covered(t, "1M8GDM9AXKP042788", PhiType::VehicleId);
    covered(t, "PM44-1192-7A", PhiType::DeviceId);
    covered(t, "4111 1111 1111 1111", PhiType::Account);
    covered(t, "FP-20394", PhiType::Biometric);
    covered(
        "study code QX-789012 assigned",
        "QX-789012",
        PhiType::OtherId,
    );
    // An SSN-shaped number with an impossible area is still an identifier, never left in.
    covered("ID 987-65-4321 on file", "987-65-4321", PhiType::OtherId);
}

#[test]
fn clinical_vocabulary_survives() {
    let t = "Parkinson's hx, on Sinemet. Foley in place. Gram stain neg. Haldol 2mg IV given. Wilson disease ruled out. Lou Gehrig's disease. Framingham risk score 12. Will continue to monitor. Neuro: A&Ox3. Plan: cont Lasix 40 IV.";
    for word in [
        "Parkinson's",
        "Sinemet",
        "Foley",
        "Gram",
        "Haldol",
        "Wilson",
        "Gehrig",
        "Framingham",
        "Will",
        "Neuro",
        "Plan",
        "Lasix",
        "2mg",
        "40",
    ] {
        untouched(t, word);
    }
    untouched(
        "Denies SI/HI. PHQ-9 score 14, GAD-7 11. COVID-19 negative. ICD-10 F32.1.",
        "PHQ-9",
    );
    untouched(
        "Denies SI/HI. PHQ-9 score 14, GAD-7 11. COVID-19 negative. ICD-10 F32.1.",
        "COVID-19",
    );
}

/// UK primary-care shorthand, products and run-on sentences are not identifiers; the dates,
/// names and domains beside them still are.
#[test]
fn shorthand_products_and_run_on_sentences_survive() {
    let t = "SOB worsening over the past 2/7. Nitrofurantoin for 3/7. Review 5/7 if no better. \
             Cough 1/7 previously. Seen on 3/7 by Dr. Grace Okafor.";
    for word in ["2/7", "for 3/7", "5/7", "1/7"] {
        untouched(t, word);
    }
    let on = t.rfind("3/7").unwrap();
    assert!(
        Detector::global()
            .detect(t)
            .iter()
            .any(|s| s.start == on && s.kind == PhiType::Date),
        "{:?}",
        found(t)
    );
    covered(t, "Grace Okafor", PhiType::Name);
    let t = "PMH: asthma. DHx: nil. FMHx: Mum has migraine. SHx: lives with wife, non smoker.";
    for word in ["DHx", "FMHx", "SHx", "non"] {
        untouched(t, word);
    }
    let t = "Send readings via MyChart; Fibroscan booked. DeShawn Tillery called about it.";
    untouched(t, "MyChart");
    covered(t, "DeShawn Tillery", PhiType::Name);
    let t =
        "Not feverish, not checked temp.No obvious trigger. Leaflet at www.patient.co.uk today.";
    untouched(t, "temp.No");
    covered(t, "www.patient.co.uk", PhiType::Url);
}

#[test]
fn spans_are_sorted_disjoint_and_on_char_boundaries() {
    let t = "Ünïcödé: José Núñez (MRN 12345678) visited 東京 on 3/4; email josé@example.com — Dr. Zoë Ågren.";
    let spans = Detector::global().detect(t);
    assert!(!spans.is_empty());
    for w in spans.windows(2) {
        assert!(w[0].end <= w[1].start, "{spans:?}");
    }
    for s in &spans {
        assert!(t.is_char_boundary(s.start) && t.is_char_boundary(s.end) && s.start < s.end);
        assert!(!s.rule.is_empty());
    }
    covered(t, "12345678", PhiType::Mrn);
}

#[test]
fn phi_free_clinical_text_is_left_alone() {
    for t in [
        "What are the first-line treatments for major depressive disorder in adolescents?",
        "Patient reports improved sleep and mood. Continue sertraline 50 mg daily. Follow up in 4 weeks.",
        "Neuro: A&Ox3, MAE. Resp: LS clear, sats 97% on RA. GI: abd soft. Pain 2/10.",
    ] {
        assert!(
            Detector::global().detect(t).is_empty(),
            "{t:?}: {:?}",
            found(t)
        );
    }
}

#[test]
fn every_letter_case_reads_alike() {
    let mixed =
        "Seen by Dr. Kowalski; husband Bob at bedside. Transferred from Lakeside Rehab 3/14.";
    for text in [
        mixed.to_string(),
        mixed.to_lowercase(),
        mixed.to_uppercase(),
    ] {
        let lower = text.to_lowercase();
        let at = |w: &str| &text[lower.find(w).expect("word")..][..w.len()];
        covered(&text, at("kowalski"), PhiType::Name);
        covered(&text, at("bob"), PhiType::Name);
        covered(&text, at("lakeside rehab"), PhiType::Location);
        covered(&text, at("3/14"), PhiType::Date);
        untouched(&text, at("husband"));
        untouched(&text, at("bedside"));
    }
}

#[test]
fn nursing_shorthand_stays_and_its_identifiers_go() {
    let t = "NEURO: A&OX3, MAE. RESP: LS COARSE, AC 500X14/5/40%. CV: SR 80S, 2/6 SEM. \
             STRENGTH 4/5. SHIFT 0700-1930. DR ABRAMOWITZ PAGER 4-5821. J.T. AWARE. CABG 8/98.";
    for word in [
        "NEURO",
        "A&OX3",
        "MAE",
        "RESP",
        "COARSE",
        "2/6",
        "4/5",
        "0700-1930",
    ] {
        untouched(t, word);
    }
    covered(t, "ABRAMOWITZ", PhiType::Name);
    covered(t, "4-5821", PhiType::Phone);
    covered(t, "J.T", PhiType::Name);
    covered(t, "8/98", PhiType::Date);
}

#[test]
fn spoken_dates_and_hard_wrapped_lines() {
    let t = "Patient: my date of birth is the fourteenth of August, nineteen eighty nine.";
    covered(
        t,
        "fourteenth of August, nineteen eighty nine",
        PhiType::Date,
    );
    let t = "history of present illness: patient was seen at Cleveland\nClinic on january 13th , 1982 with dr smith.";
    covered(t, "Cleveland\nClinic", PhiType::Location);
    covered(t, "january 13th , 1982", PhiType::Date);
    covered(t, "smith", PhiType::Name);
}

#[test]
fn words_in_both_lists_need_context() {
    let t = "pt will need pt/ot. may go home tomorrow. hope to wean. bill sent. brown stool.";
    for word in ["will", "may", "hope", "bill", "brown"] {
        untouched(t, word);
    }
    let t = "wife will visit; daughter hope called; dr brown aware.";
    untouched(t, "will");
    covered(t, "hope", PhiType::Name);
    covered(t, "brown", PhiType::Name);
}

#[test]
fn addresses_facilities_and_codes_in_any_case() {
    let t = "seen at st. joseph's hospital in phoenix on may 10th 2022; lives at 1234 elm st, chicago, il.";
    covered(t, "st. joseph's hospital in phoenix", PhiType::Location);
    covered(t, "may 10th 2022", PhiType::Date);
    covered(t, "1234 elm st, chicago, il", PhiType::Location);
    let t = "Billing address: Sara Schwarz\n    28245 Puruntie 82 Apt. 595\n   LAPPEENRANTA\n    53650\n\nThanks";
    covered(
        t,
        "28245 Puruntie 82 Apt. 595\n   LAPPEENRANTA\n    53650",
        PhiType::Location,
    );
    untouched(t, "Thanks");
    // "address" as a verb announces nothing.
    let t = "We will address his anxiety at 2 weeks.";
    untouched(t, "anxiety");
    let t = "my email is mary dot smith at gmail dot com and my plan is #r-987654.";
    covered(t, "mary dot smith at gmail dot com", PhiType::Email);
    covered(t, "#r-987654", PhiType::OtherId);
    untouched(t, "plan");
    let t = "evaluated at westside medical, then at albuquerque neurology center; he may 2 times a day.";
    covered(t, "westside medical", PhiType::Location);
    covered(t, "albuquerque neurology center", PhiType::Location);
    untouched(t, "may 2");
}

#[test]
fn speech_fragments_abbreviations_and_dictated_vocatives() {
    // A word cut off and restarted, or a stutter, is the word it reaches.
    let t = "something minor but noth- nothing major. i have to flo-floss daily.";
    untouched(t, "noth");
    untouched(t, "flo-floss");
    // Abbreviations in a finding list are no names; after "at" an acronym can be a hospital.
    let t = "Plan: Urine dip and MSU. Drusen deposits under the RPE. Baby at BRGH NICU.";
    untouched(t, "MSU");
    untouched(t, "RPE");
    covered(t, "BRGH", PhiType::Name);
    // Signs named after people are examination findings.
    untouched("Negative Hoffman's\nGait: normal.", "Hoffman's");
    // Dictated speech has no commas around a name said to someone.
    let t = "okay great so mark tell me about your elbow. nice to see you jack i know it hurts.";
    covered(t, "mark", PhiType::Name);
    covered(t, "jack", PhiType::Name);
}

#[test]
fn address_blocks_names_in_lists_and_keyed_phones() {
    let t = "Maureen Thibault\n\n41086 Kiannonkatu 98\n Suite 464\n OULU\n\n Finland";
    covered(
        t,
        "41086 Kiannonkatu 98\n Suite 464\n OULU",
        PhiType::Location,
    );
    let t = "Please return to Unit 4719 Box 7394\nDPO AP 70942 in case of an issue.";
    covered(t, "Unit 4719 Box 7394\nDPO AP 70942", PhiType::Location);
    untouched(
        "She was sitting in the corner of the bar, and chat.",
        "corner",
    );
    let t = "They had 6: Gaetane, Hannah, Anthony. Usamov and Bowers were engineers. Shovda is reliable.";
    covered(t, "Gaetane", PhiType::Name);
    covered(t, "Bowers", PhiType::Name);
    covered(t, "Shovda", PhiType::Name);
    let t = "Personal Info:\nPhone:\n467 3395\n\nWhat's your name? Sölvi Salómonsson";
    covered(t, "467 3395", PhiType::Phone);
    covered(t, "Sölvi Salómonsson", PhiType::Name);
    // Lists of findings stay.
    untouched("Pain, Swelling and Redness were noted.", "Swelling");
}

#[test]
fn birth_dates_said_in_words_and_towns_abroad() {
    let t =
        "Doctor: And your date of birth?\nPatient: Uh, six, twelve, uh, eighty.\nDoctor: Thanks.";
    covered(t, "six, twelve, uh, eighty", PhiType::Date);
    untouched(t, "Thanks");
    let t = "it was in november of two thousand twenty, when i moved to central london.";
    covered(t, "november of two thousand twenty", PhiType::Date);
    covered(t, "central london", PhiType::Location);
    let t = "Patient: It's four Park Avenue, and it's SW sixteen six JT. Seen at new york presbyterian.";
    covered(t, "SW sixteen six JT", PhiType::Location);
    covered(t, "new york presbyterian", PhiType::Location);
    untouched("PLAN OF ONE OR TWO DOSES", "ONE");
    let t = "pt's parents live in providence; accepted at hillcrest nursing center on may 16.";
    covered(t, "providence", PhiType::Location);
    covered(t, "hillcrest nursing center", PhiType::Location);
    covered(t, "may 16", PhiType::Date);
    untouched(
        "Was he born normal? I am cambodian but I live in Belgium.",
        "normal",
    );
    untouched("I am cambodian but I live in Belgium.", "Belgium");
    // A town abroad that is also clinical shorthand stays shorthand.
    untouched("PT TRANSFERRED FROM OSH YESTERDAY", "OSH");
}
