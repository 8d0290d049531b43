use std::time::Duration;

use super::judge::median_ms;
use super::*;
use crate::model::HostCount;
use crate::model::sample::{AppSample, HealthSample, HealthStatus};

mod relative;
mod steps;

fn steps(s: &[&str]) -> Result<Vec<CanaryStep>, String> {
    parse_steps(s)
}

fn probe(ok: bool, ms: u64) -> Probe {
    Probe {
        healthy: ok,
        latency: ok.then(|| Duration::from_millis(ms)),
        detail: if ok { "HTTP 200" } else { "HTTP 503" }.to_owned(),
    }
}

/// A host with `n` probes of `ms` latency, the given request counts and
/// error lines per minute.
fn host(name: &str, n: usize, ms: u64, requests: Option<(f64, f64)>, lines: f64) -> HostWindow {
    HostWindow {
        host: name.to_owned(),
        probes: (0..n).map(|_| probe(true, ms)).collect(),
        error_lines_per_min: Some(lines),
        requests: requests.map(|(total, errors)| Requests { total, errors }),
        app_latency_ms: None,
        gaps: Gaps::default(),
        notes: Vec::new(),
    }
}

#[test]
fn the_apps_own_latency_quantile_is_judged_before_probe_latency() {
    let t = Thresholds {
        max_latency_ms: Some(250),
        ..Thresholds::default()
    };
    // Probes answer in 20 ms, but the app says its p99 is 900 ms.
    let mut slow = host("web-1", 30, 20, None, 0.0);
    slow.app_latency_ms = Some(900.0);
    let mut base = baseline();
    for h in &mut base.hosts {
        h.app_latency_ms = Some(120.0);
    }
    let v = analyse(&group(vec![slow]), &base, &t);
    let Verdict::Breach {
        metric,
        value,
        threshold,
        detail,
        ..
    } = &v
    else {
        panic!("{v}");
    };
    assert_eq!(
        (*metric, *value, *threshold),
        (Metric::AppLatency, 900.0, 250.0)
    );
    assert_eq!(detail, "baseline 120 ms");
    assert!(
        v.to_string().contains(
            "latency (metrics.latency) 900 ms is above the threshold 250 ms (max_latency_ms)"
        ),
        "{v}"
    );

    let mut fine = host("web-1", 30, 20, None, 0.0);
    fine.app_latency_ms = Some(200.0);
    assert!(analyse(&group(vec![fine]), &base, &t).is_pass());
}

fn group(hosts: Vec<HostWindow>) -> GroupWindow {
    GroupWindow { hosts }
}

fn baseline() -> GroupWindow {
    group(vec![
        host("web-2", 30, 20, Some((1000.0, 5.0)), 0.0),
        host("web-3", 30, 22, Some((1000.0, 5.0)), 1.0),
        host("web-4", 30, 21, Some((1000.0, 5.0)), 0.0),
    ])
}

fn strict() -> Thresholds {
    Thresholds {
        max_error_rate: Some(0.01),
        max_latency_ms: Some(200),
        max_relative: Some(2.0),
        ..Thresholds::default()
    }
}

#[test]
fn bad_canary_breaches_naming_metric_value_and_threshold() {
    let canary = group(vec![host("web-1", 30, 25, Some((1000.0, 200.0)), 3.0)]);
    let v = analyse(&canary, &baseline(), &strict());
    let Verdict::Breach {
        metric,
        value,
        threshold,
        host,
        detail,
    } = &v
    else {
        panic!("expected a breach, got {v:?}");
    };
    assert_eq!(*metric, Metric::ErrorRate);
    assert!((value - 0.2).abs() < 1e-9);
    assert_eq!(*threshold, 0.01);
    assert_eq!(host.as_deref(), Some("web-1"));
    assert!(detail.contains("200 errors in 1000 requests"), "{detail}");
    assert!(detail.contains("baseline 0.50%"), "{detail}");
    assert_eq!(
        v.to_string(),
        "canary breach on web-1: error rate 20% is above the threshold 1% (max_error_rate); \
         200 errors in 1000 requests; baseline 0.50%"
    );
}

#[test]
fn good_canary_passes_with_a_summary() {
    let canary = group(vec![host("web-1", 30, 24, Some((1000.0, 6.0)), 0.0)]);
    let v = analyse(&canary, &baseline(), &strict());
    let Verdict::Pass { summary } = &v else {
        panic!("expected a pass, got {v:?}");
    };
    assert!(
        summary.starts_with("1 canary host against 3 baseline hosts: "),
        "{summary}"
    );
    assert!(summary.contains("health 100% (min 100%)"), "{summary}");
    assert!(summary.contains("error rate 0.60% (max 1%)"), "{summary}");
    assert!(
        summary.contains("median latency 24 ms (max 200 ms)"),
        "{summary}"
    );
    assert!(v.is_pass());
}

#[test]
fn unreadable_metrics_lines_are_said_whatever_the_verdict() {
    let note =
        "http://127.0.0.1:9100/metrics of web-1: 2 lines could not be read (line 7: no value)";
    let mut h = host("web-1", 30, 24, Some((1000.0, 6.0)), 0.0);
    h.notes = vec![note.to_owned()];
    let v = analyse(&group(vec![h.clone()]), &baseline(), &strict());
    assert!(v.is_pass(), "{v:?}");
    assert!(v.to_string().ends_with(note), "{v}");
    h.requests = Some(Requests {
        total: 1000.0,
        errors: 500.0,
    });
    let v = analyse(&group(vec![h.clone()]), &baseline(), &strict());
    assert!(matches!(v, Verdict::Breach { .. }), "{v:?}");
    assert!(v.to_string().ends_with(note), "{v}");
    h.requests = None;
    let v = analyse(&group(vec![h]), &baseline(), &strict());
    assert!(matches!(v, Verdict::Inconclusive { .. }), "{v:?}");
    assert!(v.to_string().ends_with(note), "{v}");
}

#[test]
fn no_samples_is_inconclusive_never_a_pass() {
    let empty = group(vec![HostWindow::new("web-1")]);
    for t in [strict(), Thresholds::default()] {
        let v = analyse(&empty, &baseline(), &t);
        let Verdict::Inconclusive { why } = &v else {
            panic!("expected inconclusive, got {v:?}");
        };
        assert!(why.contains("no health probe of web-1"), "{why}");
    }
    let v = analyse(&group(vec![]), &baseline(), &strict());
    assert!(matches!(v, Verdict::Inconclusive { .. }), "{v:?}");
    // With every check off there is nothing to pass on.
    let off = Thresholds {
        min_health_pass_rate: None,
        ..Thresholds::default()
    };
    let canary = group(vec![host("web-1", 30, 20, None, 0.0)]);
    let v = analyse(&canary, &baseline(), &off);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("no check applies")),
        "{v:?}"
    );
}

#[test]
fn missing_metrics_for_a_set_threshold_are_inconclusive() {
    let canary = group(vec![host("web-1", 30, 20, None, 0.0)]);
    let v = analyse(&canary, &baseline(), &strict());
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("no request counters from web-1")),
        "{v:?}"
    );
    let quiet = group(vec![host("web-1", 30, 20, Some((4.0, 0.0)), 0.0)]);
    let v = analyse(&quiet, &baseline(), &strict());
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("served 4 requests")),
        "{v:?}"
    );
    // One canary host without data is enough to withhold a pass.
    let two = group(vec![
        host("web-1", 30, 20, Some((1000.0, 1.0)), 0.0),
        HostWindow::new("web-2"),
    ]);
    assert!(matches!(
        analyse(&two, &baseline(), &strict()),
        Verdict::Inconclusive { .. }
    ));
}

#[test]
fn a_breach_wins_over_missing_data() {
    let mut sick = host("web-1", 10, 20, None, 0.0);
    sick.probes[9] = probe(false, 0);
    let v = analyse(&group(vec![sick]), &baseline(), &strict());
    let Verdict::Breach {
        metric,
        value,
        threshold,
        detail,
        ..
    } = &v
    else {
        panic!("expected a breach, got {v:?}");
    };
    assert_eq!(*metric, Metric::HealthPassRate);
    assert!((value - 0.9).abs() < 1e-9);
    assert_eq!(*threshold, 1.0);
    assert_eq!(
        detail,
        "1 of 10 probes failed (last: HTTP 503); baseline 100%"
    );
    assert!(
        v.to_string()
            .contains("health pass rate 90% is below the threshold 100% (min_health_pass_rate)")
    );
}

#[test]
fn health_pass_rate_can_be_relaxed() {
    let mut flaky = host("web-1", 10, 20, None, 0.0);
    flaky.probes[0] = probe(false, 0);
    let t = Thresholds {
        min_health_pass_rate: Some(0.9),
        ..Thresholds::default()
    };
    assert!(analyse(&group(vec![flaky.clone()]), &baseline(), &t).is_pass());
    flaky.probes[1] = probe(false, 0);
    assert!(!analyse(&group(vec![flaky]), &baseline(), &t).is_pass());
}

#[test]
fn relative_limit_compares_with_the_baseline() {
    let t = Thresholds {
        max_relative: Some(2.0),
        ..Thresholds::default()
    };
    // Baseline at 2%: 3% is within 2×, 5% is not.
    let base = group(vec![
        host("web-2", 30, 20, Some((1000.0, 20.0)), 0.0),
        host("web-3", 30, 20, Some((1000.0, 20.0)), 0.0),
    ]);
    let ok = group(vec![host("web-1", 30, 20, Some((1000.0, 30.0)), 0.0)]);
    assert!(analyse(&ok, &base, &t).is_pass());
    let bad = group(vec![host("web-1", 30, 20, Some((1000.0, 50.0)), 0.0)]);
    let v = analyse(&bad, &base, &t);
    let Verdict::Breach {
        metric,
        value,
        threshold,
        host,
        detail,
    } = &v
    else {
        panic!("expected a breach, got {v:?}");
    };
    assert_eq!(*metric, Metric::RelativeErrorRate);
    assert!((value - 0.05).abs() < 1e-9);
    assert!((threshold - 0.04).abs() < 1e-9);
    assert_eq!(host.as_deref(), Some("web-1"));
    assert!(
        detail.contains("baseline 2%") && detail.contains("2×"),
        "{detail}"
    );
    assert!(v.to_string().contains("(max_relative)"), "{v}");
}

#[test]
fn relative_limit_has_a_floor() {
    let t = Thresholds {
        max_relative: Some(2.0),
        ..Thresholds::default()
    };
    let clean = group(vec![host("web-2", 30, 20, Some((1000.0, 0.0)), 0.0)]);
    // 0.1% against 0%: below the 1% floor, and 1 error line against none
    // is below its floor too.
    let canary = group(vec![host("web-1", 30, 20, Some((1000.0, 1.0)), 1.0)]);
    assert!(analyse(&canary, &clean, &t).is_pass());
    // Above the floor, 0% baseline or not, it breaches.
    let canary = group(vec![host("web-1", 30, 20, Some((1000.0, 30.0)), 0.0)]);
    let v = analyse(&canary, &clean, &t);
    assert!(
        matches!(v, Verdict::Breach { metric: Metric::RelativeErrorRate, threshold, .. } if threshold == 0.01),
        "{v:?}"
    );
}

#[test]
fn relative_limit_on_error_lines_without_metrics() {
    let t = Thresholds {
        max_relative: Some(3.0),
        ..Thresholds::default()
    };
    let base = group(vec![
        host("web-2", 30, 20, None, 2.0),
        host("web-3", 30, 20, None, 4.0),
    ]);
    let ok = group(vec![host("web-1", 30, 20, None, 8.0)]);
    assert!(
        analyse(&ok, &base, &t).is_pass(),
        "{:?}",
        analyse(&ok, &base, &t)
    );
    let bad = group(vec![host("web-1", 30, 20, None, 40.0)]);
    let v = analyse(&bad, &base, &t);
    assert!(
        matches!(v, Verdict::Breach { metric: Metric::RelativeErrorLines, value, threshold, .. }
            if value == 40.0 && threshold == 9.0),
        "{v:?}"
    );
    // With no baseline to compare with, the relative limit cannot pass.
    let v = analyse(&ok, &group(vec![]), &t);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("baseline")),
        "{v:?}"
    );
}

#[test]
fn latency_limit_uses_the_median() {
    let t = Thresholds {
        max_latency_ms: Some(100),
        ..Thresholds::default()
    };
    // One slow probe in five does not move the median.
    let mut spiky = host("web-1", 5, 40, None, 0.0);
    spiky.probes[2] = probe(true, 900);
    assert!(analyse(&group(vec![spiky]), &baseline(), &t).is_pass());
    let slow = group(vec![
        host("web-1", 4, 80, None, 0.0),
        host("web-5", 4, 300, None, 0.0),
    ]);
    let v = analyse(&slow, &baseline(), &t);
    let Verdict::Breach {
        metric,
        value,
        threshold,
        host,
        detail,
    } = &v
    else {
        panic!("expected a breach, got {v:?}");
    };
    assert_eq!(*metric, Metric::Latency);
    assert_eq!((*value, *threshold), (300.0, 100.0));
    assert_eq!(host.as_deref(), Some("web-5"));
    assert_eq!(detail, "baseline 21 ms");
    assert!(
        v.to_string()
            .contains("median probe latency 300 ms is above the threshold 100 ms (max_latency_ms)")
    );
}

#[test]
fn median_of_even_and_unanswered_probes() {
    let p = [
        probe(true, 10),
        probe(true, 30),
        probe(false, 0),
        probe(true, 20),
        probe(true, 40),
    ];
    assert_eq!(median_ms(&p), Some(25.0));
    assert_eq!(median_ms(&[probe(false, 0)]), None);
}

#[test]
fn error_lines_limit() {
    let t = Thresholds {
        max_error_lines_per_min: Some(5.0),
        ..Thresholds::default()
    };
    let v = analyse(
        &group(vec![host("web-1", 3, 20, None, 12.0)]),
        &baseline(),
        &t,
    );
    assert!(
        matches!(v, Verdict::Breach { metric: Metric::ErrorLines, value, threshold, .. }
            if value == 12.0 && threshold == 5.0),
        "{v:?}"
    );
    let mut unfollowed = host("web-1", 3, 20, None, 0.0);
    unfollowed.error_lines_per_min = None;
    let v = analyse(&group(vec![unfollowed]), &baseline(), &t);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("logs of web-1")),
        "{v:?}"
    );
}

#[test]
fn builds_from_monitor_samples() {
    use std::time::SystemTime;
    let at = SystemTime::UNIX_EPOCH;
    let app = |requests_total, errors_total| AppSample {
        at,
        requests_total,
        errors_total,
    };
    assert_eq!(
        Requests::step(&app(100.0, 1.0), &app(300.0, 5.0)),
        Requests {
            total: 200.0,
            errors: 4.0
        }
    );
    // Restarted in between: what it counted since is all new.
    assert_eq!(
        Requests::step(&app(300.0, 5.0), &app(10.0, 3.0)),
        Requests {
            total: 10.0,
            errors: 3.0
        }
    );
    let sample = |status| HealthSample {
        at,
        status,
        latency: None,
        detail: "timed out".into(),
    };
    assert!(Probe::from(&sample(HealthStatus::Healthy)).healthy);
    assert!(!Probe::from(&sample(HealthStatus::Unknown)).healthy);
    assert!(!Probe::from(&sample(HealthStatus::Unhealthy)).healthy);
}

#[test]
fn thresholds_are_validated() {
    assert!(Thresholds::default().validate().is_ok());
    assert!(strict().validate().is_ok());
    let bad = |t: Thresholds| t.validate().unwrap_err();
    assert!(
        bad(Thresholds {
            max_error_rate: Some(1.5),
            ..strict()
        })
        .contains("max_error_rate")
    );
    assert!(
        bad(Thresholds {
            min_health_pass_rate: Some(-0.1),
            ..strict()
        })
        .contains("min_health_pass_rate")
    );
    assert!(
        bad(Thresholds {
            max_relative: Some(0.5),
            ..strict()
        })
        .contains("max_relative")
    );
    assert!(
        bad(Thresholds {
            max_latency_ms: Some(0),
            ..strict()
        })
        .contains("max_latency_ms")
    );
    assert!(
        bad(Thresholds {
            relative_floor_lines_per_min: f64::NAN,
            ..strict()
        })
        .contains("floor")
    );
}
