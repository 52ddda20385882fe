//! Small text helpers the explorer's view-models share: UTC times without a date crate,
//! shortened hashes for lists, truncated client strings, and percent-encoded links to state keys.
//!
//! Everything here produces plain text; the templates escape it. Links built here contain only
//! characters that need no escaping in a URL path or query.

use std::fmt::Write as _;

/// How many hex characters a hash keeps when shortened for a list (the detail page shows it all).
pub const SHORT_HEX_CHARS: usize = 12;

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`, the form the
/// dashboard's script also writes (from `Date.toISOString`), so server and live rows match.
pub fn utc_time(timestamp_ms: u64) -> String {
    const MS_PER_DAY: u64 = 86_400_000;
    let days = timestamp_ms / MS_PER_DAY;
    let ms_of_day = timestamp_ms % MS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    let (secs, ms) = (ms_of_day / 1000, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{ms:03} UTC", secs / 3600, (secs / 60) % 60, secs % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days only: timestamps here are unsigned).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The first [`SHORT_HEX_CHARS`] characters of a hex value and an ellipsis, for tables where
/// the full value would not fit; the full value is always on the item's own page.
pub fn short_hex(hex: &str) -> String {
    if hex.len() <= SHORT_HEX_CHARS {
        return hex.to_string();
    }
    format!("{}…", &hex[..SHORT_HEX_CHARS])
}

/// At most `max_chars` characters of `s` (cut on a character boundary) and whether it was cut.
/// Lists show client-written keys and values this way: a value may be 64 KiB.
pub fn truncate_chars(s: &str, max_chars: usize) -> (String, bool) {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => (format!("{}…", &s[..cut]), true),
        None => (s.to_string(), false),
    }
}

/// Percent-encodes every byte of `s` outside RFC 3986's unreserved set, `/` included, so a
/// key holding `/`, `?`, `#`, `%` or `..` stays one path segment and survives a browser's
/// path normalisation.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The explorer's link to a state key's page. The keys `.` and `..` cannot be a path segment,
/// encoded or not (browsers resolve them as dot segments), so they go in the query instead.
pub fn state_href(key: &str) -> String {
    if key == "." || key == ".." {
        format!("/state?key={}", percent_encode(key))
    } else {
        format!("/state/{}", percent_encode(key))
    }
}

/// A rate or duration as the dashboard prints it: one decimal below 10, whole numbers above.
pub fn figure(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_matches_known_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000 UTC");
        // The genesis time of the protocol's example genesis.json.
        assert_eq!(utc_time(1_764_288_000_000), "2025-11-28 00:00:00.000 UTC");
        // A leap day, and the last millisecond of a leap year.
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(utc_time(1_735_689_599_999), "2024-12-31 23:59:59.999 UTC");
        assert_eq!(utc_time(1_709_210_096_789), "2024-02-29 12:34:56.789 UTC");
    }

    #[test]
    fn utc_time_agrees_with_day_arithmetic_over_centuries() {
        // Every 1st of March from 1970 to 2400 is the day after the last day of February.
        for year in 1970..2400u64 {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let days_before: u64 =
                (1970..year).map(|y| if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 { 366 } else { 365 }).sum();
            let march_1 = days_before + 31 + if leap { 29 } else { 28 };
            assert_eq!(civil_from_days(march_1), (year, 3, 1), "year {year}");
            assert_eq!(civil_from_days(march_1 - 1), (year, 2, if leap { 29 } else { 28 }), "year {year}");
        }
    }

    #[test]
    fn short_hex_keeps_a_prefix() {
        let hex = "ab".repeat(32);
        assert_eq!(short_hex(&hex), format!("{}…", &hex[..12]));
        assert_eq!(short_hex("abc"), "abc");
    }

    #[test]
    fn truncation_cuts_on_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), ("hé…".to_string(), true));
        assert_eq!(truncate_chars("héllo", 5), ("héllo".to_string(), false));
        assert_eq!(truncate_chars("", 3), (String::new(), false));
    }

    #[test]
    fn percent_encoding_keeps_a_key_one_segment() {
        assert_eq!(percent_encode("user:1/a b?c#d%"), "user%3A1%2Fa%20b%3Fc%23d%25");
        assert_eq!(percent_encode("héllo"), "h%C3%A9llo");
        assert_eq!(percent_encode("A-z_0.~"), "A-z_0.~");
        assert_eq!(state_href("a/b"), "/state/a%2Fb");
        assert_eq!(state_href(".."), "/state?key=..");
        assert_eq!(state_href("..."), "/state/...");
    }

    #[test]
    fn figures_are_short() {
        assert_eq!(figure(0.26), "0.3");
        assert_eq!(figure(9.94), "9.9");
        assert_eq!(figure(1234.6), "1235");
    }
}
