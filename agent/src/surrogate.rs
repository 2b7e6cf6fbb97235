//! Realistic surrogates: fake values of the same shape, stable within a session, with every date of a
//! session shifted by one secret offset so intervals between dates survive.

use readi_common::date::{MONTHS, civil_from_days, days_from_civil};
use ring::hmac;

use crate::phi::{Lexicon, PhiType, Span};

/// Per-session secrets that make surrogates stable and unguessable.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub(crate) struct SessionSecrets {
    /// Days added to every date of the session (never 0).
    pub shift_days: i32,
    /// Key for choosing surrogate values.
    pub seed: [u8; 32],
}

impl SessionSecrets {
    /// Fresh secrets from the system random source: a shift of 30-365 days either way.
    pub(crate) fn generate() -> Option<SessionSecrets> {
        use ring::rand::{SecureRandom, SystemRandom};
        let rng = SystemRandom::new();
        let mut seed = [0u8; 32];
        let mut r = [0u8; 4];
        rng.fill(&mut seed).ok()?;
        rng.fill(&mut r).ok()?;
        let v = u32::from_le_bytes(r);
        let days = 30 + (v % 336) as i32;
        Some(SessionSecrets {
            shift_days: if v & 0x8000_0000 == 0 { days } else { -days },
            seed,
        })
    }

    /// A stream of pseudo-random bytes for `value` of `kind` (and a retry counter).
    fn stream(&self, kind: PhiType, value: &str, attempt: u32) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.seed);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(kind.as_str().as_bytes());
        ctx.update(&[0]);
        ctx.update(value.to_lowercase().as_bytes());
        ctx.update(&attempt.to_le_bytes());
        let a = ctx.sign();
        let b = hmac::sign(&key, a.as_ref());
        [a.as_ref(), b.as_ref()].concat()
    }
}

fn shift(y: i64, m: u32, d: u32, days: i32) -> (i64, u32, u32) {
    civil_from_days(days_from_civil(y, m, d) + i64::from(days))
}

/// Digits with at least one of `/ - .` between them.
fn numeric_date(s: &str) -> bool {
    s.bytes().any(|b| b == b'/' || b == b'-' || b == b'.')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'/' || b == b'-' || b == b'.')
}

/// Shifts a date written in a common form, keeping the form; `None` when the form is not understood.
pub(crate) fn shift_date(value: &str, days: i32) -> Option<String> {
    let v = value.trim();
    // Numeric: m/d/yyyy, m/d/yy, m-d-yyyy, m/d, yyyy-mm-dd (a trailing time is kept as is).
    let (date, time) = match v.find([' ', 'T']) {
        Some(i) if numeric_date(&v[..i]) => (&v[..i], &v[i..]),
        _ => (v, ""),
    };
    if numeric_date(date) {
        let sep = date.bytes().find(|b| !b.is_ascii_digit())? as char;
        let parts: Vec<&str> = date.split(sep).collect();
        let num = |s: &str| s.parse::<u32>().ok();
        return match parts.as_slice() {
            [y, m, d] if y.len() == 4 => {
                let (ny, nm, nd) = shift(i64::from(num(y)?), num(m)?, num(d)?, days);
                Some(format!(
                    "{ny:04}{sep}{nm:0w$}{sep}{nd:0w$}{time}",
                    w = m.len()
                ))
            }
            [m, d, y] => {
                let year = i64::from(num(y)?) + if y.len() == 2 { 2000 } else { 0 };
                let (ny, nm, nd) = shift(year, num(m)?, num(d)?, days);
                let yy = if y.len() == 2 {
                    format!("{:02}", ny % 100)
                } else {
                    ny.to_string()
                };
                Some(format!(
                    "{nm:0w$}{sep}{nd:0v$}{sep}{yy}{time}",
                    w = m.len(),
                    v = d.len()
                ))
            }
            [m, d] => {
                // No year: shift within a leap year so 2/29 stays valid.
                let (_, nm, nd) = shift(2000, num(m)?, num(d)?, days);
                Some(format!("{nm}{sep}{nd}"))
            }
            _ => None,
        };
    }
    // "March 4th, 2019", "Mar 4 2019", "4 March 2019", "March 2021".
    let words: Vec<&str> = v
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let month_of = |w: &str| {
        let w = w.trim_end_matches('.');
        MONTHS
            .iter()
            .position(|m| w.len() >= 3 && m.to_lowercase().starts_with(&w.to_lowercase()))
            .map(|i| i as u32 + 1)
    };
    let day_of = |w: &str| {
        w.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=31).contains(d))
    };
    let year_of = |w: &str| {
        let w = w.trim_start_matches('\'');
        let y: i64 = w.parse().ok()?;
        Some(if w.len() == 2 { 2000 + y } else { y })
    };
    let (m, d, y) = match words.as_slice() {
        [mo, da, ye] if month_of(mo).is_some() => (month_of(mo)?, day_of(da), year_of(ye)),
        [da, mo, ye] if month_of(mo).is_some() => (month_of(mo)?, day_of(da), year_of(ye)),
        [mo, da] if month_of(mo).is_some() && day_of(da).is_some() => {
            (month_of(mo)?, day_of(da), None)
        }
        [mo, ye] if month_of(mo).is_some() => (month_of(mo)?, None, year_of(ye)),
        _ => return None,
    };
    let (ny, nm, nd) = shift(y.unwrap_or(2000), m, d.unwrap_or(15), days);
    let month = MONTHS[nm as usize - 1];
    Some(match (d, y) {
        (Some(_), Some(_)) => format!("{month} {nd}, {ny}"),
        (Some(_), None) => format!("{month} {nd}"),
        (None, _) => format!("{month} {ny}"),
    })
}

/// Replaces digits and letters with pseudo-random ones of the same class, keeping punctuation and case.
fn scramble(value: &str, bytes: &[u8]) -> String {
    value
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let r = bytes[i % bytes.len()] as u32 + i as u32;
            match c {
                '0'..='9' => char::from_digit(r % 10, 10).unwrap_or('0'),
                'a'..='z' => (b'a' + (r % 26) as u8) as char,
                'A'..='Z' => (b'A' + (r % 26) as u8) as char,
                other => other,
            }
        })
        .collect()
}

fn pick<'a>(list: &[&'a str], bytes: &[u8], at: usize) -> &'a str {
    let i = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    list[i % list.len()]
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| {
            f.to_uppercase()
                .chain(c.flat_map(char::to_lowercase))
                .collect()
        })
        .unwrap_or_default()
}

/// A surrogate for `value` (the text of `span`), attempt `n` (retries avoid collisions).
pub(crate) fn generate(
    secrets: &SessionSecrets,
    lexicon: &Lexicon,
    span: &Span,
    value: &str,
    n: u32,
) -> String {
    let r = secrets.stream(span.kind, value, n);
    match span.kind {
        PhiType::Name => {
            const TITLES: &[&str] = &[
                "dr", "mr", "mrs", "ms", "miss", "mx", "prof", "rev", "nurse",
            ];
            let (first, last) = lexicon.surrogate_names();
            let mut out = Vec::new();
            let mut seen_first = false;
            for (i, w) in value.split_whitespace().enumerate() {
                let bare = w.trim_end_matches(['.', ',']);
                if TITLES.contains(&bare.to_lowercase().as_str()) {
                    out.push(w.to_owned());
                } else if bare.chars().count() == 1 {
                    out.push(format!(
                        "{}{}",
                        (b'A' + r[i % r.len()] % 26) as char,
                        &w[bare.len()..]
                    ));
                } else if !seen_first
                    && value.split_whitespace().count() > 1
                    && !out.iter().any(|o: &String| o.ends_with('.'))
                {
                    seen_first = true;
                    out.push(title(pick(first, &r, (i * 4) % 28)));
                } else {
                    out.push(title(pick(last, &r, (i * 4 + 2) % 28)));
                }
            }
            out.join(" ")
        }
        PhiType::Date => {
            shift_date(value, secrets.shift_days).unwrap_or_else(|| scramble(value, &r))
        }
        PhiType::Age => "90 or older".to_owned(),
        PhiType::Email => format!("user{:02x}{:02x}{:02x}@example.org", r[0], r[1], r[2]),
        PhiType::Url => format!("https://example.org/{:02x}{:02x}{:02x}", r[0], r[1], r[2]),
        PhiType::Ip if value.contains(':') => {
            format!("2001:db8::{:x}", u16::from_le_bytes([r[0], r[1]]))
        }
        PhiType::Ip => format!("192.0.2.{}", 1 + r[0] % 254),
        PhiType::Ssn => {
            // Area 9xx is never issued, so a surrogate SSN is never someone's real one.
            let s = scramble(value, &r);
            s.replacen(|c: char| c.is_ascii_digit(), "9", 1)
        }
        PhiType::Location if span.rule == "location.zip" => {
            format!(
                "{}{:02}",
                value.chars().take(3).collect::<String>(),
                r[0] % 100
            )
        }
        PhiType::Location => {
            let places = lexicon.surrogate_places();
            let last_word = value.split_whitespace().last().unwrap_or("");
            let keep = [
                "Hospital", "Clinic", "Center", "Medical", "Health", "County", "Street", "St",
                "Avenue", "Ave", "Road", "Rd",
            ];
            let town = pick(places, &r, 0);
            if value.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                format!(
                    "{} {} {}",
                    10 + u32::from(r[4]) * 3,
                    town,
                    if keep.contains(&last_word) {
                        last_word
                    } else {
                        "Street"
                    }
                )
            } else if keep.contains(&last_word) && value.split_whitespace().count() > 1 {
                format!("{town} {last_word}")
            } else {
                town.to_owned()
            }
        }
        _ => scramble(value, &r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_shift_and_keep_their_form_and_intervals() {
        assert_eq!(shift_date("03/04/2019", 30).unwrap(), "04/03/2019");
        assert_eq!(shift_date("3/4/19", -4).unwrap(), "2/28/19");
        assert_eq!(
            shift_date("2019-12-30 10:30", 5).unwrap(),
            "2020-01-04 10:30"
        );
        assert_eq!(shift_date("March 4th, 2019", 1).unwrap(), "March 5, 2019");
        assert_eq!(shift_date("4 March 2019", -4).unwrap(), "February 28, 2019");
        assert_eq!(shift_date("Feb 28", 1).unwrap(), "February 29");
        assert!(shift_date("Tuesday", 3).is_none());
        // The interval between two dates of a session is unchanged.
        for days in [-365, -31, 45, 200] {
            let a = shift_date("2023-01-10", days).unwrap();
            let b = shift_date("2023-03-01", days).unwrap();
            let parse = |s: &str| {
                let p: Vec<i64> = s.split('-').map(|x| x.parse().unwrap()).collect();
                days_from_civil(p[0], p[1] as u32, p[2] as u32)
            };
            assert_eq!(parse(&b) - parse(&a), 50, "{a} {b}");
        }
    }

    #[test]
    fn surrogates_keep_shape_and_differ_from_the_original() {
        let s = SessionSecrets::generate().unwrap();
        let lex = Lexicon::global();
        let span = |kind, rule| Span {
            start: 0,
            end: 0,
            kind,
            rule,
        };
        let phone = generate(
            &s,
            lex,
            &span(PhiType::Phone, "phone.nanp"),
            "617-555-0199",
            0,
        );
        assert_eq!(phone.len(), 12);
        assert_eq!(phone.as_bytes()[3], b'-');
        let ssn = generate(&s, lex, &span(PhiType::Ssn, "ssn.format"), "123-45-6789", 0);
        assert!(ssn.starts_with('9'), "{ssn}");
        let name = generate(
            &s,
            lex,
            &span(PhiType::Name, "name.title"),
            "Dr. Zebulon Quackenbush",
            0,
        );
        assert!(
            name.starts_with("Dr. ") && !name.contains("Quackenbush"),
            "{name}"
        );
        assert_eq!(
            name,
            generate(
                &s,
                lex,
                &span(PhiType::Name, "name.title"),
                "Dr. Zebulon Quackenbush",
                0
            )
        );
        assert_eq!(
            generate(
                &s,
                lex,
                &span(PhiType::Location, "location.zip"),
                "02115",
                0
            )
            .len(),
            5
        );
    }
}
