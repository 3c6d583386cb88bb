//! Every calendar date the agent writes, formatted in one place on the `time` crate: EVE
//! timestamps as Suricata writes them, RFC 3339 for syslog headers, and certificate validity
//! times. Nothing else in the agent converts seconds to a civil date.

use time::{format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime};

/// Suricata's EVE timestamp: microseconds, UTC written as `+0000`.
const EVE: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000");

/// RFC 3339 with microseconds and `Z`, as RFC 5424 (syslog) asks.
const RFC3339_MICROS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// A certificate's `notBefore` / `notAfter` as Suricata logs it (UTC, no zone).
const CERT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

fn at_ns(unix_ns: u64) -> OffsetDateTime {
    // A u64 of nanoseconds ends in 2554, well inside the crate's range; the fallback is never
    // taken but keeps this total.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn format(t: OffsetDateTime, f: &[BorrowedFormatItem<'_>]) -> String {
    // Formatting fails only for a description that asks for what the value lacks (an
    // offset-free value asked for its offset); these ask for nothing of the kind.
    t.format(f).unwrap_or_default()
}

/// Bytes of an EVE timestamp (a u64 of nanoseconds ends in 2554: four-digit years).
pub const EVE_LEN: usize = 31;

/// `YYYY-MM-DDTHH:MM:SS` of one second, as the description [`EVE`] writes it.
type SecondText = [u8; 19];

thread_local! {
    /// The last second written and its text: every record of a busy second shares it, and
    /// the civil-date conversion and formatting are most of a timestamp's cost.
    static LAST_SECOND: std::cell::Cell<Option<(u64, SecondText)>> = const {
        std::cell::Cell::new(None)
    };
}

/// The text of second `secs` since the epoch.
fn second_text(secs: u64) -> SecondText {
    if let Some((s, text)) = LAST_SECOND.get() {
        if s == secs {
            return text;
        }
    }
    let mut text = [b'0'; 19];
    let formatted = format(at_ns(secs.saturating_mul(1_000_000_000)), EVE);
    // The description's first 19 bytes are the second; the fraction and zone follow.
    for (d, c) in text.iter_mut().zip(formatted.bytes()) {
        *d = c;
    }
    LAST_SECOND.set(Some((secs, text)));
    text
}

/// A UNIX time in nanoseconds as an EVE timestamp (`2026-11-22T00:40:50.123456+0000`),
/// written into `buf`.
pub fn eve_into(unix_ns: u64, buf: &mut [u8; EVE_LEN]) -> &str {
    let (secs, micros) = (unix_ns / 1_000_000_000, unix_ns % 1_000_000_000 / 1_000);
    buf[..19].copy_from_slice(&second_text(secs));
    buf[19] = b'.';
    let mut m = micros;
    for d in buf[20..26].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    buf[26..].copy_from_slice(b"+0000");
    // All ASCII by construction.
    std::str::from_utf8(&buf[..]).unwrap_or_default()
}

/// A UNIX time in nanoseconds as an EVE timestamp: `2026-11-22T00:40:50.123456+0000`.
pub fn eve(unix_ns: u64) -> String {
    eve_into(unix_ns, &mut [0; EVE_LEN]).to_owned()
}

/// A UNIX time in nanoseconds in RFC 3339 with microseconds: `2026-11-22T00:40:50.123456Z`.
pub fn rfc3339_micros(unix_ns: u64) -> String {
    format(at_ns(unix_ns), RFC3339_MICROS)
}

/// A UNIX time in seconds (negative before 1970) as `YYYY-MM-DDTHH:MM:SS`, or `None` beyond
/// the years 9999 BC–9999 AD.
pub fn cert(unix_secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .map(|t| format(t, CERT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_timestamps_use_suricata_format() {
        assert_eq!(eve(0), "1970-01-01T00:00:00.000000+0000");
        assert_eq!(
            eve(1_795_308_050_123_456_789),
            "2026-11-22T00:40:50.123456+0000"
        );
        // Leap day.
        assert_eq!(
            eve(1_709_164_800_000_000_000),
            "2024-02-29T00:00:00.000000+0000"
        );
        // The last nanosecond a u64 holds.
        assert_eq!(eve(u64::MAX), "2554-07-21T23:34:33.709551+0000");
    }

    #[test]
    fn eve_timestamps_equal_the_time_crates_formatting_across_seconds() {
        // A deterministic walk over 1970–2554 with runs inside one second (the cache) and
        // jumps between seconds, years and leap days.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut ns = 0u64;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ns = match i % 4 {
                0 => x,
                1 => ns.saturating_add(x % 1_000),
                2 => ns.saturating_add(x % 2_000_000_000),
                _ => (ns / 1_000_000_000 * 1_000_000_000).saturating_add(999_999_999),
            };
            assert_eq!(eve(ns), format(at_ns(ns), EVE), "{ns}");
        }
        assert_eq!(eve(u64::MAX), format(at_ns(u64::MAX), EVE));
    }

    #[test]
    fn syslog_timestamps_are_rfc3339() {
        assert_eq!(
            rfc3339_micros(1_795_308_050_123_456_789),
            "2026-11-22T00:40:50.123456Z"
        );
    }

    #[test]
    fn certificate_times_as_suricata_writes_them() {
        // Suricata's rust/src/x509/time.rs test values (tls-pre-1970).
        assert_eq!(cert(-86400).as_deref(), Some("1969-12-31T00:00:00"));
        assert_eq!(cert(2_177_367_003).as_deref(), Some("2038-12-31T00:10:03"));
        assert_eq!(cert(0).as_deref(), Some("1970-01-01T00:00:00"));
        assert_eq!(cert(951_782_400).as_deref(), Some("2000-02-29T00:00:00"));
        // Year 9999 is the last the calendar holds; beyond it there is no date to write.
        assert_eq!(
            cert(253_402_300_799).as_deref(),
            Some("9999-12-31T23:59:59")
        );
        assert_eq!(cert(253_402_300_800), None);
        assert_eq!(cert(i64::MIN), None);
    }
}
