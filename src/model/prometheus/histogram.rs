//! Quantiles from histogram buckets over a window, as PromQL's
//! `histogram_quantile(q, rate(x_bucket[window]))` computes them: each
//! series' buckets grow between readings (a counter that went down was reset,
//! so its new value is all growth), the growth of every selected series is
//! added up by `le` (`sum by (le)`), and the quantile is interpolated
//! linearly inside the bucket it falls in.

use std::collections::BTreeMap;

/// One reading of the selected histogram series: per series (its labels
/// other than `le`), the cumulative count of each bucket, by upper bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub series: BTreeMap<String, Vec<(f64, f64)>>,
}

/// Bucket growth over a window, added up over series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Growth {
    /// (upper bound, count), sorted by bound.
    by_le: Vec<(f64, f64)>,
}

impl Buckets {
    /// Add one bucket of one series.
    pub fn insert(&mut self, series: String, le: f64, count: f64) {
        add_at(self.series.entry(series).or_default(), le, count);
    }
}

/// Add `n` to the bucket bounded by `le`, kept in order of bounds.
fn add_at(buckets: &mut Vec<(f64, f64)>, le: f64, n: f64) {
    match buckets.binary_search_by(|(b, _)| b.total_cmp(&le)) {
        Ok(at) => buckets[at].1 += n,
        Err(at) => buckets.insert(at, (le, n)),
    }
}

impl Growth {
    /// Add what grew from `prev` to `next`.
    pub fn add(&mut self, prev: &Buckets, next: &Buckets) {
        for (series, now) in &next.series {
            let step: Vec<(f64, f64)> = match prev.series.get(series) {
                // Same bounds in the same order (else it was reset).
                Some(before) if !was_reset(before, now) => now
                    .iter()
                    .zip(before)
                    .map(|(&(le, n), &(_, b))| (le, n - b))
                    .collect(),
                // New since the last reading, or restarted: all of it is new.
                _ => now.clone(),
            };
            for (le, n) in step {
                add_at(&mut self.by_le, le, n);
            }
        }
    }

    /// Requests observed in the window (the `+Inf` bucket).
    pub fn observations(&self) -> f64 {
        self.by_le
            .last()
            .filter(|(le, _)| *le == f64::INFINITY)
            .map_or(0.0, |(_, n)| *n)
    }

    pub fn quantile(&self, q: f64) -> Result<f64, String> {
        bucket_quantile(q, &self.by_le)
    }
}

/// A bucket that went down, or a layout that changed, means the process
/// started again between the readings.
fn was_reset(before: &[(f64, f64)], now: &[(f64, f64)]) -> bool {
    before.len() != now.len()
        || before
            .iter()
            .zip(now)
            .any(|(&(a_le, a), &(b_le, b))| a_le != b_le || b < a)
}

/// Prometheus' `bucketQuantile`: the buckets are cumulative and must end in
/// `+Inf`. A rank in the `+Inf` bucket is the highest finite bound (nothing
/// is known above it); in the first bucket the lower bound is 0.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Result<f64, String> {
    if !(0.0..=1.0).contains(&q) {
        return Err(format!("the quantile {q} is not between 0 and 1"));
    }
    let Some(&(last_le, _)) = buckets.last() else {
        return Err("the histogram has no buckets".to_owned());
    };
    if last_le != f64::INFINITY {
        return Err("the histogram has no le=\"+Inf\" bucket".to_owned());
    }
    if buckets.len() < 2 {
        return Err("the histogram has only its +Inf bucket".to_owned());
    }
    // Counts from separate scrapes of separate series may be a little out of
    // step; Prometheus evens them out the same way.
    let mut counts: Vec<f64> = Vec::with_capacity(buckets.len());
    for &(_, n) in buckets {
        let floor = counts.last().copied().unwrap_or(0.0);
        counts.push(n.max(floor));
    }
    let observations = counts[counts.len() - 1];
    if observations.is_nan() || observations <= 0.0 {
        return Err("no request was observed in the window".to_owned());
    }
    let rank = q * observations;
    let b = counts
        .iter()
        .position(|&n| n >= rank)
        .unwrap_or(counts.len() - 1);
    if b == buckets.len() - 1 {
        return Ok(buckets[b - 1].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Ok(buckets[0].0);
    }
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (buckets[b - 1].0, counts[b - 1])
    };
    let end = buckets[b].0;
    let in_bucket = counts[b] - below;
    if in_bucket <= 0.0 {
        return Ok(start);
    }
    Ok(start + (end - start) * ((rank - below) / in_bucket))
}
