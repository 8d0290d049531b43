//! What the canary and the monitor read off a page: a counter's sum, and a
//! latency (a gauge, a summary's quantile, or a histogram's buckets). Every
//! reading that cannot be trusted says why instead of giving a number: a
//! selector that matches nothing where the app should have series, or a line
//! the parser could not read that may hold the metric.

use std::fmt;

use super::histogram::Buckets;
use super::selector::{Selector, SelectorError};
use super::text::{Kind, Page, Sample, Unreadable};

/// Endings a sample adds to its family's name.
const SUFFIXES: [&str; 8] = [
    "_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum",
];

fn base(name: &str) -> &str {
    SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

fn strip_total(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

/// When no series matches a counter selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// No data: the request counter, which every app with traffic has.
    Missing,
    /// Zero, provided the metric is on the page: an error counter's labelled
    /// series appears only once it first moves (`code="500"` after the first
    /// 500), so a healthy app has none.
    Zero,
}

/// Lines that could not be read, in a sentence: `3 lines could not be read
/// (line 12: …)`.
pub fn unreadable_note(page: &Page) -> Option<String> {
    let first = page.unreadable.first()?;
    let n = page.unreadable.len();
    Some(format!(
        "{n} line{} could not be read (line {}: {})",
        if n == 1 { "" } else { "s" },
        first.line,
        first.why
    ))
}

/// Unreadable lines that may be series of `name`: those about the same
/// family, and those whose metric could not even be made out.
fn may_hold(page: &Page, name: &str) -> Option<String> {
    let want = base(name);
    let hits: Vec<&Unreadable> = page
        .unreadable
        .iter()
        .filter(|u| u.name.as_deref().is_none_or(|n| base(n) == want))
        .collect();
    let first = hits.first()?;
    Some(format!(
        "{} line{} of the page could not be read and may hold {name} (line {}: {})",
        hits.len(),
        if hits.len() == 1 { "" } else { "s" },
        first.line,
        first.why
    ))
}

/// Whether sample `s` is a series of counter `want`: the same name, or the
/// same counter with or without `_total` (Prometheus text pages name a
/// counter `foo_total`, OpenMetrics names its family `foo`, older apps `foo`).
fn is_counter_series(page: &Page, s: &Sample, want: &str) -> bool {
    s.name == want
        || page.kind(s) == Kind::Counter
            && !s.name.ends_with("_created")
            && strip_total(&s.name) == strip_total(want)
}

/// Why no series matched: what the page has under that name.
fn nothing_matched(sel: &Selector, named: &[&Sample]) -> String {
    let mut shown: Vec<String> = Vec::new();
    for s in named.iter().take(50) {
        let labels: Vec<String> = s
            .labels
            .iter()
            .filter(|(k, _)| sel.matcher_on(k).is_some())
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        let text = format!("{{{}}}", labels.join(", "));
        if !shown.contains(&text) && shown.len() < 4 {
            shown.push(text);
        }
    }
    format!(
        "no series of {} matches {} (the page has {} series of it{})",
        sel.name(),
        sel.raw(),
        named.len(),
        if shown.is_empty() {
            String::new()
        } else {
            format!(", such as {}", shown.join(" "))
        }
    )
}

/// The sum of the counter series `sel` selects.
pub fn counter(page: &Page, sel: &Selector, absent: Absent) -> Result<f64, String> {
    if let Some(why) = may_hold(page, sel.name()) {
        return Err(why);
    }
    let named: Vec<&Sample> = page
        .samples
        .iter()
        .filter(|s| is_counter_series(page, s, sel.name()))
        .collect();
    if let Some(s) = named
        .iter()
        .find(|s| page.kind(s) == Kind::Summary && s.label("quantile").is_some())
    {
        return Err(format!(
            "{} is a summary, not a counter: its requests are counted by {}_count",
            s.name, s.name
        ));
    }
    if let Some(s) = named
        .iter()
        .find(|s| s.name.ends_with("_bucket") && s.label("le").is_some())
    {
        return Err(format!(
            "{} holds histogram buckets, not a counter: its requests are counted by {}_count",
            s.name,
            base(&s.name)
        ));
    }
    let selected: Vec<&&Sample> = named
        .iter()
        .filter(|s| sel.matches_labels(&s.labels))
        .collect();
    let whole = page.family(sel.name()).map(|f| f.kind);
    if named.is_empty() && matches!(whole, Some(Kind::Histogram | Kind::Summary)) {
        return Err(not_on_page(page, sel.name()));
    }
    if selected.is_empty() {
        let on_page = !named.is_empty()
            || page.family(sel.name()).is_some()
            || page.family(strip_total(sel.name())).is_some();
        return match (absent, on_page) {
            (Absent::Zero, true) => Ok(0.0),
            (_, false) => Err(not_on_page(page, sel.name())),
            (Absent::Missing, true) if named.is_empty() => Err(format!(
                "{} is on the page but has no series yet",
                sel.name()
            )),
            (Absent::Missing, true) => Err(nothing_matched(sel, &named)),
        };
    }
    let mut sum = 0.0;
    for s in selected {
        if !s.value.is_finite() {
            return Err(format!("{} on line {} is {}", s.name, s.line, s.value));
        }
        sum += s.value;
    }
    Ok(sum)
}

fn not_on_page(page: &Page, name: &str) -> String {
    match page.family(base(name)).or_else(|| page.family(name)) {
        Some(f) if f.kind == Kind::Histogram || f.kind == Kind::Summary => format!(
            "the page has no series {name}: {} is a {}, whose requests are counted by {}_count",
            f.name,
            f.kind.name(),
            f.name
        ),
        _ => format!("the page has no metric named {name}"),
    }
}

/// Where `metrics.latency` reads the app's latency from.
#[derive(Debug, Clone)]
pub enum LatencyQuery {
    /// A gauge, or a summary's quantile: `x{quantile="0.99"}`.
    Series(Selector),
    /// `histogram_quantile(0.99, x_bucket{…})`, over the analysis window.
    Quantile {
        q: f64,
        buckets: Selector,
        written: String,
    },
}

impl PartialEq for LatencyQuery {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl Eq for LatencyQuery {}

impl fmt::Display for LatencyQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw())
    }
}

impl LatencyQuery {
    pub fn parse(s: &str) -> Result<LatencyQuery, SelectorError> {
        let written = s.trim();
        let Some(args) = written.strip_prefix("histogram_quantile") else {
            return Selector::parse(written).map(LatencyQuery::Series);
        };
        let err = |why: &str| SelectorError {
            selector: written.to_owned(),
            why: why.to_owned(),
        };
        let args = args
            .trim_start()
            .strip_prefix('(')
            .and_then(|a| a.trim_end().strip_suffix(')'))
            .ok_or_else(|| err("write histogram_quantile(0.99, name{label=\"value\"})"))?;
        let (q, series) = args
            .split_once(',')
            .ok_or_else(|| err("histogram_quantile takes a quantile and a histogram"))?;
        let q: f64 = q
            .trim()
            .parse()
            .ok()
            .filter(|q| (0.0..=1.0).contains(q))
            .ok_or_else(|| err("the quantile must be a number from 0 to 1, as in 0.99"))?;
        let series = series.trim();
        if ["rate", "irate", "increase", "sum", "avg", "max"]
            .iter()
            .any(|f| {
                series
                    .strip_prefix(f)
                    .is_some_and(|r| r.trim_start().starts_with(['(', ' ']))
            })
        {
            return Err(err(
                "name the histogram itself, as in histogram_quantile(0.99, x_bucket{…}): shipdeck takes the buckets' increase over the canary's analysis window and adds its series up by le",
            ));
        }
        let sel = Selector::parse(series).map_err(|e| err(&e.why))?;
        if sel.matcher_on("le").is_some() {
            return Err(err(
                "the buckets are chosen by histogram_quantile: leave le out",
            ));
        }
        let name = if sel.name().ends_with("_bucket") {
            sel.name().to_owned()
        } else {
            format!("{}_bucket", sel.name())
        };
        Ok(LatencyQuery::Quantile {
            q,
            buckets: sel.renamed(&name),
            written: written.to_owned(),
        })
    }

    pub fn raw(&self) -> &str {
        match self {
            LatencyQuery::Series(s) => s.raw(),
            LatencyQuery::Quantile { written, .. } => written,
        }
    }
}

/// One latency reading.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyRead {
    /// A latency the app computed itself, in seconds.
    Seconds(f64),
    /// The histogram's buckets now; the latency is their growth's quantile.
    Buckets(Buckets),
}

pub fn latency(page: &Page, query: &LatencyQuery) -> Result<LatencyRead, String> {
    match query {
        LatencyQuery::Series(sel) => series_latency(page, sel).map(LatencyRead::Seconds),
        LatencyQuery::Quantile { buckets, .. } => {
            histogram(page, buckets).map(LatencyRead::Buckets)
        }
    }
}

/// A gauge or a summary's quantile, in seconds. Over several series (one per
/// handler, say) it is the worst, never their sum: latencies do not add. A
/// quantile that has observed nothing is NaN (client libraries) or 0 (some
/// apps); neither is a reading: no request is served in no time.
fn series_latency(page: &Page, sel: &Selector) -> Result<f64, String> {
    if let Some(why) = may_hold(page, sel.name()) {
        return Err(why);
    }
    let name = sel.name();
    if let Some(f) = page.family(name) {
        match f.kind {
            Kind::Histogram | Kind::GaugeHistogram => {
                return Err(format!(
                    "{name} is a histogram: write histogram_quantile(0.99, {})",
                    sel.raw()
                ));
            }
            Kind::Counter => {
                return Err(format!(
                    "{name} is a counter, not a latency: point metrics.latency at a gauge, a summary quantile or histogram_quantile(…)"
                ));
            }
            Kind::Summary if sel.matcher_on("quantile").is_none() => {
                return Err(format!(
                    "{name} is a summary: name the quantile to judge, as in {name}{{quantile=\"0.99\"}}"
                ));
            }
            _ => {}
        }
    }
    let named: Vec<&Sample> = page.samples.iter().filter(|s| s.name == name).collect();
    if named.is_empty() {
        return Err(
            match page.family(&format!("{name}_bucket")).or(page.family(name)) {
                Some(_) => format!("{name} is on the page but has no series yet"),
                None if page
                    .samples
                    .iter()
                    .any(|s| s.name == format!("{name}_bucket")) =>
                {
                    format!(
                        "{name} is a histogram: write histogram_quantile(0.99, {})",
                        sel.raw()
                    )
                }
                None => format!("the page has no metric named {name}"),
            },
        );
    }
    let selected: Vec<&&Sample> = named
        .iter()
        .filter(|s| sel.matches_labels(&s.labels))
        .collect();
    if selected.is_empty() {
        return Err(nothing_matched(sel, &named));
    }
    selected
        .iter()
        .map(|s| s.value)
        .filter(|v| v.is_finite() && *v > 0.0)
        .reduce(f64::max)
        .ok_or_else(|| {
            format!(
                "{} has no latency yet (no selected series has observed a request: NaN or 0)",
                sel.raw()
            )
        })
}

/// The selected histogram's buckets, by series.
fn histogram(page: &Page, sel: &Selector) -> Result<Buckets, String> {
    let family = base(sel.name());
    if let Some(why) = may_hold(page, sel.name()) {
        return Err(why);
    }
    let named: Vec<&Sample> = page
        .samples
        .iter()
        .filter(|s| s.name == sel.name())
        .collect();
    if named.is_empty() {
        return Err(match page.family(family) {
            Some(f) if f.kind == Kind::Summary => format!(
                "{family} is a summary, not a histogram: write {family}{{quantile=\"0.99\"}}"
            ),
            Some(f) if f.kind != Kind::Histogram && f.kind != Kind::GaugeHistogram => {
                format!("{family} is a {}, not a histogram", f.kind.name())
            }
            Some(_) => format!("{family} is on the page but has no series yet"),
            None => format!("the page has no histogram named {family}"),
        });
    }
    let mut buckets = Buckets::default();
    for s in named.iter().filter(|s| sel.matches_labels(&s.labels)) {
        let le = s
            .label("le")
            .ok_or_else(|| format!("{} on line {} has no le label", s.name, s.line))?;
        let le: f64 = match le.trim() {
            "+Inf" | "Inf" => f64::INFINITY,
            v => v
                .parse()
                .map_err(|_| format!("{} on line {}: le={le:?} is not a number", s.name, s.line))?,
        };
        if !s.value.is_finite() {
            return Err(format!("{} on line {} is {}", s.name, s.line, s.value));
        }
        let mut others: Vec<String> = s
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        others.sort();
        buckets.insert(others.join(","), le, s.value);
    }
    if buckets.series.is_empty() {
        return Err(nothing_matched(sel, &named));
    }
    Ok(buckets)
}
