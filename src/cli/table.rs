//! Plain-text tables for people; `--json` prints the same data for scripts.

use std::collections::BTreeMap;

use crate::engine::history::passed_gate;
use crate::engine::{
    ChangeReport, CheckReport, Engine, EngineError, HostStatus, Plan, bytes, human_duration,
    short_sha,
};
use crate::model::HistoryRecord;
use crate::store::LocalRelease;

/// Columns padded to their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

pub fn status(status: &[HostStatus]) {
    let rows: Vec<Vec<String>> = status.iter().map(status_row).collect();
    print_table(
        &[
            "ENV", "HOST", "CURRENT", "PREVIOUS", "ROLLBACK", "HEALTH", "LOCK",
        ],
        &rows,
    );
    for w in status.iter().flat_map(|s| &s.history_warnings) {
        println!("\n{w}");
    }
    for s in status {
        if let (Some(env_on), Some(runs)) = (&s.behind, &s.current) {
            println!(
                "\n{}: behind: runs {runs}, {} on {env_on}; `shipdeck rollback {env} --to {env_on}` or `shipdeck deploy {env} {env_on}` brings it in line",
                s.host,
                s.env,
                env = s.env
            );
        }
    }
    // A change in progress or interrupted is said once per environment, under
    // the table, where a long line does not break its columns.
    let mut said: Vec<(&str, &str)> = Vec::new();
    for s in status {
        if let Some(c) = &s.change
            && !said.contains(&(s.env.as_str(), c.change.as_str()))
        {
            said.push((&s.env, &c.change));
            let at: Vec<&str> = status
                .iter()
                .filter_map(|o| o.change.as_ref())
                .filter(|o| o.change == c.change)
                .map(|o| o.position.as_str())
                .collect();
            println!("\n{}: {}", s.env, c.describe_at(&at.join("; ")));
        }
    }
    for s in status {
        if let Some(p) = &s.pending_finish {
            println!(
                "\n{}",
                crate::engine::bluegreen::describe_pending(&s.env, &s.host, p)
            );
        }
    }
}

/// One host's row of the `status` table.
fn status_row(s: &HostStatus) -> Vec<String> {
    if !s.reachable {
        return vec![
            s.env.clone(),
            s.host.clone(),
            "?".into(),
            "?".into(),
            "?".into(),
            "unreachable".into(),
            or_dash(s.error.as_ref()),
        ];
    }
    vec![
        s.env.clone(),
        s.host.clone(),
        match &s.behind {
            Some(env_on) => format!("{} BEHIND ({env_on})", or_dash(s.current.as_ref())),
            None => or_dash(s.current.as_ref()),
        },
        or_dash(s.previous.as_ref()),
        match (&s.previous, s.rollback_ready) {
            (None, _) => "-".into(),
            (Some(p), true) => format!("ready ({p})"),
            (Some(_), false) => "NO (previous not on disk)".into(),
        },
        match &s.health_detail {
            Some(d) => format!("{} ({d})", s.health),
            None => s.health.clone(),
        },
        or_dash(s.lock.as_ref()),
    ]
}

pub fn check(report: &CheckReport) {
    let rows: Vec<Vec<String>> = report
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.env.clone(),
                h.host.clone(),
                if h.problems.is_empty() {
                    "ok".into()
                } else {
                    "FAILED".into()
                },
                or_dash(h.free_bytes.map(bytes)),
                or_dash(h.lock.as_ref()),
                h.problems.join("; "),
            ]
        })
        .collect();
    print_table(&["ENV", "HOST", "CHECK", "FREE", "LOCK", "PROBLEMS"], &rows);
    for h in &report.hosts {
        if let Some(reached) = &h.reached {
            println!("{}: reached as {reached}", h.host);
        }
    }
    let failed = report
        .hosts
        .iter()
        .filter(|h| !h.problems.is_empty())
        .count();
    let locked = report.hosts.iter().filter(|h| h.lock.is_some()).count();
    println!(
        "{} host{} checked: {failed} with problems, {locked} locked",
        report.hosts.len(),
        if report.hosts.len() == 1 { "" } else { "s" }
    );
}

#[derive(Debug, serde::Serialize)]
pub struct ReleaseRow {
    pub id: String,
    pub created_at: String,
    pub sha256: String,
    pub size: u64,
    pub git_commit: Option<String>,
    /// Environment → hosts running this release.
    pub runs_on: BTreeMap<String, Vec<String>>,
    /// Environments where every host passed its health gate with this artifact.
    pub passed: Vec<String>,
}

pub fn release_rows(
    engine: &Engine,
    releases: &[LocalRelease],
    status: &[HostStatus],
) -> Vec<ReleaseRow> {
    releases
        .iter()
        .map(|r| {
            let m = &r.manifest;
            let mut runs_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for s in status.iter().filter(|s| s.current.as_ref() == Some(&m.id)) {
                runs_on
                    .entry(s.env.clone())
                    .or_default()
                    .push(s.host.clone());
            }
            let passed = engine
                .config
                .environments
                .iter()
                .filter(|e| {
                    let hosts: Vec<&HostStatus> =
                        status.iter().filter(|s| s.env == e.name).collect();
                    !hosts.is_empty()
                        && hosts.iter().all(|s| {
                            s.state
                                .as_ref()
                                .is_some_and(|st| passed_gate(&st.history, &m.id, &m.sha256))
                        })
                })
                .map(|e| e.name.clone())
                .collect();
            ReleaseRow {
                id: m.id.to_string(),
                created_at: m.created_at.clone(),
                sha256: m.sha256.clone(),
                size: m.size,
                git_commit: m.git_commit.clone(),
                runs_on,
                passed,
            }
        })
        .collect()
}

pub fn releases(rows: &[ReleaseRow]) {
    if rows.is_empty() {
        println!("no releases yet: build one with `shipdeck build`");
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.created_at.clone(),
                short_sha(&r.sha256).to_owned(),
                bytes(r.size),
                if r.runs_on.is_empty() {
                    "-".into()
                } else {
                    r.runs_on
                        .iter()
                        .map(|(env, hosts)| format!("{env}: {}", hosts.join(" ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                },
                if r.passed.is_empty() {
                    "-".into()
                } else {
                    r.passed.join(", ")
                },
            ]
        })
        .collect();
    print_table(
        &["RELEASE", "CREATED", "SHA256", "SIZE", "RUNS ON", "PASSED"],
        &table,
    );
}

pub fn plan(plan: &Plan, refused: Option<&EngineError>) {
    println!(
        "plan: {} {} to {} ({})",
        plan.kind.as_str(),
        or_dash(plan.release.as_ref()),
        plan.env,
        plan.strategy
    );
    if let Some(r) = refused {
        println!("REFUSED: {r}");
    }
    if plan.is_empty() {
        println!("nothing to do: every host already runs it");
        return;
    }
    let w = plan.hosts.iter().map(|h| h.name.len()).max().unwrap_or(8);
    let steps =
        |s: &[crate::engine::Step]| s.iter().map(|s| s.label()).collect::<Vec<_>>().join(", ");
    println!("prepare, on every host before any host switches:");
    for h in plan.active() {
        println!(
            "  {:<w$}  {} -> {}  {}",
            h.name,
            or_dash(h.from.as_ref()),
            or_dash(h.to.as_ref()),
            if h.prepare.is_empty() {
                "(nothing to prepare)".into()
            } else {
                steps(&h.prepare)
            }
        );
    }
    for (i, batch) in plan.batches.iter().enumerate() {
        println!("batch {}/{}:", i + 1, plan.batches.len());
        for &h in batch {
            println!(
                "  {:<w$}  {}",
                plan.hosts[h].name,
                steps(&plan.hosts[h].publish)
            );
        }
    }
    for h in plan.hosts.iter().filter(|h| h.skip.is_some()) {
        println!("skip {:<w$}  {}", h.name, or_dash(h.skip.as_ref()));
    }
    println!(
        "on failure: switched hosts go back to what they ran (after more than {} failed host{})",
        plan.max_failures,
        if plan.max_failures == 1 { "" } else { "s" }
    );
}

pub fn change(report: &ChangeReport) {
    let rows: Vec<Vec<String>> = report
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.host.clone(),
                or_dash(h.from.as_ref()),
                or_dash(h.to.as_ref()),
                h.result.clone(),
                or_dash(h.error.as_ref()),
            ]
        })
        .collect();
    print_table(&["HOST", "FROM", "TO", "RESULT", "DETAIL"], &rows);
    println!(
        "{} in {}",
        report.summary,
        human_duration(std::time::Duration::from_millis(report.duration_ms))
    );
}

/// One line per change (its records across hosts merged), oldest first:
/// the lines the console's history view lists too (`model::history::changes`).
pub fn history(records: &[HistoryRecord]) {
    let rows: Vec<Vec<String>> = crate::model::history::changes(records)
        .iter()
        .map(|change| {
            let first = change.first();
            vec![
                crate::model::time::to_the_second(&first.time),
                first.env.clone(),
                first.action.as_str().to_owned(),
                or_dash(first.release.as_ref()),
                or_dash(first.from.as_ref()),
                first.operator.to_string(),
                change.outcome(),
                change.message().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "TIME", "ENV", "ACTION", "RELEASE", "FROM", "WHO", "OUTCOME", "MESSAGE",
        ],
        &rows,
    );
}
