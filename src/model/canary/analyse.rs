//! Judging one analysis window: each check on every canary host, a breach
//! anywhere first, then missing data, then a pass.

use super::judge::*;

enum Check {
    Off,
    Within(String),
    NoData(String),
    Breach(Verdict),
}

/// Judges one figure on every canary host: the worst host among those with
/// data breaches if it is past `limit`, whatever other hosts lack (a host at
/// 50% errors is rolled back even when its neighbour's scrape failed); else
/// any host without data makes the check inconclusive; else it is within.
fn judge<'a>(
    canary: &'a GroupWindow,
    m: Metric,
    limit: f64,
    figure: impl Fn(&HostWindow) -> Result<f64, String>,
    within: impl FnOnce(f64) -> String,
    detail: impl FnOnce(&'a HostWindow) -> String,
) -> Check {
    let mut missing = Vec::new();
    let mut worst: Option<(&HostWindow, f64)> = None;
    for h in &canary.hosts {
        match figure(h) {
            // A figure that is not a number is no figure.
            Ok(v) if v.is_nan() => {
                missing.push(format!("{} of {} is not a number", m.name(), h.host))
            }
            Ok(v) => {
                if worst.is_none_or(|(_, w)| m.exceeds(v, w)) {
                    worst = Some((h, v));
                }
            }
            Err(why) => missing.push(why),
        }
    }
    match worst {
        Some((host, value)) if m.exceeds(value, limit) => Check::Breach(Verdict::Breach {
            metric: m,
            value,
            threshold: limit,
            host: Some(host.host.clone()),
            detail: detail(host),
        }),
        _ if !missing.is_empty() => Check::NoData(missing.join("; ")),
        Some((_, value)) => Check::Within(within(value)),
        None => Check::NoData("no canary host to judge".to_owned()),
    }
}

/// `"baseline 2%"`, or nothing when the baseline has no such figure.
fn baseline_note(m: Metric, base: Option<f64>) -> String {
    base.map_or_else(String::new, |b| format!("baseline {}", m.format(b)))
}

fn joined(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

fn requests_note(h: &HostWindow) -> String {
    h.requests.map_or_else(String::new, |r| {
        format!("{:.0} errors in {:.0} requests", r.errors, r.total)
    })
}

fn check_health(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(min) = t.min_health_pass_rate else {
        return Check::Off;
    };
    let m = Metric::HealthPassRate;
    judge(
        canary,
        m,
        min,
        HostWindow::pass_rate,
        |v| format!("health {} (min {})", m.format(v), m.format(min)),
        |host| {
            let failed: Vec<&Probe> = host.probes.iter().filter(|p| !p.healthy).collect();
            let mut detail = format!("{} of {} probes failed", failed.len(), host.probes.len());
            if let Some(last) = failed.last().filter(|p| !p.detail.is_empty()) {
                detail.push_str(&format!(" (last: {})", last.detail));
            }
            joined(&[detail, baseline_note(m, baseline.pass_rate())])
        },
    )
}

fn check_error_rate(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(max) = t.max_error_rate else {
        return Check::Off;
    };
    let m = Metric::ErrorRate;
    judge(
        canary,
        m,
        max,
        |h| h.error_ratio(t.min_requests),
        |v| format!("error rate {} (max {})", m.format(v), m.format(max)),
        |host| {
            joined(&[
                requests_note(host),
                baseline_note(m, baseline.error_ratio(t.min_requests)),
            ])
        },
    )
}

/// Where latency comes from: the app's own quantile when the config names
/// one (or, with nothing expected, when a canary host reports one), else the
/// health probes. Never both, and never the probes as a stand-in for a
/// configured quantile that did not come in.
#[derive(Clone, Copy)]
enum LatencySource {
    App,
    Probes,
}

fn latency_source(canary: &GroupWindow, t: &Thresholds) -> LatencySource {
    if t.expects.app_latency || canary.has_app_latency() {
        LatencySource::App
    } else {
        LatencySource::Probes
    }
}

fn check_latency(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(max) = t.max_latency_ms else {
        return Check::Off;
    };
    let max = max as f64;
    match latency_source(canary, t) {
        LatencySource::App => {
            let m = Metric::AppLatency;
            judge(
                canary,
                m,
                max,
                HostWindow::app_latency,
                |v| format!("latency {} (max {})", m.format(v), m.format(max)),
                |_| baseline_note(m, baseline.mean_app_latency()),
            )
        }
        LatencySource::Probes => {
            let m = Metric::Latency;
            judge(
                canary,
                m,
                max,
                HostWindow::probe_latency,
                |v| format!("median latency {} (max {})", m.format(v), m.format(max)),
                |_| baseline_note(m, baseline.probe_median()),
            )
        }
    }
}

fn check_error_lines(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(max) = t.max_error_lines_per_min else {
        return Check::Off;
    };
    let m = Metric::ErrorLines;
    judge(
        canary,
        m,
        max,
        HostWindow::error_lines,
        |v| format!("error lines {} (max {})", m.format(v), m.format(max)),
        |_| baseline_note(m, baseline.mean_error_lines()),
    )
}

/// Error ratio, error lines and latency, each against the baseline. A
/// comparison runs when the config promises that kind of data (see
/// [`Expects`]) or some host has it, so a fleet without `[metrics]` is judged
/// on its logs and latency alone, and one whose metrics went silent is not
/// judged as if it had none.
fn check_relative(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Vec<Check> {
    let Some(factor) = t.max_relative else {
        return vec![Check::Off];
    };
    let mut checks = Vec::new();
    if t.expects.requests || canary.has_requests() || baseline.has_requests() {
        checks.push(relative_error_rate(canary, baseline, t, factor));
    }
    if t.expects.error_lines || canary.has_error_lines() || baseline.has_error_lines() {
        checks.push(relative_error_lines(canary, baseline, t, factor));
    }
    checks.extend(relative_latency(canary, baseline, t, factor));
    if checks.is_empty() {
        checks.push(Check::NoData(
            "max_relative is set but no host reported request counters, error log lines or latency"
                .into(),
        ));
    }
    checks
}

fn relative_error_rate(
    canary: &GroupWindow,
    baseline: &GroupWindow,
    t: &Thresholds,
    factor: f64,
) -> Check {
    let m = Metric::RelativeErrorRate;
    let floor = t.relative_floor_error_rate;
    match baseline.error_ratio(t.min_requests) {
        None => Check::NoData(match baseline.requests() {
            Some(r) if !baseline.hosts.is_empty() => format!(
                "the baseline served {:.0} requests in the window, fewer than the {} an error rate needs (min_requests), so there is no error rate to compare with",
                r.total, t.min_requests
            ),
            _ => baseline.gap("error rate", |h| h.error_ratio(t.min_requests).err()),
        }),
        Some(base) => relative(
            canary,
            m,
            |h| h.error_ratio(t.min_requests),
            base,
            (base * factor).max(floor),
            format!(
                "{factor}× the baseline, and never below {}",
                m.format(floor)
            ),
            requests_note,
        ),
    }
}

fn relative_error_lines(
    canary: &GroupWindow,
    baseline: &GroupWindow,
    t: &Thresholds,
    factor: f64,
) -> Check {
    let m = Metric::RelativeErrorLines;
    let floor = t.relative_floor_lines_per_min;
    match baseline.mean_error_lines() {
        None => Check::NoData(baseline.gap("error log lines", |h| h.error_lines().err())),
        Some(base) => relative(
            canary,
            m,
            HostWindow::error_lines,
            base,
            (base * factor).max(floor),
            format!(
                "{factor}× the baseline, and never below {}",
                m.format(floor)
            ),
            |_| String::new(),
        ),
    }
}

/// How a comparison reads one host's figure.
type Figure = fn(&HostWindow) -> Result<f64, String>;

/// The app's own latency when it reports one, else the probes'; without
/// probes anywhere (no [health]) there is no latency to compare.
fn relative_latency(
    canary: &GroupWindow,
    baseline: &GroupWindow,
    t: &Thresholds,
    factor: f64,
) -> Option<Check> {
    let margin = t.relative_latency_margin.as_secs_f64() * 1000.0;
    let rule = |m: Metric| {
        format!(
            "{factor}× the baseline, and never below the baseline + {}",
            m.format(margin)
        )
    };
    let (m, base, figure): (Metric, Result<f64, String>, Figure) = match latency_source(canary, t) {
        LatencySource::App => (
            Metric::RelativeAppLatency,
            baseline.mean_app_latency().ok_or_else(|| {
                baseline.gap("latency (metrics.latency)", |h| h.app_latency().err())
            }),
            HostWindow::app_latency,
        ),
        LatencySource::Probes if canary.has_answered_probes() || baseline.has_answered_probes() => {
            (
                Metric::RelativeLatency,
                baseline
                    .probe_median()
                    .ok_or_else(|| baseline.gap("probe latency", |h| h.probe_latency().err())),
                HostWindow::probe_latency,
            )
        }
        LatencySource::Probes => return None,
    };
    Some(match base {
        Err(gap) => Check::NoData(gap),
        Ok(base) => relative(
            canary,
            m,
            figure,
            base,
            (base * factor).max(base + margin),
            rule(m),
            |_| String::new(),
        ),
    })
}

/// One comparison with the baseline; `limit` is the effective one (the
/// factor or the floor, whichever is higher), `rule` says how it was made.
fn relative<'a>(
    canary: &'a GroupWindow,
    m: Metric,
    figure: impl Fn(&HostWindow) -> Result<f64, String>,
    base: f64,
    limit: f64,
    rule: String,
    host_note: impl FnOnce(&'a HostWindow) -> String,
) -> Check {
    judge(
        canary,
        m,
        limit,
        figure,
        |v| {
            format!(
                "{} {} (baseline {}, max {})",
                m.name(),
                m.format(v),
                m.format(base),
                m.format(limit)
            )
        },
        |host| {
            joined(&[
                host_note(host),
                format!("baseline {}", m.format(base)),
                format!("the limit is {rule}"),
            ])
        },
    )
}

/// Judges the canary hosts over one window against the thresholds and the
/// baseline. A breach anywhere wins over missing data elsewhere: a canary
/// that fails one check needs no other to be rolled back.
///
/// Whatever the verdict, it also says which metrics pages had lines that
/// could not be read: a reader that skips lines is never silent about it.
pub fn analyse(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Verdict {
    let notes: Vec<&str> = canary
        .hosts
        .iter()
        .chain(&baseline.hosts)
        .flat_map(|h| h.notes.iter().map(String::as_str))
        .collect();
    let mut verdict = judge_windows(canary, baseline, t);
    if !notes.is_empty() {
        let text = match &mut verdict {
            Verdict::Pass { summary } => summary,
            Verdict::Breach { detail, .. } => detail,
            Verdict::Inconclusive { why } => why,
        };
        for note in notes {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(note);
        }
    }
    verdict
}

fn judge_windows(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Verdict {
    if canary.hosts.is_empty() {
        return Verdict::Inconclusive {
            why: "no canary host to judge".to_owned(),
        };
    }
    let mut checks = vec![
        check_health(canary, baseline, t),
        check_error_rate(canary, baseline, t),
    ];
    checks.extend(check_relative(canary, baseline, t));
    checks.push(check_latency(canary, baseline, t));
    checks.push(check_error_lines(canary, baseline, t));

    let mut within = Vec::new();
    let mut missing = Vec::new();
    for check in checks {
        match check {
            Check::Breach(v) => return v,
            Check::Within(s) => within.push(s),
            Check::NoData(why) => missing.push(why),
            Check::Off => {}
        }
    }
    if !missing.is_empty() {
        return Verdict::Inconclusive {
            why: missing.join("; "),
        };
    }
    if within.is_empty() {
        return Verdict::Inconclusive {
            why: "no check applies: set min_health_pass_rate (with [health]), max_error_rate, max_latency_ms, max_relative or max_error_lines_per_min".to_owned(),
        };
    }
    let hosts = |n: usize| if n == 1 { "host" } else { "hosts" };
    Verdict::Pass {
        summary: format!(
            "{} canary {} against {} baseline {}: {}",
            canary.hosts.len(),
            hosts(canary.hosts.len()),
            baseline.hosts.len(),
            hosts(baseline.hosts.len()),
            within.join(", ")
        ),
    }
}
