//! Enter on a host: everything the console knows of it on one page: what it
//! runs and ran, whether a rollback can switch at once, its last change,
//! health, traffic, lock, a change it carries, its connection, and its
//! last log lines (PgUp/PgDn). `j`/`k` go to the next host.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, parse_time};
use super::super::theme::Theme;
use super::health::{HostCells, host_cells, state};
use super::{ago, clock, fit, pane};
use crate::engine::journal::Liveness;
use crate::monitor::HostKey;

/// The label column.
const LABEL: usize = 13;

/// One fact of the host's page: label, text, style.
type Fact = (&'static str, String, Style);

/// The facts of the selected host, a line each.
fn facts(app: &App, key: HostKey, theme: &Theme) -> Vec<Fact> {
    let cells = host_cells(app, key);
    let mut out = releases(app, key, &cells, theme);
    out.extend(health(app, key, &cells, theme));
    out.extend(hold(app, key, &cells, theme));
    out
}

/// What it runs, what a rollback goes back to, and its last change.
fn releases(app: &App, key: HostKey, cells: &HostCells, theme: &Theme) -> Vec<Fact> {
    let view = app.monitor.host(key).and_then(|m| m.view.as_ref());
    let runs = match (view, &cells.current) {
        (None, _) => "not read yet…".to_owned(),
        (Some(_), None) => "nothing (no release is current)".to_owned(),
        (Some(_), Some(r)) => match &cells.slot {
            Some(slot) => format!("{r} on the {slot} slot"),
            None => r.clone(),
        },
    };
    let (back, style) = match (&cells.previous, cells.rollback_ready) {
        (Some(p), _) if cells.switch_back => (
            format!("{p} · rollback ready: it still runs on the other slot (the switch back)"),
            theme.ok(),
        ),
        (Some(p), true) => (format!("{p} · rollback ready: on disk"), theme.ok()),
        (Some(p), false) => (
            format!("{p} · NOT rollback-ready: gone from disk, a rollback uploads it again"),
            theme.warn(),
        ),
        (None, _) if view.is_some() => ("none: nothing to roll back to".to_owned(), theme.dim()),
        (None, _) => ("-".to_owned(), theme.dim()),
    };
    let mut out = vec![("runs", runs, theme.title()), ("previous", back, style)];
    let env = &app.envs[key.env].name;
    if let Some(r) = view.and_then(|v| v.history.iter().rev().find(|r| &r.env == env)) {
        let when = parse_time(&r.time)
            .map(|t| format!("{} ({} ago)", clock(t), ago(t, app.now)))
            .unwrap_or_else(|| r.time.clone());
        let what = match (&r.from, &r.release) {
            (Some(f), Some(t)) => format!(" {f} → {t}"),
            (None, Some(t)) => format!(" {t}"),
            _ => String::new(),
        };
        let failed = r.outcome != crate::model::Outcome::Success;
        let outcome = if failed { "FAILED" } else { "success" };
        let how = match &r.message {
            Some(m) => format!("{outcome} ({})", app.on_screen(m)),
            None => outcome.to_owned(),
        };
        out.push((
            "last change",
            format!(
                "{when} {}{what} by {}: {how}",
                r.action.as_str(),
                r.operator
            ),
            if failed { theme.bad() } else { Style::new() },
        ));
    }
    out
}

/// Health, with the last probe's answer; traffic; the machine.
fn health(app: &App, key: HostKey, cells: &HostCells, theme: &Theme) -> Vec<Fact> {
    let m = app.monitor.host(key);
    let (glyph, word, style) = state(cells, theme);
    let mut health = format!("{glyph} {word}");
    if let Some(l) = cells.last_latency.filter(|_| cells.disconnected.is_none()) {
        health.push_str(&format!(" · {l}ms"));
    }
    if let Some(sample) = m.and_then(|m| m.health.as_ref()) {
        health.push_str(&format!(
            " · last probe {}: {}",
            clock(sample.at),
            sample.detail
        ));
    }
    if let Some(n) = m.map(|m| m.consecutive_failures).filter(|n| *n > 0) {
        health.push_str(&format!(" · {n} not healthy in a row"));
    }
    let mut traffic = Vec::new();
    if let Some(r) = m.and_then(|m| m.request_rate()) {
        traffic.push(format!("{r:.1} req/s"));
    }
    if let Some(e) = cells.error_ratio {
        traffic.push(format!("{:.1}% errors", e * 100.0));
    }
    traffic.push(format!("{:.0} error lines/min", cells.error_lines_per_min));
    let mut out = vec![
        ("health", health, style),
        ("traffic", traffic.join(" · "), Style::new()),
    ];
    if let Some((used, total)) = cells.mem {
        let cpu = cells.cpu_pct.map_or("-".to_owned(), |c| format!("{c:.0}%"));
        let load = m
            .and_then(|m| m.load1())
            .map_or(String::new(), |l| format!(" · load {l:.2}"));
        out.push((
            "system",
            format!(
                "cpu {cpu} · memory {} of {} ({:.0}%){load}",
                crate::engine::bytes(used),
                crate::engine::bytes(total),
                used as f64 * 100.0 / total.max(1) as f64
            ),
            Style::new(),
        ));
    }
    out
}

/// Its lock, a change it carries, its connection and log follow, what is
/// on its disk, and history lines that are not records.
fn hold(app: &App, key: HostKey, cells: &HostCells, theme: &Theme) -> Vec<Fact> {
    let m = app.monitor.host(key);
    let view = m.and_then(|m| m.view.as_ref());
    let mut out = vec![match &cells.lock {
        Some(l) => ("lock", format!("held by {l}"), theme.warn()),
        None => ("lock", "none".to_owned(), theme.dim()),
    }];
    if let Some(c) = view.and_then(|v| v.change.as_deref()) {
        let (what, style) = match c.liveness {
            Liveness::Interrupted => ("⚠ INTERRUPTED", theme.bad()),
            Liveness::Elsewhere => ("⚠ in progress elsewhere", theme.warn()),
            Liveness::Running => ("▶ in progress", theme.warn()),
        };
        let text = format!(
            "{what}: {} {} by {} · {}",
            c.kind.as_str(),
            c.release,
            c.operator,
            app.on_screen(&c.position)
        );
        out.push(("change", text, style));
    }
    out.push(match (&cells.disconnected, m.and_then(|m| m.connected)) {
        (Some(why), _) => {
            let retry = m.and_then(|m| m.retry_in).map_or(String::new(), |d| {
                format!(", trying again in {}s", d.as_secs().max(1))
            });
            (
                "connection",
                format!("⊘ unreachable: {why}{retry}"),
                theme.bad(),
            )
        }
        (None, Some(true)) => ("connection", "connected".to_owned(), Style::new()),
        (None, _) => ("connection", "connecting…".to_owned(), theme.dim()),
    });
    if let Some(down) = m.and_then(|m| m.logs_down.as_ref()) {
        out.push(("logs", format!("not followed: {down}"), theme.warn()));
    }
    if let Some(n) = m.map(|m| m.logs_dropped).filter(|n| *n > 0) {
        let said = format!(
            "{} lines dropped: they came faster than the screen took them",
            crate::model::fit::grouped(n)
        );
        out.push(("logs", said, theme.warn()));
    }
    if let Some(v) = view {
        let on_disk: Vec<String> = v.releases.iter().map(ToString::to_string).collect();
        let text = if on_disk.is_empty() {
            "no release".to_owned()
        } else {
            on_disk.join(" ")
        };
        out.push(("on disk", text, theme.dim()));
    }
    if !cells.corrupt_history.is_empty() {
        let n: Vec<String> = cells
            .corrupt_history
            .iter()
            .map(ToString::to_string)
            .collect();
        out.push((
            "history",
            format!(
                "⚠ line {} is not a record (shown, never skipped)",
                n.join(", ")
            ),
            theme.bad(),
        ));
    }
    out
}

/// Rows left for log lines in `body` under `facts` facts.
fn log_rows(body: Rect, facts: usize) -> usize {
    (body.height as usize).saturating_sub(2 + facts + 1)
}

pub fn extent(app: &App, body: Rect) -> (usize, usize) {
    let key = app.selected_host();
    let total = app.monitor.host(key).map_or(0, |m| m.log_len());
    let facts = facts(app, key, &Theme { color: false }).len();
    (total, log_rows(body, facts))
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let key = app.selected_host();
    let width = area.width.saturating_sub(2) as usize;
    let facts = facts(app, key, theme);
    let mut lines: Vec<Line> = facts
        .iter()
        .map(|(label, text, style)| {
            Line::from(vec![
                Span::styled(format!("{label:<LABEL$}"), theme.dim()),
                Span::styled(fit(text, width.saturating_sub(LABEL)), *style),
            ])
        })
        .collect();
    let rows = log_rows(area, facts.len());
    let total = app.monitor.host(key).map_or(0, |m| m.log_len());
    let scroll = app.page_scroll.min(total.saturating_sub(rows));
    let logs = app
        .monitor
        .logs_before(Some(key), None, rows + scroll, None);
    let end = logs.len().saturating_sub(scroll);
    let shown = &logs[end.saturating_sub(rows)..end];
    let place = if scroll > 0 {
        format!(" ({scroll} newer below · G: newest) ")
    } else {
        " (newest last · PgUp: older) ".to_owned()
    };
    let head = format!("── last log lines{place}");
    let rule = "─".repeat(width.saturating_sub(head.chars().count()));
    lines.push(Line::from(Span::styled(
        fit(&format!("{head}{rule}"), width),
        theme.dim(),
    )));
    if shown.is_empty() {
        lines.push(Line::from(Span::styled("no log lines yet", theme.dim())));
    }
    for e in shown {
        let style = if e.line.error {
            theme.bad()
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", clock(e.line.received)), theme.dim()),
            Span::styled(fit(&e.line.text, width.saturating_sub(9)), style),
        ]));
    }
    let env = &app.envs[key.env].name;
    let address = &app.config.environments[key.env].hosts[key.host].name;
    let name = app.host_name(key);
    let mut title = vec![
        Span::styled(format!(" {name} "), theme.title()),
        Span::styled(format!("· {env} "), theme.title()),
    ];
    if address != name {
        title.push(Span::styled(format!("· {address} "), theme.dim()));
    }
    title.push(Span::styled("· j/k: next host · Esc: back ", theme.dim()));
    frame.render_widget(
        Paragraph::new(lines).block(pane(Line::from(title), true, theme)),
        area,
    );
}
