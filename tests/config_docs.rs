//! docs/config.md cannot fall behind the config: every key the parser
//! accepts (the fields of each `deny_unknown_fields` struct in
//! `src/config/`) has a row there, and every row names a key it accepts.

use std::collections::BTreeSet;
use std::path::Path;

/// Where each struct's keys live in the file, as docs/config.md writes them.
/// A new struct must be placed here (and its keys documented).
const SECTIONS: &[(&str, &str)] = &[
    ("RawConfig", ""),
    ("RawApp", "app."),
    ("RawHooks", "hooks."),
    ("RawHealth", "health."),
    ("RawLogs", "logs."),
    ("RawMetrics", "metrics."),
    ("RawSsh", "ssh."),
    ("RawEnvironment", "environments.NAME."),
    ("RawHostTable", "environments.NAME.hosts[]."),
    ("RawEnvSsh", "environments.NAME.ssh."),
    ("RawStrategy", "environments.NAME.strategy."),
];

/// `(struct, field)` for each field of each struct that refuses unknown
/// keys, read from the source under `dir` (serde `rename`s applied).
fn schema_fields(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let strukt = regex::Regex::new(r"^pub(\(\w+\))? struct (\w+)").unwrap();
    let field = regex::Regex::new(r"^\s+pub(\(\w+\))? (r#)?(\w+):").unwrap();
    let rename = regex::Regex::new(r#"#\[serde\(.*rename = "([^"]+)""#).unwrap();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut denies = false;
        let mut current: Option<String> = None;
        let mut renamed: Option<String> = None;
        for line in text.lines() {
            if line.starts_with("#[serde(") && line.contains("deny_unknown_fields") {
                denies = true;
            } else if let Some(c) = strukt.captures(line) {
                current = denies.then(|| c[2].to_owned());
                denies = false;
            } else if line.starts_with('}') {
                current = None;
            } else if let Some(s) = &current {
                if let Some(r) = rename.captures(line) {
                    renamed = Some(r[1].to_owned());
                } else if let Some(f) = field.captures(line) {
                    let name = renamed.take().unwrap_or_else(|| f[3].to_owned());
                    out.push((s.clone(), name));
                }
            }
        }
    }
    out
}

/// The first backticked word of each table row of the reference.
fn documented(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_config_key_is_in_docs_config_md_and_every_row_is_a_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fields = schema_fields(&root.join("src/config"));
    let doc = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
    let rows = documented(&doc);
    // The reader must have found the schema, or this test proves nothing.
    for known in [
        ("RawApp", "deploy_to"),
        ("RawSsh", "port"),
        ("RawStrategy", "kind"),
    ] {
        assert!(
            fields
                .iter()
                .any(|(s, f)| (s.as_str(), f.as_str()) == known),
            "the schema reader missed {known:?}: {fields:?}"
        );
    }
    let mut missing = Vec::new();
    let mut keys = BTreeSet::new();
    for (strukt, name) in &fields {
        let Some((_, prefix)) = SECTIONS.iter().find(|(s, _)| s == strukt) else {
            missing.push(format!(
                "struct {strukt} (key {name}): place it in SECTIONS in tests/config_docs.rs"
            ));
            continue;
        };
        // Top-level keys are sections, documented as headings.
        let key = if prefix.is_empty() {
            let heading = if name == "environments" {
                "## `[environments.NAME]`".to_owned()
            } else {
                format!("## `[{name}]`")
            };
            if !doc.contains(&heading) {
                missing.push(format!("section heading {heading}"));
            }
            continue;
        } else {
            format!("{prefix}{name}")
        };
        if !rows.contains(&key) {
            missing.push(format!("a row for `{key}`"));
        }
        keys.insert(key);
    }
    assert!(
        missing.is_empty(),
        "docs/config.md lacks:\n  {}",
        missing.join("\n  ")
    );
    let stale: Vec<_> = rows
        .iter()
        .filter(|r| r.contains('.') && !r.starts_with("SHIPDECK_") && !keys.contains(*r))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/config.md documents keys the config refuses: {stale:?}"
    );
}
