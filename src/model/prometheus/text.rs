//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0, read
//! line by line: a line that cannot be read is kept as [`Unreadable`] with
//! its number and why, and the rest of the page is still read. A page is
//! never rejected whole, and no line is dropped without a word.
//!
//! Label values may hold any character (`}`, `,`, `=`, `{`, spaces, UTF-8)
//! with `\\`, `\"` and `\n` escaped; names may hold `:`; a metric or label
//! name may also be a quoted string, as newer exporters write UTF-8 names.
//! Values are floats, `NaN`, `+Inf` or `-Inf`; a timestamp and an OpenMetrics
//! exemplar (`# {trace_id="…"} 0.5`) may follow.

use std::collections::HashMap;

/// What a family's `# TYPE` line says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` (Prometheus), `unknown` (OpenMetrics), or no `# TYPE` line.
    Unknown,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "gaugehistogram" => Kind::GaugeHistogram,
            "summary" => Kind::Summary,
            "info" => Kind::Info,
            "stateset" => Kind::StateSet,
            "untyped" | "unknown" => Kind::Unknown,
            _ => return None,
        })
    }

    /// The endings a sample of a family of this kind may add to its name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Kind::Counter => &["_total", "_created"],
            Kind::Histogram => &["_bucket", "_count", "_sum", "_created"],
            Kind::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            Kind::Summary => &["_count", "_sum", "_created"],
            Kind::Info => &["_info"],
            Kind::Gauge | Kind::StateSet | Kind::Unknown => &[],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::GaugeHistogram => "gauge histogram",
            Kind::Summary => "summary",
            Kind::Info => "info metric",
            Kind::StateSet => "state set",
            Kind::Unknown => "untyped metric",
        }
    }
}

/// A metric family, from its `# TYPE`, `# HELP` and `# UNIT` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: Option<String>,
    pub unit: Option<String>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// As written: milliseconds (Prometheus) or seconds (OpenMetrics).
    pub timestamp: Option<f64>,
    /// Index into [`Page::families`], when a family claims this sample.
    pub family: Option<usize>,
    /// 1-based line number on the page.
    pub line: usize,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub line: usize,
    pub why: String,
    /// The metric the line seems to be about, when that much could be read.
    pub name: Option<String>,
}

/// A parsed page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub families: Vec<Family>,
    pub samples: Vec<Sample>,
    pub unreadable: Vec<Unreadable>,
}

impl Page {
    pub fn kind(&self, s: &Sample) -> Kind {
        s.family.map_or(Kind::Unknown, |f| self.families[f].kind)
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// Read a page. Never fails: what cannot be read is in [`Page::unreadable`].
pub fn parse(text: &str) -> Page {
    let mut page = Page::default();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut eof_at = None;
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(eof) = eof_at {
            page.unreadable.push(Unreadable {
                line: n,
                why: format!("text after `# EOF` (line {eof})"),
                name: None,
            });
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            match metadata(comment) {
                Ok(Meta::None) => {}
                Ok(Meta::Eof) => eof_at = Some(n),
                Ok(Meta::Family { name, what }) => {
                    let at = *by_name.entry(name.clone()).or_insert_with(|| {
                        page.families.push(Family {
                            name,
                            kind: Kind::Unknown,
                            help: None,
                            unit: None,
                        });
                        page.families.len() - 1
                    });
                    let f = &mut page.families[at];
                    match what {
                        What::Type(k) => f.kind = k,
                        What::Help(h) => f.help = Some(h),
                        What::Unit(u) => f.unit = Some(u),
                    }
                }
                Err((why, name)) => page.unreadable.push(Unreadable { line: n, why, name }),
            }
            continue;
        }
        match sample(trimmed) {
            Ok(mut s) => {
                s.line = n;
                s.family = family_of(&page.families, &by_name, &s.name);
                page.samples.push(s);
            }
            Err((why, name)) => page.unreadable.push(Unreadable { line: n, why, name }),
        }
    }
    page
}

/// The family a sample name belongs to: its own name, or a family of a kind
/// whose samples add that ending (`foo_bucket` of histogram `foo`).
fn family_of(families: &[Family], by_name: &HashMap<String, usize>, name: &str) -> Option<usize> {
    if let Some(&f) = by_name.get(name) {
        return Some(f);
    }
    by_name.iter().find_map(|(base, &f)| {
        let rest = name.strip_prefix(base.as_str())?;
        families[f].kind.suffixes().contains(&rest).then_some(f)
    })
}

enum What {
    Type(Kind),
    Help(String),
    Unit(String),
}

enum Meta {
    /// A plain comment.
    None,
    Eof,
    Family {
        name: String,
        what: What,
    },
}

type LineError = (String, Option<String>);

fn metadata(comment: &str) -> Result<Meta, LineError> {
    let body = comment.trim_start();
    if body.trim_end() == "EOF" {
        return Ok(Meta::Eof);
    }
    let Some((keyword, rest)) = body.split_once([' ', '\t']) else {
        return Ok(Meta::None);
    };
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Ok(Meta::None);
    }
    let mut c = Cursor::new(rest);
    c.blanks();
    let name = c
        .name_or_quoted()
        .map_err(|why| (format!("# {keyword}: {why}"), None))?;
    let text = c.rest();
    let text = text.strip_prefix([' ', '\t']).unwrap_or(text);
    let what = match keyword {
        "TYPE" => match Kind::parse(text.trim()) {
            Some(k) => What::Type(k),
            None => {
                return Err((
                    format!("# TYPE {name}: unknown type {:?}", text.trim()),
                    Some(name),
                ));
            }
        },
        "HELP" => What::Help(unescape_help(text)),
        _ => What::Unit(text.trim().to_owned()),
    };
    Ok(Meta::Family { name, what })
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn sample(line: &str) -> Result<Sample, LineError> {
    let mut c = Cursor::new(line);
    let mut name = if c.peek() == Some('{') {
        None
    } else {
        Some(c.name().map_err(|why| (why, None))?)
    };
    let mut labels = Vec::new();
    let mut spaced = c.blanks();
    if c.eat('{') {
        labels = c.labels(&mut name).map_err(|why| (why, name.clone()))?;
        spaced = c.blanks();
    }
    let Some(name) = name else {
        return Err(("no metric name".to_owned(), None));
    };
    let fail = |why: String| (why, Some(name.clone()));
    if !spaced {
        return Err(fail(match c.peek() {
            None => "no value".to_owned(),
            Some(ch) => format!("unexpected {ch:?} after the name"),
        }));
    }
    let token = c.token();
    let value = number(token).ok_or_else(|| fail(format!("{token:?} is not a number")))?;
    c.blanks();
    let mut timestamp = None;
    if c.peek().is_some_and(|ch| ch != '#') {
        let token = c.token();
        timestamp =
            Some(number(token).ok_or_else(|| fail(format!("{token:?} is not a timestamp")))?);
        c.blanks();
    }
    if c.eat('#') {
        c.exemplar()
            .map_err(|why| fail(format!("exemplar: {why}")))?;
    }
    if !c.at_end() {
        return Err(fail(format!("unexpected text {:?}", c.rest())));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
        family: None,
        line: 0,
    })
}

/// Floats as exporters write them: `1.5e3`, `NaN`, `+Inf`, `-Inf`.
fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Whether `s` is a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.at == self.s.len()
    }

    fn eat(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.at += c.len_utf8();
        }
        yes
    }

    /// Skips spaces and tabs; whether there were any.
    fn blanks(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.at += 1;
        }
        self.at > start
    }

    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    fn name(&mut self) -> Result<String, String> {
        let rest = self.rest();
        if !rest.chars().next().is_some_and(is_name_start) {
            return Err(match rest.chars().next() {
                None => "no metric name".to_owned(),
                Some(c) => format!("a name cannot start with {c:?}"),
            });
        }
        let end = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        self.at += end;
        Ok(rest[..end].to_owned())
    }

    fn name_or_quoted(&mut self) -> Result<String, String> {
        if self.eat('"') {
            self.quoted()
        } else {
            self.name()
        }
    }

    /// The rest of a double-quoted string, its opening quote eaten.
    fn quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, other)) => {
                        return Err(format!("unknown escape \\{other} in a quoted value"));
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("a quoted value is not closed".to_owned())
    }

    /// The label pairs up to `}`, the `{` eaten. A first quoted string not
    /// followed by `=` is the metric's name (`{"my.metric", a="1"}`).
    fn labels(&mut self, name: &mut Option<String>) -> Result<Vec<(String, String)>, String> {
        let mut labels: Vec<(String, String)> = Vec::new();
        loop {
            self.blanks();
            if self.eat('}') {
                return Ok(labels);
            }
            let quoted = self.eat('"');
            let label = if quoted { self.quoted()? } else { self.name()? };
            self.blanks();
            if quoted
                && name.is_none()
                && labels.is_empty()
                && matches!(self.peek(), Some(',' | '}'))
            {
                *name = Some(label);
            } else {
                if !self.eat('=') {
                    return Err(format!("label {label}: expected = after its name"));
                }
                self.blanks();
                if !self.eat('"') {
                    return Err(format!(
                        "label {label}: its value must be a double-quoted string"
                    ));
                }
                let value = self.quoted().map_err(|e| format!("label {label}: {e}"))?;
                if labels.iter().any(|(k, _)| *k == label) {
                    return Err(format!("label {label} is given twice"));
                }
                labels.push((label, value));
            }
            self.blanks();
            if self.eat(',') {
                continue;
            }
            if self.eat('}') {
                return Ok(labels);
            }
            return Err(match self.peek() {
                None => "the labels are not closed with }".to_owned(),
                Some(c) => format!("expected , or }} between labels, found {c:?}"),
            });
        }
    }

    /// ` {labels} value [timestamp]` after an exemplar's `#`.
    fn exemplar(&mut self) -> Result<(), String> {
        self.blanks();
        if !self.eat('{') {
            return Err("expected { after #".to_owned());
        }
        let mut no_name = Some(String::new());
        self.labels(&mut no_name)?;
        if !self.blanks() {
            return Err("no value".to_owned());
        }
        let token = self.token();
        number(token).ok_or_else(|| format!("{token:?} is not a number"))?;
        self.blanks();
        if !self.at_end() {
            let token = self.token();
            number(token).ok_or_else(|| format!("{token:?} is not a timestamp"))?;
            self.blanks();
        }
        Ok(())
    }
}
