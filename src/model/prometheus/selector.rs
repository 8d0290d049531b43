//! Series selectors as PromQL writes them: a name and label matchers,
//! `http_requests_total{code=~"5..", route="/predict/{model}"}`. Values are
//! quoted strings (double, single or backtick quotes) and may hold any
//! character; regexes are anchored, as in PromQL.

use std::fmt;

use regex::Regex;

use super::text::is_metric_name;

#[derive(Debug, Clone)]
pub struct Selector {
    name: String,
    matchers: Vec<Matcher>,
    /// As written, for messages.
    written: String,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    op: Op,
    value: String,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Matches,
    NotMatches,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "metric selector {selector:?}: {why} (expected name or name{{label=\"value\", …}} with =, !=, =~ or !~)"
)]
pub struct SelectorError {
    pub selector: String,
    pub why: String,
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for Selector {}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        let err = |why: String| SelectorError {
            selector: s.to_owned(),
            why,
        };
        let written = s.trim();
        let (name, inside) = match written.find('{') {
            None => (written, None),
            Some(at) => (written[..at].trim(), Some(&written[at + 1..])),
        };
        if !is_metric_name(name) {
            return Err(err(format!("{name:?} is not a metric name")));
        }
        let matchers = match inside {
            None => Vec::new(),
            Some(inside) => matchers(inside).map_err(err)?,
        };
        Ok(Selector {
            name: name.to_owned(),
            matchers,
            written: written.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The selector as written in the config.
    pub fn raw(&self) -> &str {
        &self.written
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The same matchers on another metric name (`x` → `x_bucket`).
    pub fn renamed(&self, name: &str) -> Selector {
        Selector {
            name: name.to_owned(),
            ..self.clone()
        }
    }

    /// Whether every matcher accepts these labels. A label the series lacks
    /// counts as empty, as in PromQL.
    pub fn matches_labels(&self, labels: &[(String, String)]) -> bool {
        self.matchers.iter().all(|m| {
            let value = labels
                .iter()
                .find(|(k, _)| *k == m.label)
                .map_or("", |(_, v)| v.as_str());
            m.matches(value)
        })
    }

    pub fn matcher_on(&self, label: &str) -> Option<&Matcher> {
        self.matchers.iter().find(|m| m.label == label)
    }
}

impl Matcher {
    /// `quantile` and `le` hold numbers: `=` and `!=` compare them as numbers
    /// there, so `"0.990"` selects the series labelled `0.99`.
    pub fn matches(&self, value: &str) -> bool {
        let numeric = matches!(self.label.as_str(), "quantile" | "le");
        let same = || {
            value == self.value
                || numeric
                    && matches!((value.trim().parse::<f64>(), self.value.trim().parse::<f64>()),
                        (Ok(a), Ok(b)) if a == b)
        };
        match self.op {
            Op::Equal => same(),
            Op::NotEqual => !same(),
            Op::Matches => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            Op::NotMatches => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

/// `label op "value", …}` up to and including the closing brace.
fn matchers(inside: &str) -> Result<Vec<Matcher>, String> {
    let mut out: Vec<Matcher> = Vec::new();
    let mut rest = inside;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return end(after, out);
        }
        let label_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let label = &rest[..label_end];
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(match rest.chars().next() {
                None => "missing closing }".to_owned(),
                Some(c) => format!("expected a label name, found {c:?}"),
            });
        }
        rest = rest[label_end..].trim_start();
        let (op, after) = [
            ("=~", Op::Matches),
            ("!~", Op::NotMatches),
            ("!=", Op::NotEqual),
            ("=", Op::Equal),
        ]
        .into_iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|r| (op, r)))
        .ok_or_else(|| format!("label {label}: expected =, !=, =~ or !~"))?;
        if after.starts_with('=') {
            return Err(format!("label {label}: `==` is not an operator; use ="));
        }
        let (value, after) =
            quoted(after.trim_start()).map_err(|why| format!("label {label}: {why}"))?;
        let regex = match op {
            Op::Matches | Op::NotMatches => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("label {label}: bad regular expression: {e}"))?,
            ),
            Op::Equal | Op::NotEqual => None,
        };
        out.push(Matcher {
            label: label.to_owned(),
            op,
            value,
            regex,
        });
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if let Some(after) = rest.strip_prefix('}') {
            return end(after, out);
        } else {
            return Err(match rest.chars().next() {
                None => "missing closing }".to_owned(),
                Some(c) => format!("expected , or }} after the value of {label}, found {c:?}"),
            });
        }
    }
}

fn end(after: &str, out: Vec<Matcher>) -> Result<Vec<Matcher>, String> {
    if after.trim().is_empty() {
        Ok(out)
    } else {
        Err(format!("unexpected text after }}: {:?}", after.trim()))
    }
}

/// A quoted value at the start of `s` and what follows it. Double and single
/// quotes take `\\`, `\"`, `\'`, `\n` and `\t` escapes; backticks take none.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let q = s
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\'' | '`'))
        .ok_or("its value must be a quoted string")?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == q => return Ok((out, &s[1 + i + 1..])),
            '\\' if q != '`' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, c @ ('\\' | '"' | '\''))) => out.push(c),
                Some((_, c)) => return Err(format!("unknown escape \\{c}")),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("the quoted value is not closed".to_owned())
}
