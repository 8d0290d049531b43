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
mod tests;
