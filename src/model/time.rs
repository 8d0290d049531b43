//! Time as shipdeck writes and reads it, on one crate (jiff): durations as
//! operators write them in the config (`"30s"`, `"1h 30m"`), RFC 3339 UTC
//! times on the hosts, and the compact stamps in ids.

use std::time::{Duration, SystemTime};

use jiff::fmt::friendly::SpanPrinter;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

/// A duration as operators write one: `"30s"`, `"2m"`, `"1h 30m"`,
/// `"250ms"` (or ISO 8601, `"PT30S"`). A bare number has no unit and is
/// refused; so are zero and negative ones.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like \"30s\", \"2m\" or \"1h 30m\"");
    let too_long = || format!("{s:?} is too long: a duration may be at most 30 days (720h)");
    let d: SignedDuration = s.trim().parse().map_err(|e: jiff::Error| {
        if e.to_string().contains("too big") {
            too_long()
        } else {
            bad()
        }
    })?;
    let d = Duration::try_from(d).map_err(|_| bad())?;
    if d.is_zero() {
        return Err(format!("{s:?}: a duration must be above zero"));
    }
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// The longest duration shipdeck takes anywhere (gate, timeouts, pauses):
/// longer than any change should wait, and far from what overflows a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A duration the way the config writes it: `1m 30s`, `250ms`.
pub fn written_duration(d: Duration) -> String {
    match SignedDuration::try_from(d) {
        Ok(d) => SpanPrinter::new().duration_to_string(&d),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

fn utc(t: SystemTime) -> Zoned {
    Timestamp::try_from(t)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(TimeZone::UTC)
}

/// RFC 3339 UTC, to the second: what locks and history lines carry.
pub fn rfc3339(t: SystemTime) -> String {
    let ts = Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH);
    Timestamp::from_second(ts.as_second())
        .unwrap_or(ts)
        .to_string()
}

/// Now, as [`rfc3339`] writes it.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Now, to the millisecond: a history record's time, which orders records
/// of changes made within the same second on different hosts.
pub fn now_rfc3339_ms() -> String {
    utc_format(SystemTime::now(), "%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// A written time as people read it: to the second.
pub fn to_the_second(written: &str) -> String {
    match written.split_once('.') {
        Some((seconds, rest)) if rest.ends_with('Z') => format!("{seconds}Z"),
        _ => written.to_owned(),
    }
}

/// A duration for people: `250ms`, `4.2s`, `3m05s`.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// An RFC 3339 time, as the hosts write them.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    s.trim().parse::<Timestamp>().ok().map(SystemTime::from)
}

/// `strftime` of a time in UTC (`%Y%m%d%H%M%S`, `%H:%M:%S`, `%.3f` …).
pub fn utc_format(t: SystemTime, format: &str) -> String {
    utc(t).strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_times_order_within_a_second_and_read_to_the_second() {
        let t = now_rfc3339_ms();
        assert!(parse_rfc3339(&t).is_some(), "{t}");
        assert_eq!(t.len(), "2026-12-02T09:50:25.123Z".len(), "{t}");
        assert_eq!(
            to_the_second("2026-12-02T09:50:25.123Z"),
            "2026-12-02T09:50:25Z"
        );
        assert_eq!(
            to_the_second("2026-12-02T09:50:25Z"),
            "2026-12-02T09:50:25Z"
        );
        assert!(parse_rfc3339("2026-12-02T09:50:25.123Z") > parse_rfc3339("2026-12-02T09:50:25Z"));
    }

    #[test]
    fn durations_are_bounded_to_30_days() {
        assert_eq!(parse_duration("720h"), Ok(MAX_DURATION));
        for s in ["720h 1s", "9223372036854775807s", "18446744073709551615s"] {
            let e = parse_duration(s).unwrap_err();
            assert!(
                e.contains("is too long: a duration may be at most 30 days"),
                "{e}"
            );
        }
    }

    #[test]
    fn durations_read_the_forms_operators_write() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 10 minutes "), Ok(Duration::from_secs(600)));
        for bad in ["30", "soon", "-5s", "", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_print_as_written() {
        assert_eq!(written_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(written_duration(Duration::from_secs(60)), "1m");
        assert_eq!(written_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(written_duration(Duration::from_secs(600)), "10m");
    }

    #[test]
    fn times_round_trip_in_utc_to_the_second() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_160_000_123);
        assert_eq!(rfc3339(t), "2026-12-01T21:20:00Z");
        assert_eq!(
            parse_rfc3339("2026-12-01T21:20:00Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_160_000))
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T22:20:00+01:00"),
            parse_rfc3339("2026-12-01T21:20:00Z")
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(utc_format(t, "%Y%m%d%H%M%S"), "20261201212000");
        assert_eq!(utc_format(t, "%H:%M:%S%.3f"), "21:20:00.123");
    }
}
