use super::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/metrics/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn find<'a>(page: &'a Page, name: &str, with: &[(&str, &str)]) -> &'a Sample {
    page.samples
        .iter()
        .find(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {with:?}"))
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// Every sample line of a well-formed page was read, each into the sample
/// its line says: the name it starts with, every label written on it, and
/// its value.
fn read_whole(text: &str) -> Page {
    let page = parse(text);
    assert_eq!(page.unreadable, [], "a well-formed page reads whole");
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l))
        .collect();
    assert_eq!(page.samples.len(), lines.len());
    for (s, (n, line)) in page.samples.iter().zip(&lines) {
        assert_eq!(s.line, *n);
        assert!(line.starts_with(&s.name), "{line}");
        for (k, v) in &s.labels {
            let written = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            assert!(line.contains(&format!("{k}=\"{written}\"")), "{line}: {k}");
        }
        let value = line.split('}').next_back().unwrap_or(line);
        let value = value
            .split_whitespace()
            .nth(if line.contains('}') { 0 } else { 1 });
        let parsed: f64 = match value.unwrap() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        assert!(
            parsed == s.value || parsed.is_nan() && s.value.is_nan(),
            "{line}"
        );
    }
    page
}

#[test]
fn python_client_single_process_with_route_templates() {
    let page = read_whole(&fixture("python_single.prom"));
    let s = find(&page, "http_requests_total", &[("code", "500")]);
    assert_eq!(
        s.labels,
        labels(&[
            ("code", "500"),
            ("method", "GET"),
            ("route", "/predict/{model}")
        ])
    );
    assert_eq!(s.value, 12.0);
    assert_eq!(page.kind(s), Kind::Counter);
    // prometheus_client writes _created as a gauge family of its own.
    let created = find(&page, "http_requests_created", &[("code", "500")]);
    assert_eq!(page.kind(created), Kind::Gauge);
    let b = find(
        &page,
        "http_request_duration_seconds_bucket",
        &[("route", "/predict/{model}"), ("le", "0.25")],
    );
    assert_eq!((b.value, page.kind(b)), (6.0, Kind::Histogram));
    assert_eq!(
        page.family("http_request_duration_seconds")
            .map(|f| f.help.as_deref()),
        Some(Some("Request latency."))
    );
    let all = counter(&page, &sel("http_requests_total"), Absent::Missing);
    assert_eq!(all, Ok(59.0));
    let errors = sel(r#"http_requests_total{code=~"5..", route="/predict/{model}"}"#);
    assert_eq!(counter(&page, &errors, Absent::Zero), Ok(12.0));
}

#[test]
fn python_client_multiprocess() {
    let page = read_whole(&fixture("python_multiprocess.prom"));
    assert_eq!(page.samples.len(), 37);
    assert_eq!(
        find(&page, "http_requests_total", &[("route", "/healthz")]).labels,
        labels(&[("code", "200"), ("method", "GET"), ("route", "/healthz")])
    );
    let predict = sel(r#"http_requests_total{route="/predict/{model}"}"#);
    assert_eq!(counter(&page, &predict, Absent::Missing), Ok(52.0));
    let count = sel(r#"http_request_duration_seconds_count{route="/predict/{model}"}"#);
    assert_eq!(counter(&page, &count, Absent::Missing), Ok(8.0));
}

#[test]
fn python_client_openmetrics_counters_with_and_without_total() {
    let text = fixture("python_openmetrics.prom");
    let page = read_whole(&text);
    let total = find(&page, "http_requests_total", &[("code", "500")]);
    assert_eq!((total.value, page.kind(total)), (12.0, Kind::Counter));
    // The family is `http_requests`; its _created series is not a count.
    let created = find(&page, "http_requests_created", &[("code", "500")]);
    assert_eq!(page.kind(created), Kind::Counter);
    for name in ["http_requests_total", "http_requests"] {
        assert_eq!(
            counter(&page, &sel(name), Absent::Missing),
            Ok(59.0),
            "{name}"
        );
    }
    assert!(text.trim_end().ends_with("# EOF"));
}

#[test]
fn go_client() {
    let page = read_whole(&fixture("go_client.prom"));
    let q = find(&page, "go_gc_duration_seconds", &[("quantile", "0.5")]);
    assert_eq!((q.value, page.kind(q)), (4.6625e-05, Kind::Summary));
    assert_eq!(
        find(&page, "go_gc_duration_seconds_count", &[]).value,
        187.0
    );
    let errors = sel(r#"http_requests_total{code=~"5..", handler="/users/{id}"}"#);
    assert_eq!(counter(&page, &errors, Absent::Zero), Ok(7.0));
    // A histogram without TYPE order assumptions: le written last.
    let b = find(
        &page,
        "http_request_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(b.value, 656.0);
}

#[test]
fn node_exporter() {
    let page = read_whole(&fixture("node_exporter.prom"));
    let uname = find(&page, "node_uname_info", &[]);
    assert_eq!(
        uname.label("version"),
        Some("#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)")
    );
    assert_eq!(uname.label("domainname"), Some("(none)"));
    let idle = sel(r#"node_cpu_seconds_total{mode="idle"}"#);
    assert_eq!(
        counter(&page, &idle, Absent::Missing),
        Ok(98123.45 + 97900.1)
    );
    // A sample whose family has no TYPE line is untyped.
    let s = find(&page, "node_scrape_collector_success", &[]);
    assert_eq!(page.kind(s), Kind::Unknown);
}

#[test]
fn openmetrics_page_with_units_exemplars_and_timestamps() {
    let text = fixture("openmetrics.prom");
    let page = parse(&text);
    assert_eq!(page.unreadable, []);
    assert_eq!(page.samples.len(), 15);
    let f = page.family("acme_http_router_request_seconds").unwrap();
    assert_eq!(
        (f.kind, f.unit.as_deref()),
        (Kind::Summary, Some("seconds"))
    );
    let b = find(&page, "rpc_latency_seconds_bucket", &[("le", "0.1")]);
    assert_eq!(
        (b.value, b.timestamp),
        (8.0, None),
        "an exemplar is not a timestamp"
    );
    assert_eq!(page.kind(b), Kind::Histogram);
    let q = find(&page, "queue_depth", &[]);
    assert_eq!(q.timestamp, Some(1605281325.5));
    assert_eq!(page.kind(find(&page, "build_info", &[])), Kind::Info);
    assert_eq!(
        page.kind(find(&page, "feature", &[("feature", "b")])),
        Kind::StateSet
    );
    assert_eq!(
        counter(&page, &sel("process_cpu_seconds_total"), Absent::Missing),
        Ok(4.20072246e+06)
    );
}

#[test]
fn adversarial_lines_are_read_or_reported_never_dropped() {
    let text = fixture("adversarial.prom");
    let page = parse(&text);
    let route = |r: &str| find(&page, "http_requests_total", &[("route", r)]).value;
    assert_eq!(route("/users/{id}"), 3.0);
    assert_eq!(route("a,b=c"), 5.0);
    assert_eq!(route("say \"hi\"\\n"), 7.0);
    assert_eq!(route("line\nbreak"), 11.0);
    assert_eq!(route("{"), 13.0);
    assert_eq!(route("spaced"), 17.0);
    let unicode = find(&page, "http_requests_total", &[("route", "ünïcödé ✓")]);
    assert_eq!((unicode.value, unicode.timestamp), (19.0, Some(1.7e12)));
    assert_eq!(find(&page, "job:http_requests:rate5m", &[]).value, 2.5);
    assert_eq!(find(&page, "inf_gauge", &[]).value, f64::INFINITY);
    assert_eq!(find(&page, "neg_inf_gauge", &[]).value, f64::NEG_INFINITY);
    assert!(find(&page, "nan_gauge", &[]).value.is_nan());
    assert_eq!(find(&page, "exp_gauge", &[]).value, 0.0015);
    let dotted = find(&page, "my.dotted.metric", &[]);
    assert_eq!(dotted.labels, labels(&[("label.with.dots", "v")]));
    assert_eq!(page.samples.len(), 13);

    let bad: Vec<(usize, Option<&str>)> = page
        .unreadable
        .iter()
        .map(|u| (u.line, u.name.as_deref()))
        .collect();
    assert_eq!(
        bad,
        [
            (16, Some("http_requests_total")),
            (17, Some("http_requests_total")),
            (18, Some("http_requests_total")),
            (19, Some("no_value_here")),
            (20, Some("bad_value")),
            (21, Some("broken_type")),
        ]
    );
    assert!(
        page.unreadable[2].why.contains("double-quoted"),
        "{:?}",
        page.unreadable[2]
    );
    assert!(
        unreadable_note(&page)
            .unwrap()
            .starts_with("6 lines could not be read (line 16: ")
    );
    // Unreadable lines of the counter: its sum cannot be trusted.
    let e = counter(&page, &sel("http_requests_total"), Absent::Missing).unwrap_err();
    assert!(
        e.starts_with(
            "3 lines of the page could not be read and may hold http_requests_total (line 16"
        ),
        "{e}"
    );
    // Other metrics are still read.
    assert_eq!(
        counter(&page, &sel("job:http_requests:rate5m"), Absent::Missing),
        Ok(2.5)
    );
}

#[test]
fn the_old_parsers_blind_spot_is_read() {
    // What prometheus-parse dropped: every line with `}` in a label value.
    let page = parse(
        "http_requests_total{route=\"/predict/{model}\",code=\"500\"} 149\n\
         http_requests_total{route=\"/predict/{model}\",code=\"200\"} 364\n\
         http_requests_total{route=\"/healthz\",code=\"200\"} 40\n",
    );
    assert_eq!(page.unreadable, []);
    let errors = sel(r#"http_requests_total{code=~"5.."}"#);
    assert_eq!(counter(&page, &errors, Absent::Zero), Ok(149.0));
    assert_eq!(
        counter(&page, &sel("http_requests_total"), Absent::Missing),
        Ok(553.0)
    );
}

#[test]
fn selectors_hold_any_character_and_several_matchers() {
    let s = sel(
        r#"http_requests_total{code=~"5..", route="/predict/{model}", x!="a,b}", y!~'q.*', z=`\d`,}"#,
    );
    assert_eq!(s.name(), "http_requests_total");
    assert_eq!(s.matchers().len(), 5);
    let l = labels(&[
        ("code", "503"),
        ("route", "/predict/{model}"),
        ("x", "c"),
        ("y", "r"),
        ("z", "\\d"),
    ]);
    assert!(s.matches_labels(&l));
    let l = labels(&[
        ("code", "503"),
        ("route", "/predict/{model}"),
        ("x", "a,b}"),
        ("z", "\\d"),
    ]);
    assert!(!s.matches_labels(&l));
    assert!(sel("http_requests_total{}").matchers().is_empty());
    assert!(sel("job:rate5m").matchers().is_empty());
    for bad in [
        "",
        "5xx",
        "http_requests_total{code=~\"5..\"",
        "http_requests_total{code}",
        "http_requests_total{code==\"5\"}",
        "http_requests_total{code=5}",
        "http_requests_total{code=~\"(\"}",
        "http_requests_total{code=\"5\"} extra",
        "http_requests_total{code=\"5\" method=\"GET\"}",
        "http_requests_total{code=\"\\d\"}",
    ] {
        assert!(Selector::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn counters_say_why_when_there_is_nothing_to_count() {
    let page = parse(&fixture("python_multiprocess.prom"));
    // Renamed metric: no data, never a zero.
    let e = counter(&page, &sel("app_requests_total"), Absent::Zero).unwrap_err();
    assert_eq!(e, "the page has no metric named app_requests_total");
    // On the page, but the matchers pick nothing.
    let e = counter(
        &page,
        &sel(r#"http_requests_total{route="/users/{id}"}"#),
        Absent::Missing,
    )
    .unwrap_err();
    assert!(
        e.starts_with("no series of http_requests_total matches"),
        "{e}"
    );
    assert!(e.contains(r#"route="/predict/{model}""#), "{e}");
    // An error counter with no series yet is zero errors.
    let none_failed = sel(r#"http_requests_total{code="503"}"#);
    assert_eq!(counter(&page, &none_failed, Absent::Zero), Ok(0.0));
    let e = counter(
        &page,
        &sel("http_request_duration_seconds"),
        Absent::Missing,
    )
    .unwrap_err();
    assert!(e.contains("histogram") && e.contains("_count"), "{e}");
    let e = counter(
        &page,
        &sel("http_request_duration_seconds_bucket"),
        Absent::Missing,
    )
    .unwrap_err();
    assert!(e.contains("histogram buckets"), "{e}");
}

fn buckets(page: &str, query: &str) -> Buckets {
    match latency(&parse(page), &LatencyQuery::parse(query).unwrap()) {
        Ok(LatencyRead::Buckets(b)) => b,
        other => panic!("{other:?}"),
    }
}

const LAT: &str =
    "histogram_quantile(0.99, http_request_duration_seconds{route=\"/predict/{model}\"})";

// Long on purpose: every case (window, `_bucket` suffix, restart, idle, ...)
// reads the same page builder and the same before/after scrapes.
#[test]
fn histogram_quantile_over_the_windows_growth() {
    let page = |counts: [u64; 4]| {
        format!(
            "# TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{route=\"/predict/{{model}}\",le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{route=\"/predict/{{model}}\",le=\"0.25\"}} {}\n\
             http_request_duration_seconds_bucket{{route=\"/predict/{{model}}\",le=\"0.5\"}} {}\n\
             http_request_duration_seconds_bucket{{route=\"/predict/{{model}}\",le=\"+Inf\"}} {}\n\
             http_request_duration_seconds_bucket{{route=\"/healthz\",le=\"0.1\"}} 1000\n\
             http_request_duration_seconds_bucket{{route=\"/healthz\",le=\"+Inf\"}} 1000\n",
            counts[0], counts[1], counts[2], counts[3]
        )
    };
    // Since start: 1000 fast requests. In the window: 100 more, all slow.
    let before = buckets(&page([1000, 1000, 1000, 1000]), LAT);
    let after = buckets(&page([1000, 1000, 1100, 1100]), LAT);
    let mut g = Growth::default();
    g.add(&before, &after);
    assert_eq!(g.observations(), 100.0);
    // 99th of 100 lies in (0.25, 0.5]: 0.25 + 0.25 * 99/100.
    assert!((g.quantile(0.99).unwrap() - 0.4975).abs() < 1e-12);
    // What the whole history says instead (the fast past hides the window).
    let mut since_start = Growth::default();
    since_start.add(&Buckets::default(), &after);
    assert!(since_start.quantile(0.5).unwrap() < 0.1);

    // The `_bucket` suffix is optional and the result the same.
    let named = "histogram_quantile(0.99, http_request_duration_seconds_bucket{route=\"/predict/{model}\"})";
    assert_eq!(
        buckets(&page([1, 2, 3, 4]), named),
        buckets(&page([1, 2, 3, 4]), LAT)
    );

    // A restart: counts fell, so the new counts are all growth.
    let restarted = buckets(&page([5, 5, 10, 10]), LAT);
    let mut g = Growth::default();
    g.add(&before, &after);
    g.add(&after, &restarted);
    assert_eq!(g.observations(), 110.0);

    // No request in the window: no reading.
    let mut idle = Growth::default();
    idle.add(&before, &before);
    assert_eq!(
        idle.quantile(0.99),
        Err("no request was observed in the window".to_owned())
    );
}

#[test]
fn bucket_quantile_matches_prometheus() {
    let b = [
        (0.1, 50.0),
        (0.5, 90.0),
        (1.0, 100.0),
        (f64::INFINITY, 100.0),
    ];
    assert!((bucket_quantile(0.5, &b).unwrap() - 0.1).abs() < 1e-12);
    assert!((bucket_quantile(0.25, &b).unwrap() - 0.05).abs() < 1e-12);
    assert!((bucket_quantile(0.9, &b).unwrap() - 0.5).abs() < 1e-12);
    assert!((bucket_quantile(0.95, &b).unwrap() - 0.75).abs() < 1e-12);
    // In the +Inf bucket: the highest finite bound.
    let tail = [(0.1, 10.0), (f64::INFINITY, 100.0)];
    assert_eq!(bucket_quantile(0.99, &tail), Ok(0.1));
    assert!(
        bucket_quantile(0.5, &[(0.1, 1.0)]).is_err(),
        "no +Inf bucket"
    );
}

#[test]
fn latency_reads_gauges_summaries_and_says_why_not() {
    let page = fixture("go_client.prom");
    let read = |q: &str| latency(&parse(&page), &LatencyQuery::parse(q).unwrap());
    assert_eq!(
        read(r#"go_gc_duration_seconds{quantile="0.5"}"#),
        Ok(LatencyRead::Seconds(4.6625e-05))
    );
    assert_eq!(
        read(r#"go_gc_duration_seconds{quantile="0.50"}"#),
        Ok(LatencyRead::Seconds(4.6625e-05)),
        "quantiles compare as numbers"
    );
    let e = read("go_gc_duration_seconds").unwrap_err();
    assert!(e.contains("name the quantile"), "{e}");
    let e = read("http_request_duration_seconds").unwrap_err();
    assert!(
        e.contains("is a histogram: write histogram_quantile(0.99, http_request_duration_seconds)"),
        "{e}"
    );
    let e = read("http_requests_total").unwrap_err();
    assert!(e.contains("is a counter"), "{e}");
    let e = read("histogram_quantile(0.99, go_gc_duration_seconds)").unwrap_err();
    assert!(e.contains("is a summary, not a histogram"), "{e}");
    let e = read(r#"histogram_quantile(0.9, http_request_duration_seconds{handler="/nope"})"#)
        .unwrap_err();
    assert!(
        e.starts_with("no series of http_request_duration_seconds_bucket matches"),
        "{e}"
    );
    let e = read("histogram_quantile(0.9, renamed_seconds)").unwrap_err();
    assert_eq!(e, "the page has no histogram named renamed_seconds");
    let b = match read(
        r#"histogram_quantile(0.9, http_request_duration_seconds{handler="/users/{id}"})"#,
    ) {
        Ok(LatencyRead::Buckets(b)) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(b.series.len(), 1);
    assert_eq!(b.series.values().next().unwrap().len(), 12);
}

#[test]
fn latency_queries_are_checked_when_read() {
    for bad in [
        "histogram_quantile(0.99)",
        "histogram_quantile(1.5, x)",
        "histogram_quantile(0.99, rate(x_bucket[5m]))",
        "histogram_quantile(0.99, sum by (le) (x_bucket))",
        "histogram_quantile(0.99, x{le=\"0.1\"})",
        "histogram_quantile(0.99, x",
    ] {
        assert!(LatencyQuery::parse(bad).is_err(), "{bad}");
    }
    match LatencyQuery::parse("histogram_quantile( 0.5 , x_seconds )").unwrap() {
        LatencyQuery::Quantile { q, buckets, .. } => {
            assert_eq!((q, buckets.name()), (0.5, "x_seconds_bucket"));
        }
        other => panic!("{other:?}"),
    }
}

/// What the demo's sample app serves at `/metrics`: request counters by code
/// and a latency *summary*.
const DEMO_PAGE: &str = "# HELP http_requests_total Requests served, by status code.
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 1412
http_requests_total{code=\"500\"} 611
# HELP http_request_duration_seconds Time taken to serve a request.
# TYPE http_request_duration_seconds summary
http_request_duration_seconds{quantile=\"0.5\"} 0.036000
http_request_duration_seconds{quantile=\"0.9\"} 0.112000
http_request_duration_seconds{quantile=\"0.99\"} 0.384000
http_request_duration_seconds_sum 93.417000
http_request_duration_seconds_count 2023
# TYPE app_info gauge
app_info{release=\"v3\",mode=\"bad\"} 1
";

fn seconds(page: &str, q: &str) -> Result<f64, String> {
    match latency(&parse(page), &LatencyQuery::parse(q).unwrap())? {
        LatencyRead::Seconds(s) => Ok(s),
        other => panic!("{other:?}"),
    }
}

#[test]
fn latency_reads_a_summary_quantile_of_the_demo_page() {
    let p99 = r#"http_request_duration_seconds{quantile="0.99"}"#;
    assert_eq!(seconds(DEMO_PAGE, p99), Ok(0.384));
    assert_eq!(
        seconds(
            DEMO_PAGE,
            r#"http_request_duration_seconds{quantile="0.990"}"#
        ),
        Ok(0.384)
    );
    assert_eq!(
        seconds(
            DEMO_PAGE,
            r#"http_request_duration_seconds{quantile=~"0\\.[59]"}"#
        ),
        Ok(0.112),
        "a regex over several quantiles takes the worst"
    );
    let e = seconds(
        DEMO_PAGE,
        r#"http_request_duration_seconds{quantile="0.999"}"#,
    )
    .unwrap_err();
    assert!(
        e.starts_with("no series of http_request_duration_seconds matches"),
        "{e}"
    );
    let e = seconds(DEMO_PAGE, "request_latency_seconds").unwrap_err();
    assert_eq!(e, "the page has no metric named request_latency_seconds");
    let page = parse(DEMO_PAGE);
    assert_eq!(
        counter(&page, &sel("http_requests_total"), Absent::Missing),
        Ok(2023.0)
    );
    assert_eq!(
        counter(
            &page,
            &sel(r#"http_requests_total{code=~"5.."}"#),
            Absent::Zero
        ),
        Ok(611.0)
    );
}

#[test]
fn latency_over_several_series_is_the_worst_and_nan_is_no_reading() {
    let page = r#"# TYPE rpc_seconds summary
rpc_seconds{handler="/a",quantile="0.99"} 0.120
rpc_seconds{handler="/b",quantile="0.99"} 0.450
rpc_seconds{handler="/c",quantile="0.99"} NaN
rpc_seconds_count{handler="/a"} 10
# TYPE p99 gauge
p99{route="a"} 0.2
p99{route="b"} 0.3
# TYPE idle_seconds summary
idle_seconds{quantile="0.99"} NaN
idle_seconds_count 0
# TYPE fresh_seconds summary
fresh_seconds{quantile="0.99"} 0
untyped_p99{quantile="0.99"} 0.07
"#;
    assert_eq!(seconds(page, r#"rpc_seconds{quantile="0.99"}"#), Ok(0.45));
    assert_eq!(seconds(page, "p99"), Ok(0.3), "gauges: the max");
    assert_eq!(seconds(page, r#"p99{route="a"}"#), Ok(0.2));
    assert_eq!(seconds(page, r#"untyped_p99{quantile="0.99"}"#), Ok(0.07));
    for idle in ["idle_seconds", "fresh_seconds"] {
        let e = seconds(page, &format!("{idle}{{quantile=\"0.99\"}}")).unwrap_err();
        assert!(e.contains("no latency yet"), "{e}");
    }
}
