//! The rooms of `src/` and the arrows allowed between them
//! (docs/ARCHITECTURE.md): every arrow points down. A `crate::…` path in a
//! room that is not allowed to see that room fails this test, as does
//! ratatui or crossterm outside the console, and shell quoting outside
//! `host` (the one room that writes shell; `model` defines `quote`, and the
//! ssh transport wraps each script in one quoted `sh -c` word).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each room and the rooms it may use, bottom first.
const ROOMS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("signal", &["model"]),
    ("config", &["model"]),
    ("transport", &["model", "config", "signal"]),
    ("store", &["model", "config"]),
    ("host", &["model", "config", "transport", "signal"]),
    (
        "monitor",
        &["model", "config", "transport", "host", "signal"],
    ),
    (
        "engine",
        &[
            "model",
            "config",
            "transport",
            "store",
            "host",
            "monitor",
            "signal",
        ],
    ),
    (
        "demo",
        &[
            "model",
            "config",
            "transport",
            "store",
            "host",
            "monitor",
            "engine",
            "signal",
        ],
    ),
    (
        "tui",
        &[
            "model",
            "config",
            "transport",
            "store",
            "host",
            "monitor",
            "engine",
            "signal",
        ],
    ),
    (
        "cli",
        &[
            "model",
            "config",
            "transport",
            "store",
            "host",
            "monitor",
            "engine",
            "signal",
            "demo",
            "tui",
        ],
    ),
];

/// Crates only the console may use.
const TERMINAL_CRATES: &[&str] = &["ratatui", "crossterm"];

/// Where shell text may be quoted: `host` writes every script, `model`
/// holds the rule, and the ssh transport's `sh -c` wrapper is the one
/// exception (see `transport/ssh`).
fn may_quote_shell(room: &str, file: &str) -> bool {
    matches!(room, "host" | "model") || file.starts_with("transport/ssh/")
}

fn room_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a line, without its `//` comment.
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

/// Every rule `text` (the source of `file`, in `room`) breaks.
fn violations(room: &str, file: &str, text: &str) -> Vec<String> {
    let Some((_, allowed)) = ROOMS.iter().find(|(r, _)| *r == room) else {
        // lib.rs and main.rs, above every room.
        return Vec::new();
    };
    let mut found = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = code(line);
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let target: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let is_path = !rest[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if is_path && target != room && !allowed.contains(&target.as_str()) {
                found.insert(format!(
                    "line {}: {room} uses {target}: {}",
                    n + 1,
                    line.trim()
                ));
            }
            rest = after;
        }
        if !may_quote_shell(room, file) && (line.contains("quote(") || line.contains("sh::quote")) {
            found.insert(format!(
                "line {}: {room} quotes shell, which only host writes: {}",
                n + 1,
                line.trim()
            ));
        }
        if room != "tui" {
            for krate in TERMINAL_CRATES {
                if line.contains(&format!("{krate}::")) {
                    found.insert(format!(
                        "line {}: {room} uses {krate}, which only tui may: {}",
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found.into_iter().collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_arrow_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut rooms_seen = BTreeSet::new();
    let mut broken = Vec::new();
    for file in &files {
        let room = room_of(&src, file);
        rooms_seen.insert(room.clone());
        let text = fs::read_to_string(file).unwrap();
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for v in violations(&room, &rel, &text) {
            broken.push(format!(
                "{}: {v}",
                file.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the arrows of docs/ARCHITECTURE.md:\n{}",
        broken.join("\n")
    );
    // A new room must be given its place, or nothing would check it.
    let known: BTreeSet<String> = ROOMS.iter().map(|(r, _)| (*r).to_owned()).collect();
    let unknown: Vec<&String> = rooms_seen
        .iter()
        .filter(|r| !known.contains(*r) && !["lib", "main"].contains(&r.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "rooms without a place in ROOMS: {unknown:?}"
    );
}

#[test]
fn an_import_against_the_arrows_is_caught() {
    assert_eq!(
        violations("model", "x.rs", "use crate::engine::canary::Verdict;\n"),
        ["line 1: model uses engine: use crate::engine::canary::Verdict;"]
    );
    assert_eq!(
        violations(
            "monitor",
            "monitor/x.rs",
            "    let t = crate::engine::CancelToken::new(); // now\n"
        )
        .len(),
        1
    );
    assert_eq!(
        violations("host", "x.rs", "use ratatui::text::Line;\n").len(),
        1
    );
    assert_eq!(
        violations(
            "engine",
            "engine/x.rs",
            "let s = format!(\"rm -f {}\", quote(&p));\n"
        )
        .len(),
        1
    );
    assert!(violations("host", "host/ops.rs", "let s = quote(&p);\n").is_empty());
    assert!(violations("transport", "transport/ssh/mod.rs", "quote(script)\n").is_empty());
    // Allowed arrows, comments and other crates' `crate::` are not.
    assert!(
        violations(
            "engine",
            "engine/x.rs",
            "use crate::monitor::logs;\nuse crate::host::Layout;\n"
        )
        .is_empty()
    );
    assert!(violations("model", "x.rs", "// see crate::engine::change\n").is_empty());
    assert!(
        violations(
            "tui",
            "x.rs",
            "use ratatui::Frame;\nuse crate::engine::Event;\n"
        )
        .is_empty()
    );
    assert!(violations("config", "x.rs", "use mycrate::engine::X;\n").is_empty());
}
