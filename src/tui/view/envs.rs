//! Environments and their hosts: what each runs, what a rollback would go
//! to, health at a glance, who holds a lock, and a change another process
//! left running or interrupted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Pane};
use super::super::theme::Theme;
use super::health::{dot, host_cells};
use super::{fit, focused, pane, widest_host};
use crate::engine::journal::{ChangeInfo, Liveness};
use crate::monitor::HostKey;

/// The change a host of environment `env` carries that is not this
/// console's: an interrupted one first, then one on another machine, then one
/// of another process here.
fn foreign_change(app: &App, env: usize) -> Option<&ChangeInfo> {
    let ours = app.change.as_ref().map(|c| c.id.as_str());
    let infos: Vec<&ChangeInfo> = (0..app.envs[env].hosts.len())
        .filter_map(|host| app.monitor.host(HostKey { env, host }))
        .filter_map(|h| h.view.as_ref()?.change.as_deref())
        .filter(|c| Some(c.change.as_str()) != ours)
        .collect();
    [
        Liveness::Interrupted,
        Liveness::Elsewhere,
        Liveness::Running,
    ]
    .into_iter()
    .find_map(|l| infos.iter().copied().find(|c| c.liveness == l))
}

/// Lines the pane needs, borders aside.
pub fn rows(app: &App) -> u16 {
    (0..app.envs.len())
        .map(|e| 1 + app.envs[e].hosts.len() as u16 + notice_rows(foreign_change(app, e)))
        .sum()
}

fn notice_rows(info: Option<&ChangeInfo>) -> u16 {
    match info.map(|c| c.liveness) {
        None => 0,
        Some(Liveness::Running) => 1,
        Some(Liveness::Interrupted | Liveness::Elsewhere) => 2,
    }
}

/// How long ago an RFC 3339 time was, shortly: `45s`, `12m`, `5h`, `3d`.
fn age(started: &str, now: std::time::SystemTime) -> Option<String> {
    let t = time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339)
        .ok()?;
    let secs = (time::OffsetDateTime::from(now) - t).whole_seconds().max(0);
    Some(match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    })
}

/// What the operator must know of a change this console does not run.
fn notice(app: &App, env: &str, c: &ChangeInfo, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let what = format!("{} {} by {}", c.kind.as_str(), c.release, c.operator);
    let ago = age(&c.started, app.now)
        .map(|a| format!(", {a} ago"))
        .unwrap_or_default();
    let line = |text: String, style: Style| Line::from(Span::styled(fit(&text, width), style));
    match c.liveness {
        Liveness::Interrupted => vec![
            line(format!("⚠ INTERRUPTED {what}{ago}"), theme.bad()),
            line(
                if app.readonly {
                    format!("  shipdeck resume {env} (or rollback)")
                } else {
                    format!("  shipdeck resume {env} · or R to undo")
                },
                theme.bad(),
            ),
        ],
        Liveness::Elsewhere => vec![
            line(
                format!("⚠ IN PROGRESS ELSEWHERE {what}{ago}"),
                theme.warn_bold(),
            ),
            line(
                format!("  if it died there: shipdeck resume {env}"),
                theme.warn(),
            ),
        ],
        Liveness::Running => vec![line(
            format!("▶ IN PROGRESS {what}{ago} (another shipdeck)"),
            theme.warn(),
        )],
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width.saturating_sub(2) as usize;
    let name_w = widest_host(app).clamp(8, (width / 3).max(8));
    let mut lines = Vec::new();
    let mut selected_line = 0;
    for (e, env) in app.envs.iter().enumerate() {
        let mut header = vec![
            Span::styled(env.name.clone(), theme.title()),
            Span::styled(format!("  {}", env.strategy), theme.dim()),
        ];
        if let Some(req) = &env.requires {
            header.push(Span::styled(format!("  requires {req}"), theme.dim()));
        }
        lines.push(Line::from(header));
        if let Some(c) = foreign_change(app, e) {
            lines.extend(notice(app, &env.name, c, width, theme));
        }
        for (h, name) in env.hosts.iter().enumerate() {
            let key = HostKey { env: e, host: h };
            let cells = host_cells(app, key);
            let (symbol, style) = dot(&cells, theme);
            let release = cells.current.clone().unwrap_or_else(|| "-".into());
            let back = match (&cells.previous, cells.rollback_ready) {
                (Some(p), true) => format!("↩ {p}"),
                (Some(p), false) => format!("↩ {p} (gone)"),
                (None, _) => "↩ -".into(),
            };
            let mut spans = vec![
                Span::raw(" "),
                Span::styled(symbol, style),
                Span::raw(" "),
                Span::raw(fit(name, name_w)),
                Span::raw(" "),
                Span::styled(fit(&release, 10), theme.title()),
                Span::raw(" "),
                Span::styled(
                    fit(&back, 14),
                    if cells.rollback_ready {
                        theme.dim()
                    } else {
                        theme.warn()
                    },
                ),
            ];
            if let Some(lock) = &cells.lock {
                spans.push(Span::styled(format!(" 🔒 {lock}"), theme.warn()));
            } else if let Some(reason) = &cells.disconnected {
                spans.push(Span::styled(format!(" {reason}"), theme.bad()));
            }
            let mut line = Line::from(spans);
            if e == app.env_cursor && h == app.host_cursor {
                selected_line = lines.len();
                if focused(app, Pane::Environments) {
                    line = line.style(theme.selected());
                }
            }
            lines.push(line);
        }
    }
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = selected_line.saturating_sub(visible.saturating_sub(1));
    let title = Line::from(Span::styled(" Environments ", theme.title()));
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)).block(pane(
            title,
            focused(app, Pane::Environments),
            theme,
        )),
        area,
    );
}
