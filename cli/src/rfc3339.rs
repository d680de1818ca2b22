//! Timestamps as RFC 3339 text in UTC, without a date library.
//!
//! JSON uses protobuf's JSON form of `google.protobuf.Timestamp` (what containerd's API
//! uses): `2024-05-01T12:34:56Z`, with 3, 6 or 9 fractional digits when the nanoseconds
//! need them. Tables show whole seconds.

use overlaysnap::core::Timestamp;

/// `ts` with as many fractional digits (0, 3, 6 or 9) as it needs.
pub fn precise(ts: Timestamp) -> String {
    let fraction = match ts.nanos {
        0 => String::new(),
        n if n % 1_000_000 == 0 => format!(".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => format!(".{:06}", n / 1_000),
        n => format!(".{n:09}"),
    };
    format!("{}{fraction}Z", date_time(ts.seconds))
}

/// `ts` to the second.
pub fn seconds(ts: Timestamp) -> String {
    format!("{}Z", date_time(ts.seconds))
}

/// `YYYY-MM-DDTHH:MM:SS` of `seconds` since the Unix epoch, in UTC.
fn date_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(precise(Timestamp::new(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            precise(Timestamp::new(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            precise(Timestamp::new(1_700_000_000, 120_000_000)),
            "2023-11-14T22:13:20.120Z"
        );
        assert_eq!(
            precise(Timestamp::new(1_700_000_000, 123_456_000)),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(seconds(Timestamp::new(-1, 0)), "1969-12-31T23:59:59Z");
        assert_eq!(
            seconds(Timestamp::new(4_102_444_800, 0)),
            "2100-01-01T00:00:00Z"
        );
    }
}
