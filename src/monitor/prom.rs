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
        })
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
        match m {
            LabelMatch::Equal(v) => value == v,
            LabelMatch::NotEqual(v) => value != v,
            LabelMatch::Matches(re) => re.is_match(value),
            LabelMatch::NotMatches(re) => !re.is_match(value),
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
