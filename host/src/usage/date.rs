//! UTC calendar days as day numbers since 1970-01-01, and their `YYYY-MM-DD` names: usage is
//! counted per UTC day, as API Gateway's usage plans count it.

use std::time::SystemTime;

// The calendar arithmetic is the SigV4 crate's, which needs it for its timestamps.
use wicket_sigv4::time::{civil_from_days, days_from_civil};

/// The day number of `YYYY-MM-DD` (exactly that shape, a real date, 1970 to 9999).
pub fn parse(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    );
    if y < 1970 || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // A day past the month's end (2026-02-30) lands in the next month.
    (civil_from_days(day) == (y, m, d)).then_some(day as u32)
}

/// `YYYY-MM-DD` of a day number.
pub fn format(day: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today's day number, UTC.
pub fn today() -> u32 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 86_400) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_their_names() {
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("2000-03-01"), Some(11_017));
        assert_eq!(parse("2024-02-29"), Some(19_782));
        for day in (0..40_000).step_by(7) {
            assert_eq!(parse(&format(day)), Some(day), "{}", format(day));
        }
    }

    #[test]
    fn only_real_dates_in_the_one_shape() {
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-04-31",
            "1969-12-31",
            "2026-1-01",
            "2026/01/01",
            "+026-01-01",
            "2026-01-01 ",
            "20260101",
            "",
            "２０２６-01-01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
