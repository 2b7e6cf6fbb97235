//! UTC calendar dates as day numbers (days since 1970-01-01), proleptic Gregorian, after Howard
//! Hinnant's civil-date algorithms.

/// The months' English names, January first.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A day number as `YYYY-MM-DD`.
pub fn ymd(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix seconds as a UTC timestamp, `YYYY-MM-DDTHH:MM:SSZ`, for human output.
pub fn utc_timestamp(secs: i64) -> String {
    let (day, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        ymd(day),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The day number of a real date written `YYYY-MM-DD` from 1970 to 9999; None for anything else.
pub fn parse_ymd(s: &str) -> Option<i64> {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // A day past the month's end rolls into the next month; a real date round-trips.
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_764_700_000), "2025-12-02T18:26:40Z");
        assert_eq!(utc_timestamp(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn dates_round_trip_and_impossible_ones_are_refused() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(parse_ymd("2026-11-26"), Some(20_783));
        assert_eq!(ymd(20_783), "2026-11-26");
        assert_eq!(
            parse_ymd("2024-02-29").map(ymd).as_deref(),
            Some("2024-02-29")
        );
        for day in [-1000, 0, 59, 60, 11_016, 20_783, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-04-31",
            "2026-00-10",
            "1969-12-31",
            "26-11-26x",
            "2026/11/26",
            "2026-11",
            "2026-11-26-1",
            "",
        ] {
            assert_eq!(parse_ymd(bad), None, "{bad}");
        }
    }
}
