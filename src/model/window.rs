//! Deploy windows and freezes: when an environment may be changed.
//!
//! ```text
//! window   = "Mon-Fri 09:00-16:00"                  # days, then a time range
//! window   = "Mon-Thu 09:00-17:00; Fri 09:00-12:00" # several windows, ';' apart
//! window   = "Mon,Wed 22:00-02:00"                  # crosses midnight: Mon 22:00 to Tue 02:00
//! window   = "10:00-16:00"                          # no days: every day
//! timezone = "Europe/Berlin"                        # IANA name, or "UTC"
//! freezes  = ["holidays: 2026-12-20 .. 2027-01-04",
//!             "2026-11-27 18:00 .. 2026-11-30 08:00"]
//! ```
//!
//! Days are `Mon`..`Sun` (or full names, any case), as lists (`Mon,Wed`),
//! ranges (`Mon-Fri`, `Sat-Sun`, and `Fri-Mon` which wraps over the weekend)
//! or both (`Mon-Wed,Fri`). Times are `HH:MM`, the start inclusive and the end
//! exclusive; `24:00` ends at midnight. A range whose end is not after its
//! start crosses midnight and belongs to the day it starts on.
//!
//! A freeze is `[NAME:] START .. END`, each a date `YYYY-MM-DD` (midnight) or a
//! date and time `YYYY-MM-DD HH:MM`, END exclusive, in the same time zone.
//!
//! Windows are kept in wall-clock time, so `09:00` is nine in the morning on
//! both sides of a DST change. A freeze bound that falls in a DST gap moves
//! forward by the gap; one that falls in a repeated hour takes the first.
//!
//! Time zones come from jiff's bundled database, not the system's: every
//! operator's machine (and CI) then agrees on whether a window is open.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{Timestamp, Zoned};

const MINUTES_PER_DAY: u16 = 24 * 60;
/// How far ahead a refusal looks for the next opening: a weekly window opens
/// within eight days of any instant, unless freezes cover it.
const SEARCH_DAYS: i64 = 8;
/// Freezes longer than this do not stretch the search further; a refusal then
/// says no opening was found rather than walking years of days.
const MAX_SEARCH_DAYS: i64 = 400;

/// One recurring window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    /// Indexed Monday-first.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u16,
    /// Minutes after midnight, up to 1440; at or before `start` means the
    /// next day.
    end: u16,
}

impl Window {
    fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    fn contains(&self, day: Weekday, minute: u16) -> bool {
        let on = |d: Weekday| self.days[d.to_monday_zero_offset() as usize];
        if self.crosses_midnight() {
            (on(day) && minute >= self.start) || (on(day.previous()) && minute < self.end)
        } else {
            on(day) && self.start <= minute && minute < self.end
        }
    }

    fn opens_on(&self, day: Weekday) -> bool {
        self.days[day.to_monday_zero_offset() as usize]
    }
}

/// A date-time range in which no change may start.
#[derive(Debug, Clone, PartialEq)]
pub struct Freeze {
    pub name: Option<String>,
    pub from: Timestamp,
    pub until: Timestamp,
    /// The range as written, without the name.
    pub range: String,
}

impl Freeze {
    fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.until
    }
}

/// An environment's windows and freezes, ready to check instants against.
#[derive(Debug, Clone)]
pub struct WindowRules {
    zone: TimeZone,
    zone_name: String,
    /// The `window` setting as written; `None` means always open.
    spec: Option<String>,
    windows: Vec<Window>,
    freezes: Vec<Freeze>,
}

impl WindowRules {
    /// `window` as written (`None`: any time), the IANA name of the zone the
    /// windows and freezes are written in, and the freezes.
    pub fn parse<S: AsRef<str>>(
        window: Option<&str>,
        time_zone: &str,
        freezes: &[S],
    ) -> Result<WindowRules, String> {
        let zone_name = time_zone.trim();
        let zone = TimeZoneDatabase::bundled().get(zone_name).map_err(|_| {
            format!(
                "time zone {time_zone:?} is not known (write an IANA name like \"Europe/Berlin\", \"America/New_York\" or \"UTC\")"
            )
        })?;
        let spec = window.map(|w| w.trim().to_owned());
        let windows = match &spec {
            Some(spec) => parse_windows(spec)?,
            None => Vec::new(),
        };
        let freezes = freezes
            .iter()
            .map(|f| parse_freeze(f.as_ref(), &zone))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WindowRules {
            zone_name: zone.iana_name().unwrap_or(zone_name).to_owned(),
            zone,
            spec,
            windows,
            freezes,
        })
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    pub fn freezes(&self) -> &[Freeze] {
        &self.freezes
    }

    /// True when no rule can refuse a change.
    pub fn is_unrestricted(&self) -> bool {
        self.windows.is_empty() && self.freezes.is_empty()
    }

    fn in_window(&self, t: &Zoned) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let time = t.time();
        let minute = time.hour() as u16 * 60 + time.minute() as u16;
        self.windows.iter().any(|w| w.contains(t.weekday(), minute))
    }

    fn freeze_at(&self, t: Timestamp) -> Option<&Freeze> {
        self.freezes.iter().find(|f| f.contains(t))
    }

    fn is_open(&self, t: Timestamp) -> bool {
        self.freeze_at(t).is_none() && self.in_window(&t.to_zoned(self.zone.clone()))
    }

    /// The first instant after `now` at which a change may start: a window
    /// opening or a freeze ending, whichever is first and really open.
    fn next_open(&self, now: Timestamp) -> Option<Timestamp> {
        let mut candidates: Vec<Timestamp> = self
            .freezes
            .iter()
            .map(|f| f.until)
            .filter(|u| *u > now)
            .collect();
        let last_freeze_days = candidates
            .iter()
            .map(|u| u.duration_since(now).as_secs() / 86_400)
            .max()
            .unwrap_or(0);
        let days = (SEARCH_DAYS + last_freeze_days + 1).min(MAX_SEARCH_DAYS);
        let today = now.to_zoned(self.zone.clone()).date();
        // From yesterday: a window that crossed midnight may still matter.
        let mut date = today.yesterday().unwrap_or(today);
        for _ in 0..=days {
            for w in self.windows.iter().filter(|w| w.opens_on(date.weekday())) {
                if let Some(t) = at_minute(date, w.start, &self.zone)
                    && t > now
                {
                    candidates.push(t);
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        candidates.sort();
        candidates.into_iter().find(|t| self.is_open(*t))
    }

    fn local(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.zone.clone())
    }
}

impl fmt::Display for WindowRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spec {
            Some(spec) => write!(f, "deploys {spec} {}", self.zone_name)?,
            None => f.write_str("deploys at any time")?,
        }
        match self.freezes.len() {
            0 => Ok(()),
            1 => f.write_str(", 1 freeze"),
            n => write!(f, ", {n} freezes"),
        }
    }
}

/// Why a change may not start now, in an operator's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{}", closed_message(.window, .now, .next_open))]
    OutsideWindow {
        /// The `window` setting as written.
        window: String,
        /// Now, in the rules' zone.
        now: Zoned,
        /// `None` when nothing opens within the search horizon.
        next_open: Option<Zoned>,
    },
    #[error("{}", frozen_message(.freeze, .now, .next_open))]
    Frozen {
        freeze: Box<Freeze>,
        now: Zoned,
        /// Later than the freeze's end when the window is closed by then.
        next_open: Option<Zoned>,
    },
}

fn zone_of(t: &Zoned) -> &str {
    t.time_zone().iana_name().unwrap_or("UTC")
}

/// `Mon 09:00` within the next seven days, else with the date, so a reader never
/// has to guess which Monday.
fn when(t: &Zoned, now: &Zoned) -> String {
    let within_week = t.timestamp().duration_since(now.timestamp()).as_secs() < 7 * 86_400;
    if within_week {
        t.strftime("%a %H:%M").to_string()
    } else {
        t.strftime("%a %Y-%m-%d %H:%M").to_string()
    }
}

fn closed_message(window: &str, now: &Zoned, next_open: &Option<Zoned>) -> String {
    let mut s = format!(
        "outside the deploy window {window} {}: it is {}",
        zone_of(now),
        now.strftime("%a %H:%M")
    );
    match next_open {
        Some(t) => s.push_str(&format!("; next opens {}", when(t, now))),
        None => s.push_str(&format!(
            "; it does not open within the next {MAX_SEARCH_DAYS} days"
        )),
    }
    s
}

fn frozen_message(freeze: &Freeze, now: &Zoned, next_open: &Option<Zoned>) -> String {
    let until = freeze.until.to_zoned(now.time_zone().clone());
    let mut s = match &freeze.name {
        Some(name) => format!("inside the freeze {name:?}"),
        None => format!(
            "inside the freeze from {}",
            freeze
                .from
                .to_zoned(now.time_zone().clone())
                .strftime("%Y-%m-%d %H:%M")
        ),
    };
    s.push_str(&format!(
        " until {} {}",
        until.strftime("%Y-%m-%d %H:%M"),
        zone_of(now)
    ));
    match next_open {
        Some(t) if t.timestamp() != freeze.until => {
            s.push_str(&format!("; deploys reopen {}", when(t, now)))
        }
        Some(_) => {}
        None => s.push_str(&format!(
            "; deploys do not reopen in the next {MAX_SEARCH_DAYS} days"
        )),
    }
    s
}

/// Whether a change may start at `now`. A freeze is reported before a closed
/// window: it is the rule an operator is more likely to have forgotten.
pub fn check(rules: &WindowRules, now: SystemTime) -> Result<(), Refusal> {
    let now = timestamp(now);
    let local = rules.local(now);
    if let Some(freeze) = rules.freeze_at(now) {
        return Err(Refusal::Frozen {
            freeze: Box::new(freeze.clone()),
            next_open: rules.next_open(now).map(|t| rules.local(t)),
            now: local,
        });
    }
    if rules.in_window(&local) {
        return Ok(());
    }
    Err(Refusal::OutsideWindow {
        window: rules.spec.clone().unwrap_or_default(),
        next_open: rules.next_open(now).map(|t| rules.local(t)),
        now: local,
    })
}

/// A clock beyond jiff's range (years ±9999) is not a real clock; clamping
/// keeps the check total instead of inventing an error no operator can fix.
fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(if t >= UNIX_EPOCH {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

fn at_minute(date: Date, minute: u16, zone: &TimeZone) -> Option<Timestamp> {
    let dt = date.to_datetime(Time::midnight());
    let dt = dt
        .checked_add(Duration::from_secs(u64::from(minute) * 60))
        .ok()?;
    zone.to_ambiguous_zoned(dt)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

fn parse_windows(spec: &str) -> Result<Vec<Window>, String> {
    if spec.is_empty() {
        return Err(
            "deploy window is empty (write days and hours like \"Mon-Fri 09:00-16:00\", or leave window out to allow any time)"
                .to_owned(),
        );
    }
    spec.split(';')
        .map(|part| {
            parse_window(part.trim())
                .map_err(|why| format!("deploy window {:?}: {why}", part.trim()))
        })
        .collect()
}

fn parse_window(part: &str) -> Result<Window, String> {
    let tokens: Vec<&str> = part.split_whitespace().collect();
    let (days, range) = match tokens.as_slice() {
        [] => return Err("empty window (is there a stray ';'?)".to_owned()),
        [range] => ([true; 7], *range),
        [days, range] => (parse_days(days)?, *range),
        _ => {
            return Err(
                "expected days and a time range like \"Mon-Fri 09:00-16:00\" (list days with commas, no spaces: \"Mon,Wed\")"
                    .to_owned(),
            );
        }
    };
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| format!("{range:?} is not a time range like \"09:00-16:00\""))?;
    let start = parse_minute(start)?;
    let end = parse_minute(end)?;
    if start == MINUTES_PER_DAY {
        return Err("a window cannot start at 24:00 (write 00:00)".to_owned());
    }
    if start == end {
        return Err(format!(
            "{range:?} starts and ends at the same time (for the whole day write 00:00-24:00)"
        ));
    }
    Ok(Window { days, start, end })
}

fn parse_days(s: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in s.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (parse_day(from)?, parse_day(to)?);
                let mut d = from;
                loop {
                    days[d.to_monday_zero_offset() as usize] = true;
                    if d == to {
                        break;
                    }
                    d = d.next();
                }
            }
            None => days[parse_day(item)?.to_monday_zero_offset() as usize] = true,
        }
    }
    Ok(days)
}

fn parse_day(s: &str) -> Result<Weekday, String> {
    const DAYS: [(&str, &str, Weekday); 7] = [
        ("mon", "monday", Weekday::Monday),
        ("tue", "tuesday", Weekday::Tuesday),
        ("wed", "wednesday", Weekday::Wednesday),
        ("thu", "thursday", Weekday::Thursday),
        ("fri", "friday", Weekday::Friday),
        ("sat", "saturday", Weekday::Saturday),
        ("sun", "sunday", Weekday::Sunday),
    ];
    let lower = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .find(|(short, long, _)| lower == *short || lower == *long)
        .map(|(_, _, d)| *d)
        .ok_or_else(|| format!("{s:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

/// `HH:MM` (or `H:MM`) as minutes after midnight; `24:00` is 1440.
fn parse_minute(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time like \"09:00\" (HH:MM, 00:00 to 24:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let digits = |x: &str, max_len: usize| {
        !x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) => Ok(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

fn parse_freeze(s: &str, zone: &TimeZone) -> Result<Freeze, String> {
    let err = |why: String| format!("freeze {:?}: {why}", s.trim());
    let s = s.trim();
    // Dates start with a digit, so a prefix before ':' that does not is a name.
    let (name, range) = match s.split_once(':') {
        Some((name, rest)) if !name.trim_start().starts_with(|c: char| c.is_ascii_digit()) => {
            let name = name.trim().trim_matches('"').trim();
            if name.is_empty() {
                return Err(err("the name before ':' is empty".to_owned()));
            }
            (Some(name.to_owned()), rest.trim())
        }
        _ => (None, s),
    };
    let (from, until) = range.split_once("..").ok_or_else(|| {
        err("expected [NAME:] START .. END, like \"holidays: 2026-12-20 00:00 .. 2027-01-04 00:00\"".to_owned())
    })?;
    let from_dt = parse_date_time(from.trim()).map_err(&err)?;
    let until_dt = parse_date_time(until.trim()).map_err(&err)?;
    let local = |dt: DateTime| {
        zone.to_ambiguous_zoned(dt)
            .compatible()
            .map(|z| z.timestamp())
            .map_err(|e| err(format!("{dt} cannot be placed in the time zone: {e}")))
    };
    let (from, until) = (local(from_dt)?, local(until_dt)?);
    if until <= from {
        return Err(err(
            "it ends before it starts (END is exclusive and must come after START)".to_owned(),
        ));
    }
    Ok(Freeze {
        name,
        from,
        until,
        range: range.to_owned(),
    })
}

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM`.
fn parse_date_time(s: &str) -> Result<DateTime, String> {
    let bad = || format!("{s:?} is not a date like \"2026-12-20\" or \"2026-12-20 18:00\"");
    let (date, time) = match s.split_once(char::is_whitespace) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let num = |x: &str| x.parse::<i16>().map_err(|_| bad());
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let date =
        Date::new(y, m as i8, d as i8).map_err(|_| format!("{s:?}: there is no such date"))?;
    let minute = match time {
        None => 0,
        Some(t) => match parse_minute(t)? {
            MINUTES_PER_DAY => return Err(format!("{s:?}: write the next day's 00:00, not 24:00")),
            m => m,
        },
    };
    date.to_datetime(Time::midnight())
        .checked_add(Duration::from_secs(u64::from(minute) * 60))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(window: &str, zone: &str) -> WindowRules {
        WindowRules::parse(Some(window), zone, &[] as &[&str]).unwrap()
    }

    /// An instant given as wall-clock time in `zone`.
    fn at(zone: &str, s: &str) -> SystemTime {
        let dt: DateTime = s.parse().unwrap();
        let tz = TimeZoneDatabase::bundled().get(zone).unwrap();
        SystemTime::from(tz.to_ambiguous_zoned(dt).compatible().unwrap().timestamp())
    }

    fn utc(s: &str) -> SystemTime {
        SystemTime::from(s.parse::<Timestamp>().unwrap())
    }

    fn refusal(r: &WindowRules, now: SystemTime) -> String {
        check(r, now).unwrap_err().to_string()
    }

    #[test]
    fn weekday_hours_open_and_close() {
        let r = rules("Mon-Fri 09:00-16:00", "Europe/Berlin");
        // 2026-06-01 is a Monday.
        assert!(check(&r, at("Europe/Berlin", "2026-06-01T09:00")).is_ok());
        assert!(check(&r, at("Europe/Berlin", "2026-06-05T15:59:59")).is_ok());
        assert!(check(&r, at("Europe/Berlin", "2026-06-05T16:00")).is_err());
        assert!(check(&r, at("Europe/Berlin", "2026-06-01T08:59")).is_err());
        assert_eq!(
            refusal(&r, at("Europe/Berlin", "2026-06-06T10:12")),
            "outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Sat 10:12; next opens Mon 09:00"
        );
        assert_eq!(
            refusal(&r, at("Europe/Berlin", "2026-06-02T17:30")),
            "outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Tue 17:30; next opens Wed 09:00"
        );
    }

    #[test]
    fn refusal_carries_the_instants() {
        let r = rules("Mon-Fri 09:00-16:00", "Europe/Berlin");
        let Err(Refusal::OutsideWindow {
            now,
            next_open,
            window,
        }) = check(&r, at("Europe/Berlin", "2026-06-06T10:12"))
        else {
            panic!("expected a closed window");
        };
        assert_eq!(window, "Mon-Fri 09:00-16:00");
        assert_eq!(now.weekday(), Weekday::Saturday);
        let next = next_open.unwrap();
        assert_eq!(
            next.timestamp(),
            "2026-06-08T07:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn day_lists_ranges_and_several_windows() {
        let r = rules("Mon,Wed 10:00-12:00; Sat-Sun 08:00-09:00", "UTC");
        assert!(check(&r, utc("2026-06-01T10:30:00Z")).is_ok()); // Mon
        assert!(check(&r, utc("2026-06-02T10:30:00Z")).is_err()); // Tue
        assert!(check(&r, utc("2026-06-03T11:59:00Z")).is_ok()); // Wed
        assert!(check(&r, utc("2026-06-06T08:30:00Z")).is_ok()); // Sat
        assert!(check(&r, utc("2026-06-07T08:30:00Z")).is_ok()); // Sun
        assert!(check(&r, utc("2026-06-07T09:00:00Z")).is_err());
        assert_eq!(
            refusal(&r, utc("2026-06-03T12:00:00Z")),
            "outside the deploy window Mon,Wed 10:00-12:00; Sat-Sun 08:00-09:00 UTC: it is Wed 12:00; next opens Sat 08:00"
        );
        // Wrapping range and mixed list, in any case, with full names.
        let r = rules("fri-MON,Wednesday 00:00-24:00", "UTC");
        for (day, open) in [
            ("2026-06-01", true),
            ("2026-06-02", false),
            ("2026-06-03", true),
            ("2026-06-04", false),
            ("2026-06-05", true),
            ("2026-06-06", true),
            ("2026-06-07", true),
        ] {
            let t = utc(&format!("{day}T23:59:00Z"));
            assert_eq!(check(&r, t).is_ok(), open, "{day}");
        }
        // No days: every day.
        let r = rules("10:00-11:00", "UTC");
        assert!(check(&r, utc("2026-06-07T10:00:00Z")).is_ok());
        assert!(check(&r, utc("2026-06-07T11:00:00Z")).is_err());
    }

    #[test]
    fn a_range_across_midnight_belongs_to_the_day_it_starts() {
        let r = rules("Fri 22:00-02:00", "UTC");
        // 2026-06-05 is a Friday.
        assert!(check(&r, utc("2026-06-05T21:59:00Z")).is_err());
        assert!(check(&r, utc("2026-06-05T22:00:00Z")).is_ok());
        assert!(check(&r, utc("2026-06-06T01:59:00Z")).is_ok()); // Sat early
        assert!(check(&r, utc("2026-06-06T02:00:00Z")).is_err());
        assert!(check(&r, utc("2026-06-06T23:00:00Z")).is_err()); // Sat night
        assert!(check(&r, utc("2026-06-05T01:00:00Z")).is_err()); // Fri early: Thu's
        assert_eq!(
            refusal(&r, utc("2026-06-06T02:00:00Z")),
            "outside the deploy window Fri 22:00-02:00 UTC: it is Sat 02:00; next opens Fri 22:00"
        );
        // Ending at midnight is the same as 24:00.
        let r = rules("Sun 22:00-00:00", "UTC");
        assert!(check(&r, utc("2026-06-07T23:59:00Z")).is_ok());
        assert!(check(&r, utc("2026-06-08T00:00:00Z")).is_err());
    }

    #[test]
    fn windows_follow_wall_clock_across_dst() {
        let r = rules("Mon-Fri 09:00-16:00", "Europe/Berlin");
        // Europe/Berlin goes from CET (+01) to CEST (+02) on Sun 2026-03-29.
        // Fri 2026-03-27, CET: 09:00 local is 08:00 UTC.
        assert!(check(&r, utc("2026-03-27T07:59:00Z")).is_err());
        assert!(check(&r, utc("2026-03-27T08:00:00Z")).is_ok());
        assert!(check(&r, utc("2026-03-27T14:59:00Z")).is_ok());
        assert!(check(&r, utc("2026-03-27T15:00:00Z")).is_err());
        // Mon 2026-03-30, CEST: 09:00 local is 07:00 UTC.
        assert!(check(&r, utc("2026-03-30T06:59:00Z")).is_err());
        assert!(check(&r, utc("2026-03-30T07:00:00Z")).is_ok());
        assert!(check(&r, utc("2026-03-30T13:59:00Z")).is_ok());
        assert!(check(&r, utc("2026-03-30T14:00:00Z")).is_err());
        // Closed over the change; the next opening is in summer time.
        let Err(Refusal::OutsideWindow { now, next_open, .. }) =
            check(&r, utc("2026-03-28T12:00:00Z"))
        else {
            panic!("expected a closed window");
        };
        assert_eq!(now.strftime("%a %H:%M %z").to_string(), "Sat 13:00 +0100");
        let next = next_open.unwrap();
        assert_eq!(
            next.timestamp(),
            "2026-03-30T07:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(next.strftime("%a %H:%M %z").to_string(), "Mon 09:00 +0200");
        // Back to CET on Sun 2026-10-25.
        assert!(check(&r, utc("2026-10-26T07:59:00Z")).is_err());
        assert!(check(&r, utc("2026-10-26T08:00:00Z")).is_ok());
    }

    #[test]
    fn a_night_window_over_the_dst_change() {
        // Sat 22:00 to Sun 04:00 spans the fall-back hour: seven real hours.
        let r = rules("Sat 22:00-04:00", "Europe/Berlin");
        assert!(check(&r, utc("2026-10-24T19:59:00Z")).is_err());
        assert!(check(&r, utc("2026-10-24T20:00:00Z")).is_ok()); // 22:00 CEST
        assert!(check(&r, utc("2026-10-25T00:30:00Z")).is_ok()); // 02:30 CEST
        assert!(check(&r, utc("2026-10-25T01:30:00Z")).is_ok()); // 02:30 CET
        assert!(check(&r, utc("2026-10-25T02:59:00Z")).is_ok()); // 03:59 CET
        assert!(check(&r, utc("2026-10-25T03:00:00Z")).is_err()); // 04:00 CET
        // A window starting in the spring-forward gap opens when the clock
        // jumps: 02:00 does not exist on 2026-03-29, 03:00 CEST does.
        let r = rules("Sun 02:00-04:00", "Europe/Berlin");
        let Err(Refusal::OutsideWindow { next_open, .. }) = check(&r, utc("2026-03-28T12:00:00Z"))
        else {
            panic!("expected a closed window");
        };
        assert_eq!(
            next_open.unwrap().timestamp(),
            "2026-03-29T01:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn freezes_refuse_and_say_until_when() {
        let r = WindowRules::parse(
            Some("Mon-Fri 09:00-16:00"),
            "Europe/Berlin",
            &["holidays: 2026-12-20 00:00 .. 2027-01-04 00:00"],
        )
        .unwrap();
        assert_eq!(
            refusal(&r, at("Europe/Berlin", "2026-12-22T10:00")),
            "inside the freeze \"holidays\" until 2027-01-04 00:00 Europe/Berlin; deploys reopen Mon 2027-01-04 09:00"
        );
        assert!(check(&r, at("Europe/Berlin", "2026-12-18T10:00")).is_ok());
        assert!(check(&r, at("Europe/Berlin", "2027-01-04T09:00")).is_ok());
        // The freeze is in Berlin time: 2026-12-19 23:00 UTC is already inside.
        assert!(matches!(
            check(&r, utc("2026-12-19T23:00:00Z")),
            Err(Refusal::Frozen { .. })
        ));
        // Outside a window but before a freeze: the next opening skips it.
        let e = refusal(&r, at("Europe/Berlin", "2026-12-19T10:00"));
        assert_eq!(
            e,
            "outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Sat 10:00; next opens Mon 2027-01-04 09:00"
        );
    }

    #[test]
    fn freezes_without_windows_and_without_names() {
        let r = WindowRules::parse(
            None,
            "UTC",
            &[
                "2026-11-27 18:00 .. 2026-11-30 08:00",
                "launch: 2026-11-30 .. 2026-11-30 12:00",
            ],
        )
        .unwrap();
        assert!(check(&r, utc("2026-11-27T17:59:00Z")).is_ok());
        // Back-to-back freezes: it opens when the last one ends.
        let e = refusal(&r, utc("2026-11-28T00:00:00Z"));
        assert_eq!(
            e,
            "inside the freeze from 2026-11-27 18:00 until 2026-11-30 08:00 UTC; deploys reopen Mon 12:00"
        );
        assert_eq!(
            refusal(&r, utc("2026-11-30T09:00:00Z")),
            "inside the freeze \"launch\" until 2026-11-30 12:00 UTC"
        );
        assert!(check(&r, utc("2026-11-30T12:00:00Z")).is_ok());
    }

    #[test]
    fn unrestricted_rules_always_allow() {
        let r = WindowRules::parse(None, "UTC", &[] as &[&str]).unwrap();
        assert!(r.is_unrestricted());
        assert!(check(&r, utc("2026-06-06T03:00:00Z")).is_ok());
        assert_eq!(r.to_string(), "deploys at any time");
        let r = WindowRules::parse(
            Some("Mon 09:00-10:00"),
            "europe/berlin",
            &["a: 2026-01-01 .. 2026-01-02"],
        )
        .unwrap();
        assert_eq!(r.zone_name(), "Europe/Berlin");
        assert_eq!(
            r.to_string(),
            "deploys Mon 09:00-10:00 Europe/Berlin, 1 freeze"
        );
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let err = |w: &str| WindowRules::parse(Some(w), "UTC", &[] as &[&str]).unwrap_err();
        let e = err("Mon-Fry 09:00-16:00");
        assert_eq!(
            e,
            "deploy window \"Mon-Fry 09:00-16:00\": \"Fry\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
        );
        assert!(err("Mon-Fri 9-16").contains("\"9\" is not a time like \"09:00\""));
        assert!(err("Mon-Fri 09:00").contains("not a time range"));
        assert!(err("Mon-Fri 09:00-25:00").contains("\"25:00\" is not a time"));
        assert!(err("Mon-Fri 09:60-10:00").contains("\"09:60\""));
        assert!(err("Mon-Fri 24:00-10:00").contains("cannot start at 24:00"));
        assert!(err("Mon-Fri 09:00-09:00").contains("00:00-24:00"));
        assert!(err("Mon, Wed 09:00-10:00").contains("no spaces"));
        assert!(err("Mon 09:00-10:00;").contains("stray ';'"));
        assert!(err("").contains("empty"));
        let e = err("Mon 09:00-10:00; Tue 9:00-1000");
        assert!(
            e.starts_with("deploy window \"Tue 9:00-1000\": \"1000\""),
            "{e}"
        );
        // One-digit hours are fine.
        assert!(WindowRules::parse(Some("Mon 9:00-17:30"), "UTC", &[] as &[&str]).is_ok());
    }

    #[test]
    fn bad_zones_and_freezes_say_what_is_wrong() {
        let e = WindowRules::parse(Some("Mon 09:00-10:00"), "Europe/Berln", &[] as &[&str])
            .unwrap_err();
        assert!(
            e.starts_with("time zone \"Europe/Berln\" is not known"),
            "{e}"
        );
        let err = |f: &str| WindowRules::parse(None, "UTC", &[f]).unwrap_err();
        assert!(err("2026-12-20").contains("expected [NAME:] START .. END"));
        assert!(err("x: 2026-12-20 .. 2026-12-01").contains("ends before it starts"));
        assert!(err("2026-12-20 .. 2026-12-20").contains("ends before it starts"));
        assert!(err("2026-02-30 .. 2026-03-02").contains("no such date"));
        assert!(err("20-12-2026 .. 2027-01-04").contains("is not a date like"));
        assert!(err("2026-12-20 25:00 .. 2027-01-04").contains("\"25:00\" is not a time"));
        assert!(err("2026-12-20 .. 2026-12-21 24:00").contains("not 24:00"));
        assert!(err(": 2026-12-20 .. 2027-01-04").contains("name before ':' is empty"));
        let e = err("holidays 2026-12-20 .. 2027-01-04");
        assert!(
            e.starts_with("freeze \"holidays 2026-12-20 .. 2027-01-04\": "),
            "{e}"
        );
    }

    #[test]
    fn a_freeze_beyond_the_search_says_so() {
        let r = WindowRules::parse(
            Some("Mon-Fri 09:00-16:00"),
            "UTC",
            &["moratorium: 2026-01-01 .. 2030-01-01"],
        )
        .unwrap();
        assert_eq!(
            refusal(&r, utc("2026-06-01T10:00:00Z")),
            "inside the freeze \"moratorium\" until 2030-01-01 00:00 UTC; deploys do not reopen in the next 400 days"
        );
    }

    #[test]
    fn freeze_bounds_in_dst_gaps_move_forward() {
        // 02:30 does not exist in Berlin on 2026-03-29: the freeze starts at 03:30 CEST.
        let r = WindowRules::parse(
            None,
            "Europe/Berlin",
            &["2026-03-29 02:30 .. 2026-03-29 05:00"],
        )
        .unwrap();
        let f = &r.freezes()[0];
        assert_eq!(f.from, "2026-03-29T01:30:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(
            f.until,
            "2026-03-29T03:00:00Z".parse::<Timestamp>().unwrap()
        );
    }
}
