//! Fitting names and ids into a column: shown whole when they fit, else
//! shortened together so that two different values never read the same.
//! Pure; the console uses it for host names and release ids.
//!
//! The rule, in order, taking the first that fits every value into the
//! width and keeps different values different:
//! - as written;
//! - hosts (and any other names): the prefix they all share dropped up to
//!   its last separator (`root@127.0.0.1:2201` → `…:2201`), the rest cut at
//!   its end;
//! - ids that start with a timestamp (`20261201143015`): their end kept,
//!   where builds of one day differ (`…01143015`);
//! - the start and the end kept, the middle cut.
//!
//! When even that cannot tell them apart in `width`, the strings are as
//! long as it takes to (a column a little too wide beats two builds that
//! look the same).

/// Where a shortened value keeps its characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The shared prefix dropped, the start of the rest kept.
    DropPrefix,
    /// The end kept.
    KeepEnd,
    /// The start and the end kept.
    Middle,
}

const ELLIPSIS: char = '…';

/// A count for people: `12408` as `12,408`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Characters at which a shared prefix may be cut.
fn is_separator(c: char) -> bool {
    matches!(c, '@' | '.' | ':' | '/' | '-' | '_' | ' ' | '+')
}

/// A build id made from the time: at least 8 digits first (`%Y%m%d…`).
fn timestamp_like(s: &str) -> bool {
    s.chars().take_while(char::is_ascii_digit).count() >= 8
}

/// `values` fitted into `width` characters each, in the same order; equal
/// values come out equal, different ones different.
pub fn fit_all<S: AsRef<str>>(values: &[S], width: usize) -> Vec<String> {
    let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    let longest = values.iter().map(|v| len(v)).max().unwrap_or(0);
    if longest <= width {
        return values.iter().map(|v| (*v).to_owned()).collect();
    }
    let mut distinct: Vec<&str> = values.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let order = if distinct.iter().all(|v| timestamp_like(v)) {
        [Cut::KeepEnd, Cut::DropPrefix, Cut::Middle]
    } else {
        [Cut::DropPrefix, Cut::KeepEnd, Cut::Middle]
    };
    let prefix = droppable_prefix(&distinct);
    for w in width.max(1)..longest {
        for cut in order {
            let shown: Vec<String> = distinct
                .iter()
                .map(|v| shorten(v, w, cut, prefix))
                .collect();
            if distinct_all(&shown) {
                return values
                    .iter()
                    .map(|v| {
                        let i = distinct.binary_search(v).expect("every value is listed");
                        shown[i].clone()
                    })
                    .collect();
            }
        }
    }
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// One value fitted alone: as written if it fits, else its start and `…`.
pub fn fit_one(value: &str, width: usize) -> String {
    fit_all(&[value], width).remove(0)
}

fn len(s: &str) -> usize {
    s.chars().count()
}

fn distinct_all(shown: &[String]) -> bool {
    let mut sorted: Vec<&String> = shown.iter().collect();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// How many characters of the prefix every value shares may go: up to
/// (not including) its last separator, so the rest starts at one. None
/// with fewer than two values (nothing to compare with) or no separator.
fn droppable_prefix(distinct: &[&str]) -> usize {
    let [first, rest @ ..] = distinct else {
        return 0;
    };
    if rest.is_empty() {
        return 0;
    }
    let mut shared: Vec<char> = first.chars().collect();
    for v in rest {
        let n = shared
            .iter()
            .zip(v.chars())
            .take_while(|(a, b)| **a == *b)
            .count();
        shared.truncate(n);
    }
    // The whole of the shortest value is no prefix to drop: it would leave
    // nothing of it.
    if distinct.iter().any(|v| len(v) == shared.len()) {
        shared.pop();
    }
    shared.iter().rposition(|c| is_separator(*c)).unwrap_or(0)
}

fn shorten(value: &str, width: usize, cut: Cut, prefix: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= width {
        return value.to_owned();
    }
    let keep = width.saturating_sub(1);
    let start = |n: usize| chars[..n].iter().collect::<String>();
    let end = |n: usize| chars[chars.len() - n..].iter().collect::<String>();
    match cut {
        Cut::DropPrefix if prefix > 0 => {
            let rest = &chars[prefix..];
            if rest.len() < width {
                format!("{ELLIPSIS}{}", rest.iter().collect::<String>())
            } else {
                let room = width.saturating_sub(2);
                format!(
                    "{ELLIPSIS}{}{ELLIPSIS}",
                    rest[..room].iter().collect::<String>()
                )
            }
        }
        Cut::DropPrefix => format!("{}{ELLIPSIS}", start(keep)),
        Cut::KeepEnd => format!("{ELLIPSIS}{}", end(keep)),
        Cut::Middle => {
            let head = keep / 2;
            format!("{}{ELLIPSIS}{}", start(head), end(keep - head))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(
            [0, 999, 1_000, 12_408, 1_234_567].map(grouped),
            ["0", "999", "1,000", "12,408", "1,234,567"]
        );
    }

    fn fits(values: &[&str], width: usize) -> Vec<String> {
        let out = fit_all(values, width);
        // Never two different values the same, never one value two ways.
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                assert_eq!(a == b, out[i] == out[j], "{a} / {b} -> {out:?}");
            }
        }
        out
    }

    #[test]
    fn what_fits_is_left_alone() {
        assert_eq!(fits(&["web-1", "web-2"], 8), ["web-1", "web-2"]);
        assert_eq!(fits(&["v1", "v2"], 2), ["v1", "v2"]);
        assert_eq!(fits(&[], 4), Vec::<String>::new());
    }

    #[test]
    fn hosts_lose_the_prefix_they_share() {
        let hosts = [
            "root@127.0.0.1:2201",
            "root@127.0.0.1:2202",
            "root@127.0.0.1:2203",
        ];
        assert_eq!(fits(&hosts, 12), ["…:2201", "…:2202", "…:2203"]);
        let long = [
            "deploy@web-01.prod.example.com",
            "deploy@web-02.prod.example.com",
        ];
        let out = fits(&long, 12);
        assert!(out.iter().all(|s| s.chars().count() <= 12), "{out:?}");
        assert_eq!(out, ["…-01.prod.e…", "…-02.prod.e…"]);
    }

    #[test]
    fn timestamp_ids_keep_their_end() {
        let ids = ["20261201143015", "20261201150122", "20261201150931"];
        assert_eq!(fits(&ids, 10), ["…201143015", "…201150122", "…201150931"]);
        // A day apart at the same time: the end is the same, so the start
        // that differs is kept.
        let out = fits(&["20261201143015", "20261202143015"], 10);
        assert_ne!(out[0], out[1]);
        assert!(out.iter().all(|s| s.chars().count() <= 10), "{out:?}");
    }

    #[test]
    fn different_values_never_read_the_same_even_when_too_narrow() {
        // Different only in the middle: the middle is kept.
        let out = fits(&["alpha-one-omega", "alpha-two-omega"], 9);
        assert_ne!(out[0], out[1]);
        assert!(out.iter().all(|s| s.chars().count() <= 9), "{out:?}");
        // Nothing can tell ten values apart in one character: as long as it takes.
        let many: Vec<String> = (0..10).map(|i| format!("host-{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let out = fits(&refs, 1);
        assert!(out.iter().all(|s| s.chars().count() <= 6), "{out:?}");
    }

    #[test]
    fn equal_values_stay_equal_and_one_value_is_cut_at_its_end() {
        assert_eq!(
            fits(&["a-very-long-name", "a-very-long-name", "x"], 8),
            ["a-very-…", "a-very-…", "x"]
        );
        assert_eq!(fit_one("production-eu", 8), "product…");
        assert_eq!(fit_one("20261201143015", 8), "…1143015");
    }

    #[test]
    fn mixed_ids_fall_back_to_what_tells_them_apart() {
        let out = fits(&["v1", "20261201143015", "20261201150122"], 8);
        assert_eq!(out[0], "v1");
        assert_eq!(&out[1..], ["…1143015", "…1150122"]);
    }
}
