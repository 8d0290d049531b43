//! OpenSSH's client config (`ssh_config(5)`), read as `ssh` reads it: the
//! first value of a keyword wins (every `IdentityFile` counts), `Host` and
//! `Match` blocks apply by pattern, and `Include` pulls files in where it
//! stands. Only the keywords shipdeck uses are kept; the others are read
//! over, and `Match exec` is refused rather than run.
//!
//! No crate was used: the ones on crates.io either drop `Match` or
//! `Include`, or keep no line numbers, and `check` names the line each
//! setting came from.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ConfigError;
use crate::model::pattern::{list_matches, wildcard};

/// Deeper than this, an `Include` is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
    span: Range<usize>,
}

#[derive(Debug)]
struct Line {
    /// Lower case: ssh_config keywords are case-insensitive.
    keyword: String,
    args: Vec<String>,
    number: usize,
    span: Range<usize>,
    /// For `Include`: the files it names, in order.
    includes: Vec<PathBuf>,
}

#[derive(Debug)]
struct File {
    source: String,
    lines: Vec<Line>,
}

/// A config file and every file it includes, read and checked once.
#[derive(Debug, Default)]
pub struct SshConfig {
    root: Option<PathBuf>,
    files: HashMap<PathBuf, File>,
    home: PathBuf,
}

/// What to match `Host` and `Match` lines against.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The name as the operator wrote it.
    pub alias: &'a str,
    /// The remote user shipdeck has so far (its own setting), if any.
    pub user: Option<&'a str>,
    pub local_user: &'a str,
}

/// The values that apply to one host: the first of each keyword, and every
/// `IdentityFile` and `UserKnownHostsFile` in order.
#[derive(Debug, Default, Clone)]
pub struct Found {
    values: Vec<(String, Vec<String>, Place)>,
    pub identity_files: Vec<(String, Place)>,
}

impl Found {
    pub fn get(&self, keyword: &str) -> Option<(&[String], &Place)> {
        self.values
            .iter()
            .find(|(k, _, _)| k == keyword)
            .map(|(_, args, place)| (args.as_slice(), place))
    }

    fn first(&self, keyword: &str) -> Option<&str> {
        self.get(keyword)
            .and_then(|(args, _)| args.first().map(String::as_str))
    }
}

/// Keywords whose value shipdeck uses (or refuses, for `proxycommand`).
const KEPT: &[&str] = &[
    "hostname",
    "user",
    "port",
    "identityfile",
    "identitiesonly",
    "proxyjump",
    "proxycommand",
    "serveraliveinterval",
    "connecttimeout",
    "userknownhostsfile",
];

impl SshConfig {
    /// An empty config: no file is read.
    pub fn none(home: &Path) -> Self {
        SshConfig {
            home: home.to_owned(),
            ..Default::default()
        }
    }

    /// Read `path` and its includes. A missing file is an empty config when
    /// it was not asked for by name (the default `~/.ssh/config`).
    pub fn load(path: &Path, home: &Path, required: bool) -> Result<Self, ConfigError> {
        let mut config = SshConfig::none(home);
        if !required && !path.exists() {
            return Ok(config);
        }
        config.read(path, 0)?;
        config.root = Some(path.to_owned());
        Ok(config)
    }

    /// The path `~/` and relative names in this config resolve against.
    pub fn home(&self) -> &Path {
        &self.home
    }

    fn read(&mut self, path: &Path, depth: usize) -> Result<(), ConfigError> {
        if self.files.contains_key(path) {
            return Ok(());
        }
        let source = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::whole_file(path, format!("cannot read this ssh config file: {e}"))
        })?;
        let mut lines = Vec::new();
        let mut offset = 0;
        for (i, text) in source.split_inclusive('\n').enumerate() {
            let span = offset..offset + text.trim_end().len();
            offset += text.len();
            let at = |message: String| ConfigError::at(path, &source, Some(span.clone()), message);
            let Some((keyword, args)) = split_line(text).map_err(&at)? else {
                continue;
            };
            if args.is_empty() && keyword != "host" && keyword != "match" {
                return Err(at(format!("{keyword} needs a value")));
            }
            let includes = if keyword == "include" {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(at(
                        "Include nested too deep (a file includes itself?)".into()
                    ));
                }
                args.iter().flat_map(|a| self.include_paths(a)).collect()
            } else {
                Vec::new()
            };
            lines.push(Line {
                keyword,
                args,
                number: i + 1,
                span,
                includes,
            });
        }
        let nested: Vec<PathBuf> = lines.iter().flat_map(|l| l.includes.clone()).collect();
        self.files.insert(path.to_owned(), File { source, lines });
        for file in nested {
            self.read(&file, depth + 1)?;
        }
        Ok(())
    }

    /// Files an `Include` argument names: `~/` is the home folder, a
    /// relative path is under `~/.ssh`, and the last part may be a pattern.
    fn include_paths(&self, arg: &str) -> Vec<PathBuf> {
        let path = match arg.strip_prefix("~/") {
            Some(rest) => self.home.join(rest),
            None if Path::new(arg).is_absolute() => PathBuf::from(arg),
            None => self.home.join(".ssh").join(arg),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?']) {
            return if path.is_file() {
                vec![path]
            } else {
                Vec::new()
            };
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found
    }

    /// The values that apply to one host.
    pub fn lookup(&self, query: &Query<'_>) -> Result<Found, ConfigError> {
        let mut found = Found::default();
        if let Some(root) = &self.root {
            self.walk(root, true, query, &mut found)?;
        }
        Ok(found)
    }

    fn walk(
        &self,
        path: &Path,
        mut active: bool,
        query: &Query<'_>,
        found: &mut Found,
    ) -> Result<(), ConfigError> {
        let Some(file) = self.files.get(path) else {
            return Ok(());
        };
        for line in &file.lines {
            let place = || Place {
                file: path.to_owned(),
                line: line.number,
                span: line.span.clone(),
            };
            match line.keyword.as_str() {
                "host" => active = list_matches(line.args.iter().map(String::as_str), query.alias),
                "match" => {
                    active = self
                        .criteria_match(&line.args, query, found)
                        .map_err(|m| self.error_at(&place(), m))?;
                }
                "include" if active => {
                    for included in &line.includes {
                        self.walk(included, true, query, found)?;
                    }
                }
                "identityfile" if active => {
                    found.identity_files.push((line.args[0].clone(), place()));
                }
                keyword if active && KEPT.contains(&keyword) && found.get(keyword).is_none() => {
                    found
                        .values
                        .push((keyword.to_owned(), line.args.clone(), place()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `Match` criteria, all of which must hold; `!` negates one.
    fn criteria_match(
        &self,
        args: &[String],
        query: &Query<'_>,
        found: &Found,
    ) -> Result<bool, String> {
        if args.is_empty() {
            return Err("Match needs criteria, as in `Match host web*`".into());
        }
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let lower = word.to_lowercase();
            let (negated, criterion) = match lower.strip_prefix('!') {
                Some(c) => (true, c),
                None => (false, lower.as_str()),
            };
            let holds = match criterion {
                "all" => true,
                // shipdeck reads the file once, and that one pass is the final one.
                "final" => true,
                "canonical" => false,
                "host" | "originalhost" | "user" | "localuser" => {
                    let list = words
                        .next()
                        .ok_or_else(|| format!("Match {criterion} needs a pattern"))?;
                    let subject = match criterion {
                        "host" => found
                            .first("hostname")
                            .map(|h| h.replace("%h", query.alias))
                            .unwrap_or_else(|| query.alias.to_owned()),
                        "originalhost" => query.alias.to_owned(),
                        "user" => query
                            .user
                            .or(found.first("user"))
                            .unwrap_or(query.local_user)
                            .to_owned(),
                        _ => query.local_user.to_owned(),
                    };
                    list_matches([list.as_str()], &subject)
                }
                "exec" => {
                    return Err("Match exec is not supported: shipdeck does not run programs from ssh_config (give these hosts their settings in a Host block, or point [ssh] config at a file without it)".into());
                }
                other => {
                    return Err(format!(
                        "Match {other} is not supported (shipdeck knows all, host, originalhost, user, localuser, final, canonical)"
                    ));
                }
            };
            if holds == negated {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An error pointing at the line a value came from.
    pub fn error_at(&self, place: &Place, message: String) -> ConfigError {
        let source = self
            .files
            .get(&place.file)
            .map_or("", |f| f.source.as_str());
        ConfigError::at(&place.file, source, Some(place.span.clone()), message)
    }
}

/// `Keyword value…` or `Keyword=value…`, with `"quoted words"`; `None` for
/// a blank or comment line.
fn split_line(text: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(text.len());
    let keyword = text[..end].to_lowercase();
    let mut rest = text[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => word.push(ch),
                    None => return Err(format!("{keyword}: unclosed quote")),
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                if ch == '"' {
                    return Err(format!("{keyword}: a quote inside a word"));
                }
                word.push(ch);
                chars.next();
            }
        }
        args.push(word);
    }
    Ok(Some((keyword, args)))
}

#[cfg(test)]
#[path = "ssh_config_tests.rs"]
mod tests;
