//! Equity of the redactor itself: NAME recall must not depend on which group a surname is common in.
//!
//! Surnames come from the 2010 Census surname file (../shared/data/names), taking those whose share for
//! one group is at least 0.8; each is placed in clinical-note templates and must be fully covered by a
//! NAME span. The test skips (with a message) when the shared data is absent.

use readi_agent::phi::{Detector, PhiType};

const TEMPLATES: &[&str] = &[
    "Pt seen with Dr. {} this morning, plan discussed.",
    "Mr. {} reports low mood and poor sleep.",
    "Spoke with daughter Maria {} who is the HCP.",
    "Ms. {} called the unit at 1400 asking for an update.",
    "Family meeting held with pt's wife, Anna {}.",
    "Note written by John {}, RN.",
    "Case discussed with Dr. Lee and {}, MD.",
    "Patient Grace {} is a 34 year old with PTSD.",
];

fn title_case(upper: &str) -> String {
    let mut out = String::with_capacity(upper.len());
    let mut start = true;
    for c in upper.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphabetic();
    }
    out
}

/// An even sample of up to 400 surnames of a group: keeps the test fast and deterministic.
fn sample(all: &[String]) -> Vec<&String> {
    let step = (all.len() / 400).max(1);
    all.iter().step_by(step).take(400).collect()
}

/// A way of writing the same note.
type Recase = fn(&str) -> String;

#[test]
fn name_recall_is_equal_across_surname_groups() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/names/census2010_surname_race.csv"
    );
    let Ok(body) = std::fs::read_to_string(path) else {
        eprintln!("SKIPPED: {path} not found; the equity test needs the shared name data");
        return;
    };
    let groups = ["white", "black", "api", "native", "hispanic"];
    let mut names: Vec<Vec<String>> = vec![Vec::new(); groups.len()];
    for line in body.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 7 {
            continue;
        }
        let shares: Vec<f64> = cols[1..7]
            .iter()
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        // Columns: white, black, api, native, multiple, hispanic.
        for (g, col) in [0usize, 1, 2, 3, 5].into_iter().enumerate() {
            if shares[col] >= 0.8 {
                names[g].push(title_case(cols[0]));
            }
        }
    }
    let detector = Detector::global();
    let mut table = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        assert!(
            names[g].len() >= 30,
            "too few {group} surnames: {}",
            names[g].len()
        );
        let sample = sample(&names[g]);
        let (mut hit, mut total) = (0usize, 0usize);
        for surname in &sample {
            for t in TEMPLATES {
                let text = t.replace("{}", surname);
                let at = text.find(surname.as_str()).expect("surname in text");
                let end = at + surname.len();
                let spans = detector.detect(&text);
                let ok = spans
                    .iter()
                    .any(|s| s.kind == PhiType::Name && s.start <= at && end <= s.end);
                hit += usize::from(ok);
                total += 1;
            }
        }
        table.push((
            group.to_string(),
            sample.len(),
            100.0 * hit as f64 / total as f64,
        ));
    }
    println!("| group | surnames | NAME recall % |\n|---|---|---|");
    for (g, n, r) in &table {
        println!("| {g} | {n} | {r:.1} |");
    }
    let best = table.iter().map(|t| t.2).fold(0.0, f64::max);
    for (g, _, r) in &table {
        assert!(
            best - r <= 2.0,
            "{g} trails the best group by {:.1} points: {table:?}",
            best - r
        );
    }

    // The same notes written in lower case and in capitals, as dictation and some charting systems
    // write them: each writing style must redact as well as the best, for every group.
    let styles: [(&str, Recase); 3] = [
        ("mixed", str::to_string),
        ("lower", str::to_lowercase),
        ("upper", str::to_uppercase),
    ];
    println!("\n| writing style | notes | surname recall % | worst group % |\n|---|---|---|---|");
    let mut rows = Vec::new();
    for (style, recase) in styles {
        let (mut hit_all, mut total_all, mut worst) = (0usize, 0usize, 100.0f64);
        for (g, _) in groups.iter().enumerate() {
            let (mut hit, mut total) = (0usize, 0usize);
            for surname in sample(&names[g]) {
                for t in TEMPLATES {
                    let text = recase(&t.replace("{}", surname));
                    let name = recase(surname);
                    let at = text.find(name.as_str()).expect("surname in text");
                    let end = at + name.len();
                    let ok = detector
                        .detect(&text)
                        .iter()
                        .any(|s| s.start <= at && end <= s.end);
                    hit += usize::from(ok);
                    total += 1;
                }
            }
            worst = worst.min(100.0 * hit as f64 / total as f64);
            hit_all += hit;
            total_all += total;
        }
        let r = 100.0 * hit_all as f64 / total_all as f64;
        println!("| {style} | {total_all} | {r:.1} | {worst:.1} |");
        rows.push((style, r, worst));
    }
    let best = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    for (style, r, worst) in &rows {
        assert!(
            best - r <= 2.0,
            "{style} text trails the best writing style by {:.1} points: {rows:?}",
            best - r
        );
        assert!(
            best - worst <= 2.0,
            "in {style} text a surname group trails by {:.1} points: {rows:?}",
            best - worst
        );
    }
}
