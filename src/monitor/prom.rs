//! App metrics from a Prometheus text page: which series to add up, and the
//! rates derived from two or more readings of the counters.

use std::time::Duration;

use regex::Regex;

use super::AppSample;

/// A metric name with at most one label matcher, as in
/// `http_requests_total{code=~"5.."}`. Regexes are anchored, as in PromQL.
#[derive(Debug, Clone)]
pub struct MetricSelector {
    pub name: String,
    matcher: Option<(String, LabelMatch)>,
    /// As written, for messages.
    written: String,
}

#[derive(Debug, Clone)]
enum LabelMatch {
    Equal(String),
    NotEqual(String),
    Matches(Regex),
    NotMatches(Regex),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "metric selector {selector:?}: {why} (expected name or name{{label=\"value\"}} with =, !=, =~ or !~)"
)]
pub struct SelectorError {
    pub selector: String,
    pub why: String,
}

fn is_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

impl MetricSelector {
    pub fn parse(s: &str) -> Result<MetricSelector, SelectorError> {
        let err = |why: &str| SelectorError {
            selector: s.to_owned(),
            why: why.to_owned(),
        };
        let s_trim = s.trim();
        let (name, inside) = match s_trim.split_once('{') {
            None => (s_trim, None),
            Some((name, rest)) => {
                let inside = rest
                    .strip_suffix('}')
                    .ok_or_else(|| err("missing closing }"))?;
                (name.trim(), Some(inside.trim()))
            }
        };
        if !is_name(name) {
            return Err(err("not a metric name"));
        }
        let matcher = match inside {
            None | Some("") => None,
            Some(inside) => {
                let op_at = inside
                    .find(['=', '!'])
                    .ok_or_else(|| err("no =, !=, =~ or !~ in the label matcher"))?;
                let label = inside[..op_at].trim();
                if !is_name(label) || label.contains(':') {
                    return Err(err("not a label name"));
                }
                let rest = &inside[op_at..];
                let (op, value) = ["=~", "!~", "!=", "="]
                    .into_iter()
                    .find_map(|op| rest.strip_prefix(op).map(|v| (op, v.trim())))
                    .ok_or_else(|| err("unknown label operator"))?;
                let value = unquote(value).ok_or_else(|| {
                    err("the label value must be one quoted string (one matcher at most)")
                })?;
                let regex = |v: &str| {
                    Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| err(&format!("bad regular expression: {e}")))
                };
                let m = match op {
                    "=" => LabelMatch::Equal(value),
                    "!=" => LabelMatch::NotEqual(value),
                    "=~" => LabelMatch::Matches(regex(&value)?),
                    _ => LabelMatch::NotMatches(regex(&value)?),
                };
                Some((label.to_owned(), m))
            }
        };
        Ok(MetricSelector {
            name: name.to_owned(),
            matcher,
            written: s_trim.to_owned(),
        })
    }

    /// The selector as written in the config.
    pub fn raw(&self) -> &str {
        &self.written
    }

    /// Whether a series of this name with these labels is selected. A label
    /// the series lacks counts as empty, as in PromQL.
    fn selects(&self, name: &str, labels: &prometheus_parse::Labels) -> bool {
        if name != self.name {
            return false;
        }
        let Some((label, m)) = &self.matcher else {
            return true;
        };
        // The crate keeps whatever precedes `=`, so `{a="1", b="2"}` has " b".
        let value = labels
            .iter()
            .find(|(k, _)| k.trim() == label)
            .map_or("", |(_, v)| v.as_str());
        m.matches(value)
    }

    /// The matcher on `quantile`, if that is the label this selector matches.
    fn quantile_matcher(&self) -> Option<&LabelMatch> {
        self.matcher
            .as_ref()
            .filter(|(label, _)| label == "quantile")
            .map(|(_, m)| m)
    }
}

impl LabelMatch {
    fn matches(&self, value: &str) -> bool {
        match self {
            LabelMatch::Equal(v) => value == v,
            LabelMatch::NotEqual(v) => value != v,
            LabelMatch::Matches(re) => re.is_match(value),
            LabelMatch::NotMatches(re) => !re.is_match(value),
        }
    }

    /// Against a summary's quantile, which the crate has already turned into
    /// a number (its label text is gone): `=` and `!=` compare numbers, so
    /// `"0.990"` selects the 0.99 quantile; a regex sees the number printed
    /// shortest (`0.99`).
    fn matches_quantile(&self, q: f64) -> bool {
        let same = |v: &str| v.trim().parse::<f64>().is_ok_and(|v| v == q);
        match self {
            LabelMatch::Equal(v) => same(v),
            LabelMatch::NotEqual(v) => !same(v),
            LabelMatch::Matches(_) | LabelMatch::NotMatches(_) => self.matches(&q.to_string()),
        }
    }
}

/// A double- or single-quoted label value, with `\"`, `\\` and `\n` escapes.
fn unquote(v: &str) -> Option<String> {
    let q = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = v.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c if c == q => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Parse a Prometheus text page.
pub fn parse_page(body: &str) -> Result<prometheus_parse::Scrape, String> {
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .map_err(|e| format!("unreadable Prometheus page: {e}"))
}

/// The sum of every selected counter (or untyped/gauge) series; 0 when none
/// is there yet, as client libraries only show a labelled series once it moved.
pub fn sum(scrape: &prometheus_parse::Scrape, selector: &MetricSelector) -> f64 {
    use prometheus_parse::Value;
    scrape
        .samples
        .iter()
        .filter(|s| selector.selects(&s.metric, &s.labels))
        .filter_map(|s| match s.value {
            Value::Counter(v) | Value::Untyped(v) | Value::Gauge(v) if v.is_finite() => Some(v),
            _ => None,
        })
        .sum()
}

/// The app's latency, in seconds, from the series `selector` picks: a
/// summary's quantile (`http_request_duration_seconds{quantile="0.99"}`), or
/// a gauge or untyped series that holds a latency. Over several series (one
/// per handler, say) it is the worst, never their sum: latencies do not add.
///
/// A summary must be selected by its `quantile`; without that matcher there
/// is no telling which of its quantiles is meant. Histograms are **not
/// supported**: their buckets count requests since the process started, and a
/// quantile of the window would need the buckets' growth between readings
/// (PromQL's `histogram_quantile(rate(…))`), which this does not compute; a
/// histogram gives no reading and says so rather than a made-up number.
///
/// A quantile that has observed nothing is NaN (client libraries) or 0 (some
/// apps, the demo's among them); neither is a reading: no request is served in
/// no time. `Err` says why there is no reading, for the operator.
pub fn latency(
    scrape: &prometheus_parse::Scrape,
    selector: &MetricSelector,
) -> Result<f64, String> {
    use prometheus_parse::Value;
    let mut worst: Option<f64> = None;
    let mut named = false;
    let mut unread = None;
    let mut take = |v: f64| {
        if v.is_finite() && v > 0.0 {
            worst = Some(worst.map_or(v, |w: f64| w.max(v)));
        }
    };
    for s in scrape.samples.iter().filter(|s| s.metric == selector.name) {
        named = true;
        match &s.value {
            Value::Summary(quantiles) => match selector.quantile_matcher() {
                Some(m) => quantiles
                    .iter()
                    .filter(|q| m.matches_quantile(q.quantile))
                    .for_each(|q| take(q.count)),
                None => {
                    unread = Some(format!(
                        "{} is a summary: name the quantile to judge, as in {}{{quantile=\"0.99\"}}",
                        selector.name, selector.name
                    ));
                }
            },
            Value::Gauge(v) | Value::Untyped(v) if selector.selects(&s.metric, &s.labels) => {
                take(*v);
            }
            Value::Histogram(_) => {
                unread = Some(format!(
                    "{} is a histogram, and shipdeck does not derive quantiles from histogram buckets: \
                     point metrics.latency at a summary quantile or a gauge",
                    selector.name
                ));
            }
            Value::Counter(_) => {
                unread = Some(format!(
                    "{} is a counter, not a latency: point metrics.latency at a summary quantile or a gauge",
                    selector.name
                ));
            }
            Value::Gauge(_) | Value::Untyped(_) => {}
        }
    }
    worst.ok_or_else(|| {
        unread.unwrap_or_else(|| {
            if named {
                format!(
                    "{} has no latency yet (no selected series has observed a request: NaN or 0)",
                    selector.raw()
                )
            } else {
                format!("the metrics page has no series {}", selector.raw())
            }
        })
    })
}

/// Rates over the newest `span` of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub requests_per_sec: f64,
    /// Errors over requests; `None` while no request came in.
    pub error_ratio: Option<f64>,
}

/// Derive rates from counter readings, oldest first. A counter that went
/// down was reset (the app restarted): its new value is all increase, as
/// PromQL's `rate` has it. `None` until two readings a moment apart exist.
pub fn rates(samples: &[AppSample], span: Duration) -> Option<Rates> {
    let newest = samples.last()?;
    let start = samples
        .iter()
        .position(|s| newest.at.duration_since(s.at).is_ok_and(|d| d <= span))?;
    let window = &samples[start..];
    let elapsed = newest.at.duration_since(window.first()?.at).ok()?;
    if window.len() < 2 || elapsed.is_zero() {
        return None;
    }
    let increase = |value: fn(&AppSample) -> f64| -> f64 {
        window
            .windows(2)
            .map(|p| {
                let (a, b) = (value(&p[0]), value(&p[1]));
                if b >= a { b - a } else { b }
            })
            .sum()
    };
    let requests = increase(|s| s.requests_total);
    let errors = increase(|s| s.errors_total);
    Some(Rates {
        requests_per_sec: requests / elapsed.as_secs_f64(),
        error_ratio: (requests > 0.0).then(|| (errors / requests).clamp(0.0, 1.0)),
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    const PAGE: &str = r#"# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="GET",code="200"} 1027
http_requests_total{method="POST",code="200"} 3
http_requests_total{method="GET",code="500"} 12
http_requests_total{method="GET", code="503"} 2
http_requests_total{method="GET",code="404"} 9
# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 1000
http_request_duration_seconds_bucket{le="+Inf"} 1053
http_request_duration_seconds_sum 20.5
http_request_duration_seconds_count 1053
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e9
jobs_done 7
"#;

    fn total(sel: &str) -> f64 {
        sum(
            &parse_page(PAGE).unwrap(),
            &MetricSelector::parse(sel).unwrap(),
        )
    }

    #[test]
    fn sums_the_selected_series() {
        assert_eq!(total("http_requests_total"), 1053.0);
        assert_eq!(total(r#"http_requests_total{code=~"5.."}"#), 14.0);
        assert_eq!(total(r#"http_requests_total{code="500"}"#), 12.0);
        assert_eq!(total(r#"http_requests_total{code!="200"}"#), 23.0);
        assert_eq!(total(r#"http_requests_total{code!~"2.."}"#), 23.0);
        assert_eq!(total(r#"http_requests_total { method = 'POST' }"#), 3.0);
        // Anchored: "5" alone matches no code.
        assert_eq!(total(r#"http_requests_total{code=~"5"}"#), 0.0);
        // A label no series has is empty.
        assert_eq!(total(r#"http_requests_total{zone=""}"#), 1053.0);
        assert_eq!(total("jobs_done"), 7.0, "untyped counts");
        assert_eq!(total("no_such_metric"), 0.0);
        assert_eq!(
            total("http_request_duration_seconds"),
            0.0,
            "histograms are not counters"
        );
    }

    #[test]
    fn rejects_what_it_cannot_select() {
        for bad in [
            "",
            "5xx",
            "http_requests_total{code=~\"5..\"",
            "http_requests_total{code}",
            "http_requests_total{code==\"5\"}",
            "http_requests_total{code=5}",
            "http_requests_total{code=\"5\",method=\"GET\"}",
            "http_requests_total{code=~\"(\"}",
        ] {
            assert!(MetricSelector::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MetricSelector::parse("http_requests_total{}").is_ok());
    }

    /// A literal copy of what the demo's sample app serves at `/metrics`
    /// (`metrics` in src/demo/app.rs, private to the demo): request counters
    /// by code and a latency *summary*, whose `quantile` label the parser
    /// strips into `Value::Summary`.
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
# HELP app_info The release this process runs.
# TYPE app_info gauge
app_info{release=\"v3\",mode=\"bad\"} 1
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1795316400.123
";

    fn latency_of(page: &str, sel: &str) -> Result<f64, String> {
        latency(
            &parse_page(page).unwrap(),
            &MetricSelector::parse(sel).unwrap(),
        )
    }

    #[test]
    fn latency_reads_a_summary_quantile_of_the_demo_page() {
        let p99 = r#"http_request_duration_seconds{quantile="0.99"}"#;
        // What the counters' sum makes of a summary: nothing (the old bug).
        assert_eq!(
            sum(
                &parse_page(DEMO_PAGE).unwrap(),
                &MetricSelector::parse(p99).unwrap()
            ),
            0.0
        );
        assert_eq!(latency_of(DEMO_PAGE, p99), Ok(0.384));
        assert_eq!(
            latency_of(
                DEMO_PAGE,
                r#"http_request_duration_seconds{quantile="0.5"}"#
            ),
            Ok(0.036)
        );
        // Compared as numbers, and a regex over several quantiles takes the worst.
        assert_eq!(
            latency_of(
                DEMO_PAGE,
                r#"http_request_duration_seconds{quantile="0.990"}"#
            ),
            Ok(0.384)
        );
        assert_eq!(
            latency_of(
                DEMO_PAGE,
                r#"http_request_duration_seconds{quantile=~"0\.[59]"}"#
            ),
            Ok(0.112)
        );
        // A quantile the app does not report, and no quantile at all.
        let e = latency_of(
            DEMO_PAGE,
            r#"http_request_duration_seconds{quantile="0.999"}"#,
        )
        .unwrap_err();
        assert!(e.contains("no latency yet"), "{e}");
        let e = latency_of(DEMO_PAGE, "http_request_duration_seconds").unwrap_err();
        assert!(e.contains("is a summary: name the quantile"), "{e}");
        let e = latency_of(DEMO_PAGE, "request_latency_seconds").unwrap_err();
        assert!(e.contains("no series request_latency_seconds"), "{e}");
        let e = latency_of(DEMO_PAGE, "http_requests_total").unwrap_err();
        assert!(e.contains("is a counter"), "{e}");
    }

    #[test]
    fn latency_over_several_series_is_the_worst_and_nan_is_no_reading() {
        let page = r#"# TYPE rpc_seconds summary
rpc_seconds{handler="/a",quantile="0.99"} 0.120
rpc_seconds{handler="/b",quantile="0.99"} 0.450
rpc_seconds{handler="/c",quantile="0.99"} NaN
rpc_seconds_count{handler="/a"} 10
# TYPE p99_ms gauge
p99_ms{route="a"} 0.2
p99_ms{route="b"} 0.3
# TYPE idle_seconds summary
idle_seconds{quantile="0.99"} NaN
idle_seconds_count 0
# TYPE fresh_seconds summary
fresh_seconds{quantile="0.99"} 0
untyped_p99{quantile="0.99"} 0.07
"#;
        assert_eq!(
            latency_of(page, r#"rpc_seconds{quantile="0.99"}"#),
            Ok(0.45)
        );
        assert_eq!(latency_of(page, "p99_ms"), Ok(0.3), "gauges: the max");
        assert_eq!(latency_of(page, r#"p99_ms{route="a"}"#), Ok(0.2));
        // A summary written without its TYPE line keeps its quantile label.
        assert_eq!(
            latency_of(page, r#"untyped_p99{quantile="0.99"}"#),
            Ok(0.07)
        );
        for idle in ["idle_seconds", "fresh_seconds"] {
            let e = latency_of(page, &format!("{idle}{{quantile=\"0.99\"}}")).unwrap_err();
            assert!(e.contains("no latency yet"), "{e}");
        }
    }

    #[test]
    fn histograms_are_not_read_as_latency() {
        let e = latency_of(PAGE, "http_request_duration_seconds").unwrap_err();
        assert!(e.contains("is a histogram"), "{e}");
        let e = latency_of(PAGE, r#"http_request_duration_seconds{quantile="0.99"}"#).unwrap_err();
        assert!(e.contains("is a histogram"), "{e}");
    }

    fn at(secs: u64, requests: f64, errors: f64) -> AppSample {
        AppSample {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            requests_total: requests,
            errors_total: errors,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn rates_come_from_deltas() {
        assert_eq!(rates(&[], MINUTE), None);
        assert_eq!(rates(&[at(0, 100.0, 1.0)], MINUTE), None, "one reading");
        let r = rates(&[at(0, 100.0, 1.0), at(10, 300.0, 11.0)], MINUTE).unwrap();
        assert_eq!(r.requests_per_sec, 20.0);
        assert_eq!(r.error_ratio, Some(0.05));
        let idle = rates(&[at(0, 100.0, 1.0), at(10, 100.0, 1.0)], MINUTE).unwrap();
        assert_eq!(idle.requests_per_sec, 0.0);
        assert_eq!(idle.error_ratio, None, "no traffic: no ratio");
    }

    #[test]
    fn rates_survive_a_counter_reset_and_use_only_the_span() {
        // Restarted between 10 s and 20 s: 500 -> 40 is 40 new requests, 4 -> 2 is 2 new errors.
        let s = [
            at(0, 100.0, 0.0),
            at(10, 500.0, 4.0),
            at(20, 40.0, 2.0),
            at(30, 140.0, 4.0),
        ];
        let r = rates(&s, MINUTE).unwrap();
        assert_eq!(r.requests_per_sec, (400.0 + 40.0 + 100.0) / 30.0);
        assert_eq!(r.error_ratio, Some((4.0 + 2.0 + 2.0) / 540.0));
        // Only the last 10 s.
        let r = rates(&s, Duration::from_secs(10)).unwrap();
        assert_eq!(r.requests_per_sec, 10.0);
        assert_eq!(r.error_ratio, Some(0.02));
    }
}
