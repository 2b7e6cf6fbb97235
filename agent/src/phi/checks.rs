//! Check-digit and range validation for identifier formats (Luhn, SSN, NPI, VIN, IBAN, DEA, IPv4).

/// Luhn (mod 10) over the digits of `s`, ignoring spaces and dashes.
pub(crate) fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// SSN issuance rules: area not 000, 666 or 900-999; group not 00; serial not 0000.
pub(crate) fn ssn_valid(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// NPI: 10 digits, Luhn over the digits prefixed with 80840.
pub(crate) fn npi_valid(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) && luhn(&format!("80840{s}"))
}

/// VIN (ISO 3779, North America): 17 characters without I, O, Q, and a valid check digit in position 9.
pub(crate) fn vin_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 17 {
        return false;
    }
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    for (i, &c) in b.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'H' => (c - b'A' + 1) as u32,
            b'J'..=b'N' => (c - b'J' + 1) as u32,
            b'P' => 7,
            b'R' => 9,
            b'S'..=b'Z' => (c - b'S' + 2) as u32,
            _ => return false,
        };
        sum += v * WEIGHTS[i];
    }
    let check = sum % 11;
    let expected = if check == 10 {
        b'X'
    } else {
        b'0' + check as u8
    };
    b[8] == expected
}

/// IBAN: country code, two check digits, mod-97 of the rearranged number equals 1.
pub(crate) fn iban_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if compact.len() < 15 || compact.len() > 34 {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u64 = 0;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u64,
            b'A'..=b'Z' => (c - b'A' + 10) as u64,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// DEA registration: two letters, seven digits, check digit = (d1+d3+d5 + 2*(d2+d4+d6)) mod 10.
pub(crate) fn dea_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 9 || !b[0].is_ascii_alphabetic() || !b[1].is_ascii_alphabetic() {
        return false;
    }
    let d: Vec<u32> = b[2..]
        .iter()
        .filter_map(|c| (*c as char).to_digit(10))
        .collect();
    if d.len() != 7 {
        return false;
    }
    (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]
}

/// A calendar date that exists (leap years included); `year` may be unknown.
pub(crate) fn date_valid(month: u32, day: u32, year: Option<i32>) -> bool {
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let max = match month {
        2 => match year {
            Some(y) if !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) => 28,
            _ => 29,
        },
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(npi_valid("1234567893"));
        assert!(!npi_valid("1234567890"));
        assert!(vin_valid("1M8GDM9AXKP042788"));
        assert!(vin_valid("11111111111111111"));
        assert!(!vin_valid("1M8GDM9A1KP042788"));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
        assert!(dea_valid("AB1234563"));
        assert!(!dea_valid("AB1234567"));
        assert!(ssn_valid(123, 45, 6789));
        assert!(!ssn_valid(987, 65, 4321) && !ssn_valid(666, 1, 1) && !ssn_valid(123, 0, 1));
        assert!(
            date_valid(2, 29, Some(2024))
                && !date_valid(2, 29, Some(2023))
                && !date_valid(4, 31, None)
        );
    }
}
