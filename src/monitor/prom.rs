//! Rates of the app's request and error counters, derived from two or more
//! readings (the page itself is read by `model::prometheus`).

use std::time::Duration;

use super::AppSample;

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
