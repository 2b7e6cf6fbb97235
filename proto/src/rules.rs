//! Wire rules both sides hold to: what a registered id and a language tag may look like, so no
//! report field can carry free text. The agent writes by them and the controller refuses what
//! breaks them; both call these.

/// Registered ids (applications, segments, vendors): 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.`.
pub fn is_registered_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// A language as reported: a primary subtag (2-3 letters, lower case) and an optional region (2
/// letters, upper case, or 3 digits); anything else becomes `und`.
pub fn normalise_language(tag: &str) -> String {
    let mut parts = tag.split(['-', '_']);
    let primary = parts.next().unwrap_or("");
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return "und".to_owned();
    }
    let mut out = primary.to_ascii_lowercase();
    match (parts.next(), parts.next()) {
        (None, _) => {}
        (Some(r), None)
            if (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit())) =>
        {
            out.push('-');
            out.push_str(&r.to_ascii_uppercase());
        }
        _ => return "und".to_owned(),
    }
    out
}

/// Whether `s` is a language exactly as [`normalise_language`] writes it.
pub fn is_language(s: &str) -> bool {
    normalise_language(s) == s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_normalised_or_unknown() {
        assert_eq!(normalise_language("en"), "en");
        assert_eq!(normalise_language("es-mx"), "es-MX");
        assert_eq!(normalise_language("es_419"), "es-419");
        assert_eq!(normalise_language("John Smith"), "und");
        assert_eq!(normalise_language("en-US-x-private"), "und");
        assert_eq!(normalise_language("english"), "und");
        assert!(is_language("es-MX") && is_language("und") && is_language("pt-076"));
        assert!(!is_language("es-mx") && !is_language("es_MX") && !is_language("EN"));
    }

    #[test]
    fn registered_ids_are_short_and_plain() {
        assert!(is_registered_id("notes-app") && is_registered_id("a.b_c-1"));
        assert!(!is_registered_id("") && !is_registered_id("Notes") && !is_registered_id("a b"));
        assert!(!is_registered_id(&"a".repeat(65)));
    }
}
