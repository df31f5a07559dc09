//! Quota periods on the UTC calendar: a `day` starts at 00:00 UTC, a `week` on Monday 00:00
//! UTC (ISO 8601), a `month` at 00:00 UTC on the 1st, so it lasts 28 to 31 days; `hour` and
//! `minute` start on the hour and the minute. Every gateway computes the same period from its
//! own clock, so the periods line up across gateways as far as their clocks agree.

use serde::Deserialize;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// A quota period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// 60 seconds from the start of a minute.
    Minute,
    /// One hour from the start of an hour.
    Hour,
    /// One UTC calendar day.
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    /// The 1st 00:00 UTC to the 1st of the next month.
    Month,
}

/// The period that holds a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Names the period uniquely among periods of its kind, e.g. `d20089` or `m24301`.
    pub id: String,
    /// Milliseconds from the moment to the end of the period (at least 1).
    pub left_ms: u64,
}

impl Period {
    /// The period holding `now_ms` (milliseconds since the Unix epoch).
    pub fn window(self, now_ms: u64) -> Window {
        let fixed = |tag: char, len: u64| Window {
            id: format!("{tag}{}", now_ms / len),
            left_ms: len - now_ms % len,
        };
        match self {
            Period::Minute => fixed('n', MINUTE_MS),
            Period::Hour => fixed('h', HOUR_MS),
            Period::Day => fixed('d', DAY_MS),
            Period::Week => {
                // 1970-01-01 was a Thursday: day 0 is 3 days into its Monday-based week.
                let day = now_ms / DAY_MS;
                let week = (day + 3) / 7;
                let next_monday = week * 7 + 7 - 3;
                Window {
                    id: format!("w{week}"),
                    left_ms: next_monday * DAY_MS - now_ms,
                }
            }
            Period::Month => {
                let day = (now_ms / DAY_MS) as i64;
                let (y, m, _) = civil_from_days(day);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let next = days_from_civil(ny, nm, 1) as u64 * DAY_MS;
                Window {
                    id: format!("m{}", y * 12 + i64::from(m) - 1),
                    left_ms: next - now_ms,
                }
            }
        }
    }
}

/// (year, month 1..=12, day 1..=31) of the day `z` days after 1970-01-01 (H. Hinnant's
/// algorithm, proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days from 1970-01-01 to (year, month, day).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u64;
    let mp = u64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + u64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: u32, d: u32, h: u64, min: u64) -> u64 {
        days_from_civil(y, m, d) as u64 * DAY_MS + h * HOUR_MS + min * MINUTE_MS
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        for z in (0..40_000).step_by(17) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn days_hours_minutes() {
        let now = ms(2025, 3, 14, 22, 30) + 1500;
        let day = Period::Day.window(now);
        assert_eq!(day.left_ms, HOUR_MS + 30 * MINUTE_MS - 1500);
        assert_eq!(day.id, format!("d{}", days_from_civil(2025, 3, 14)));
        assert_eq!(Period::Hour.window(now).left_ms, 30 * MINUTE_MS - 1500);
        assert_eq!(Period::Minute.window(now).left_ms, MINUTE_MS - 1500);
        // The last millisecond of a day still belongs to it; the next one starts a new id.
        let end = ms(2025, 3, 15, 0, 0);
        assert_eq!(Period::Day.window(end - 1).left_ms, 1);
        assert_eq!(Period::Day.window(end).left_ms, DAY_MS);
        assert_ne!(Period::Day.window(end - 1).id, Period::Day.window(end).id);
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2025-03-10 is a Monday.
        let monday = ms(2025, 3, 10, 0, 0);
        let w = Period::Week.window(monday);
        assert_eq!(w.left_ms, 7 * DAY_MS);
        let sunday_night = ms(2025, 3, 16, 23, 59);
        let w2 = Period::Week.window(sunday_night);
        assert_eq!(w2.id, w.id);
        assert_eq!(w2.left_ms, MINUTE_MS);
        assert_ne!(Period::Week.window(ms(2025, 3, 17, 0, 0)).id, w.id);
        // The epoch (a Thursday) is 4 days before the next Monday.
        assert_eq!(Period::Week.window(0).left_ms, 4 * DAY_MS);
    }

    #[test]
    fn months_are_calendar_months() {
        let feb_leap = Period::Month.window(ms(2024, 2, 1, 0, 0));
        assert_eq!(feb_leap.left_ms, 29 * DAY_MS);
        assert_eq!(
            Period::Month.window(ms(2025, 2, 1, 0, 0)).left_ms,
            28 * DAY_MS
        );
        assert_eq!(
            Period::Month.window(ms(2025, 1, 31, 12, 0)).left_ms,
            DAY_MS / 2
        );
        let dec = Period::Month.window(ms(2025, 12, 31, 23, 0));
        assert_eq!(dec.left_ms, HOUR_MS);
        assert_ne!(dec.id, Period::Month.window(ms(2026, 1, 1, 0, 0)).id);
        assert_eq!(
            Period::Month.window(ms(2025, 4, 2, 0, 0)).id,
            Period::Month.window(ms(2025, 4, 30, 23, 59)).id
        );
    }
}
