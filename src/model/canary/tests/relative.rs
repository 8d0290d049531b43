//! What a canary is judged against: the baseline's own figures, and
//! metrics or logs that went silent.

use super::*;

fn breach_of(v: &Verdict) -> (Metric, f64, f64, &str, &str) {
    let Verdict::Breach {
        metric,
        value,
        threshold,
        host,
        detail,
    } = v
    else {
        panic!("expected a breach, got {v:?}");
    };
    (
        *metric,
        *value,
        *threshold,
        host.as_deref().unwrap_or(""),
        detail.as_str(),
    )
}

fn no_counters(name: &str) -> HostWindow {
    let mut h = host(name, 30, 20, None, 0.0);
    h.gaps.requests = Some(format!(
        "the metrics page of {name} could not be read: connection refused"
    ));
    h
}

#[test]
fn a_breach_on_one_host_wins_over_missing_data_on_another() {
    let t = Thresholds {
        max_error_rate: Some(0.05),
        ..Thresholds::default()
    };
    let clean = group(vec![host("web-3", 30, 20, Some((2000.0, 0.0)), 0.0)]);
    // web-1 fails a third of its requests; web-2's scrape failed. Either order.
    for hosts in [
        vec![
            host("web-1", 30, 20, Some((213.0, 73.0)), 0.0),
            no_counters("web-2"),
        ],
        vec![
            no_counters("web-2"),
            host("web-1", 30, 20, Some((213.0, 73.0)), 0.0),
        ],
    ] {
        let v = analyse(&group(hosts), &clean, &t);
        let (metric, _, threshold, host, _) = breach_of(&v);
        assert_eq!(
            (metric, threshold, host),
            (Metric::ErrorRate, 0.05, "web-1")
        );
        assert_eq!(
            v.to_string(),
            "canary breach on web-1: error rate 34.3% is above the threshold 5% (max_error_rate); \
             73 errors in 213 requests; baseline 0%"
        );
    }
    // The same for every per-host check: health, latency, error lines.
    let mut sick = host("web-1", 10, 20, None, 0.0);
    sick.probes[0] = probe(false, 0);
    let v = analyse(
        &group(vec![HostWindow::new("web-2"), sick]),
        &clean,
        &Thresholds::default(),
    );
    assert_eq!(breach_of(&v).0, Metric::HealthPassRate, "{v}");
    let t = Thresholds {
        max_latency_ms: Some(100),
        max_error_lines_per_min: Some(5.0),
        min_health_pass_rate: None,
        ..Thresholds::default()
    };
    let mut quiet = HostWindow::new("web-2");
    quiet.error_lines_per_min = Some(0.0);
    let slow = host("web-1", 5, 400, None, 0.0);
    let v = analyse(&group(vec![quiet, slow]), &clean, &t);
    assert_eq!(breach_of(&v).0, Metric::Latency, "{v}");
    let noisy = host("web-1", 5, 20, None, 60.0);
    let v = analyse(&group(vec![HostWindow::new("web-2"), noisy]), &clean, &t);
    assert_eq!(breach_of(&v).0, Metric::ErrorLines, "{v}");
    // Without a breach, the host without data still withholds a pass, and
    // says why in the gatherer's words.
    let fine = host("web-1", 30, 20, Some((213.0, 1.0)), 0.0);
    let v = analyse(
        &group(vec![fine, no_counters("web-2")]),
        &clean,
        &Thresholds {
            max_error_rate: Some(0.05),
            ..Thresholds::default()
        },
    );
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("metrics page of web-2 could not be read")),
        "{v:?}"
    );
}

#[test]
fn a_configured_app_latency_never_falls_back_to_probe_latency() {
    let t = Thresholds {
        max_latency_ms: Some(250),
        min_health_pass_rate: None,
        expects: Expects {
            app_latency: true,
            ..Expects::default()
        },
        ..Thresholds::default()
    };
    // Probes answer in 20 ms, but the app's quantile never came in.
    let mut canary = host("web-1", 30, 20, None, 0.0);
    canary.gaps.app_latency = Some(
        "web-1: http_request_duration_seconds is a histogram, and shipdeck does not derive quantiles from histogram buckets".into(),
    );
    let v = analyse(&group(vec![canary.clone()]), &baseline(), &t);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("is a histogram")),
        "{v:?}"
    );
    // Before, the probes' 20 ms passed it. Data-driven (nothing expected), they still do.
    let data_driven = Thresholds {
        expects: Expects::default(),
        ..t.clone()
    };
    assert!(analyse(&group(vec![canary.clone()]), &baseline(), &data_driven).is_pass());
    // One canary host with the app's latency and one without: no pass.
    let mut other = host("web-5", 30, 20, None, 0.0);
    other.app_latency_ms = Some(100.0);
    let v = analyse(
        &group(vec![other, HostWindow::new("web-1")]),
        &baseline(),
        &data_driven,
    );
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("no latency reading (metrics.latency) from web-1")),
        "{v:?}"
    );
}

#[test]
fn configured_metrics_and_logs_keep_their_relative_checks_when_silent() {
    let expects = Expects {
        requests: true,
        error_lines: true,
        app_latency: false,
    };
    let t = Thresholds {
        max_relative: Some(2.0),
        expects,
        ..Thresholds::default()
    };
    // Nobody reported counters: the error-rate comparison stays on.
    let canary = group(vec![host("web-1", 30, 20, None, 0.0)]);
    let base = group(vec![host("web-2", 30, 20, None, 0.0)]);
    let v = analyse(&canary, &base, &t);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("no request counters from web-1")
            || why.contains("the baseline has no error rate")),
        "{v:?}"
    );
    let data_driven = Thresholds {
        expects: Expects::default(),
        ..t.clone()
    };
    assert!(analyse(&canary, &base, &data_driven).is_pass());
    // Nobody's logs were followed: the error-lines comparison stays on.
    let mut canary = group(vec![host("web-1", 30, 20, Some((1000.0, 0.0)), 0.0)]);
    let mut base = group(vec![host("web-2", 30, 20, Some((1000.0, 0.0)), 0.0)]);
    canary.hosts[0].error_lines_per_min = None;
    base.hosts[0].error_lines_per_min = None;
    base.hosts[0].gaps.logs = Some("log file /srv/a/log/app.log does not exist on web-2".into());
    let v = analyse(&canary, &base, &t);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("error log lines")
            && why.contains("/srv/a/log/app.log does not exist on web-2")),
        "{v:?}"
    );
    assert!(analyse(&canary, &base, &data_driven).is_pass());
    // An empty baseline is named as such.
    let v = analyse(&canary, &group(vec![]), &t);
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("no host is left on the old release")),
        "{v:?}"
    );
}

#[test]
fn relative_latency_compares_with_the_baseline_above_a_margin() {
    let t = Thresholds {
        max_relative: Some(2.0),
        ..Thresholds::default()
    };
    let base = group(vec![
        host("web-2", 30, 40, None, 0.0),
        host("web-3", 30, 40, None, 0.0),
    ]);
    // 2× of 40 ms is 80, but never below 40 + 50: 85 ms passes, 120 does not.
    let ok = group(vec![host("web-1", 30, 85, None, 0.0)]);
    assert!(
        analyse(&ok, &base, &t).is_pass(),
        "{}",
        analyse(&ok, &base, &t)
    );
    let slow = group(vec![host("web-1", 30, 120, None, 0.0)]);
    let v = analyse(&slow, &base, &t);
    let (metric, value, threshold, host_name, _) = breach_of(&v);
    assert_eq!(
        (metric, value, threshold, host_name),
        (Metric::RelativeLatency, 120.0, 90.0, "web-1")
    );
    assert_eq!(
        v.to_string(),
        "canary breach on web-1: median probe latency against the baseline 120 ms is above the threshold 90 ms (max_relative); \
         baseline 40 ms; the limit is 2× the baseline, and never below the baseline + 50 ms"
    );
    // A 2 ms baseline does not fail a 5 ms canary.
    let fast = group(vec![host("web-2", 30, 2, None, 0.0)]);
    assert!(analyse(&group(vec![host("web-1", 30, 5, None, 0.0)]), &fast, &t).is_pass());
    // Far above the factor, it breaches.
    let v = analyse(&group(vec![host("web-1", 30, 300, None, 0.0)]), &fast, &t);
    assert_eq!(breach_of(&v).2, 52.0);

    // The app's own quantile, when it has one, on both sides.
    let app = |name: &str, ms: f64| {
        let mut h = host(name, 30, 20, None, 0.0);
        h.app_latency_ms = Some(ms);
        h
    };
    let base = group(vec![app("web-2", 100.0), app("web-3", 140.0)]);
    assert!(analyse(&group(vec![app("web-1", 230.0)]), &base, &t).is_pass());
    let v = analyse(&group(vec![app("web-1", 300.0)]), &base, &t);
    let (metric, value, threshold, _, detail) = breach_of(&v);
    assert_eq!(
        (metric, value, threshold),
        (Metric::RelativeAppLatency, 300.0, 240.0)
    );
    assert!(detail.contains("baseline 120 ms"), "{detail}");
    assert!(
        v.to_string()
            .contains("latency (metrics.latency) against the baseline 300 ms is above the threshold 240 ms (max_relative)"),
        "{v}"
    );
    // A baseline without the app's latency cannot be compared with.
    let v = analyse(
        &group(vec![app("web-1", 230.0)]),
        &group(vec![host("web-2", 30, 20, None, 0.0)]),
        &t,
    );
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("the baseline has no latency (metrics.latency)")),
        "{v:?}"
    );
}

#[test]
fn relative_error_rate_names_the_requests_and_the_rule() {
    let t = Thresholds {
        max_relative: Some(2.0),
        ..Thresholds::default()
    };
    let base = group(vec![host("web-2", 30, 20, Some((1000.0, 20.0)), 0.0)]);
    let v = analyse(
        &group(vec![host("web-1", 30, 20, Some((1000.0, 50.0)), 0.0)]),
        &base,
        &t,
    );
    assert_eq!(
        v.to_string(),
        "canary breach on web-1: error rate against the baseline 5% is above the threshold 4% (max_relative); \
         50 errors in 1000 requests; baseline 2%; the limit is 2× the baseline, and never below 1%"
    );
    // A baseline too quiet for an error rate says so.
    let quiet = group(vec![host("web-2", 30, 20, Some((3.0, 0.0)), 0.0)]);
    let v = analyse(
        &group(vec![host("web-1", 30, 20, Some((1000.0, 5.0)), 0.0)]),
        &quiet,
        &t,
    );
    assert!(
        matches!(&v, Verdict::Inconclusive { why } if why.contains("the baseline served 3 requests")),
        "{v:?}"
    );
}
