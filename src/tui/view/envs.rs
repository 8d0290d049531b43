//! Environments and their hosts: what each runs, what a rollback would go
//! to, health at a glance, who holds a lock, and a change another process
//! left running or interrupted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::parse_time;
use super::super::app::{App, Overlay, Pane};
use super::super::theme::Theme;
use super::health::{dot, host_cells};
use super::{fit, focused, host_names, pad, pane, release_names, short, widest_host};
use crate::engine::journal::Liveness;
use crate::monitor::HostKey;

/// Lines the pane needs, borders aside.
pub fn rows(app: &App) -> u16 {
    (0..app.envs.len())
        .map(|e| {
            let notices = notices(app, e, 80, &Theme { color: false }).len();
            let shown = (0..app.envs[e].hosts.len())
                .filter(|&host| app.host_shown(HostKey { env: e, host }))
                .count();
            let hidden = usize::from(shown < app.envs[e].hosts.len());
            1 + (shown + hidden + notices) as u16
        })
        .sum()
}

/// How long ago an RFC 3339 time was, shortly: `45s`, `12m`, `5h`, `3d`.
fn age(started: &str, now: std::time::SystemTime) -> Option<String> {
    let t = parse_time(started)?;
    Some(short(now.duration_since(t).unwrap_or_default()))
}

/// What the operator must know of environment `e` beyond its hosts' rows:
/// a change this console does not run (interrupted, elsewhere, paused), and
/// the old slots a blue/green change keeps running.
fn notices(app: &App, e: usize, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let env = &app.envs[e].name;
    let line = |text: String, style: Style| Line::from(Span::styled(fit(&text, width), style));
    let mut out = Vec::new();
    if let Some(c) = app.foreign_change(e) {
        let what = format!("{} {} by {}", c.kind.as_str(), c.release, c.operator);
        let ago = age(&c.started, app.now)
            .map(|a| format!(", {a} ago"))
            .unwrap_or_default();
        let keys = !app.readonly;
        match c.liveness {
            Liveness::Interrupted => {
                out.push(line(format!("⚠ INTERRUPTED {what}{ago}"), theme.bad()));
                out.push(line(
                    if keys {
                        format!("  stopped at {} · r resume · R undo", c.position)
                    } else {
                        format!("  shipdeck resume {env} (or rollback) · at {}", c.position)
                    },
                    theme.bad(),
                ));
            }
            Liveness::Elsewhere => {
                let heard = age(&c.updated, app.now)
                    .map(|a| format!(", last heard {a} ago"))
                    .unwrap_or_default();
                out.push(line(
                    format!("⚠ IN PROGRESS ELSEWHERE {what}{ago}{heard}"),
                    theme.warn_bold(),
                ));
                if c.pause.is_none() {
                    out.push(line(
                        format!(
                            "  if it died there: shipdeck unlock {env} --force --reason …, then r"
                        ),
                        theme.warn(),
                    ));
                }
            }
            Liveness::Running => out.push(line(
                format!("▶ IN PROGRESS {what}{ago} (another shipdeck)"),
                theme.warn(),
            )),
        }
        if let Some((_, p)) = app.foreign_pause(e) {
            let waits = match (&p.until, &p.why) {
                (Some(_), _) => "goes on by itself",
                (None, Some(_)) => "analysis undecided, waiting for you",
                (None, None) => "waiting for you",
            };
            let steer = if keys && e == app.env_cursor && !app.change_running() {
                " · n next · P all · R abort"
            } else {
                ""
            };
            out.push(line(
                format!(
                    "  ⏸ PAUSED after step {}/{}: {waits}{steer}",
                    p.batch + 1,
                    p.of
                ),
                theme.warn_bold(),
            ));
        }
    }
    out.extend(unfinished(app, e, width, theme));
    out
}

/// The old slots a blue/green change keeps running, until it is finished.
fn unfinished(app: &App, e: usize, width: usize, theme: &Theme) -> Option<Line<'static>> {
    let unfinished = app.unfinished(e);
    let (_, first) = unfinished.first()?;
    let old = match (&first.old, &first.old_release) {
        (Some(slot), Some(r)) => format!("{slot} keeps {r}"),
        (None, Some(r)) => format!("{r} keeps running outside the slots"),
        (_, None) => "the old slot keeps running".to_owned(),
    };
    let when = first
        .due()
        .map(|at| match at.duration_since(app.now) {
            Ok(left) => format!(" (auto in {})", short(left)),
            Err(_) => " (due now)".to_owned(),
        })
        .unwrap_or_default();
    let hosts = app.envs[e].hosts.len();
    let some = if unfinished.len() < hosts {
        format!(" on {}/{hosts}", unfinished.len())
    } else {
        String::new()
    };
    // The host rows say `⇄ v1`: a rollback is the switch back.
    let until = if app.readonly {
        "until finished"
    } else {
        "until F finish"
    };
    let text = format!("⇄ {old}{some} {until}{when}");
    Some(Line::from(Span::styled(fit(&text, width), theme.dim())))
}

/// Release ids as the rows show them, fitted together.
const RELEASE_W: usize = 11;
const BACK_W: usize = 14;

/// Every id the environment rows show (current and previous of each
/// host), fitted together so two builds never read the same.
fn row_releases(app: &App) -> std::collections::HashMap<String, String> {
    let mut ids: Vec<String> = app
        .monitor
        .hosts()
        .filter_map(|(_, h)| h.view.as_ref())
        .flat_map(|v| [&v.current, &v.previous])
        .flatten()
        .map(ToString::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    release_names(&ids, RELEASE_W - 2)
}

/// What a host row needs to know of the rows around it.
struct Rows<'a> {
    names: Vec<Vec<String>>,
    name_w: usize,
    ids: std::collections::HashMap<String, String>,
    width: usize,
    theme: &'a Theme,
}

impl Rows<'_> {
    fn id(&self, r: &str) -> String {
        self.ids.get(r).cloned().unwrap_or_else(|| r.to_owned())
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width.saturating_sub(2) as usize;
    let name_w = widest_host(app).clamp(8, (width / 3).max(8));
    let rows = Rows {
        names: host_names(app, name_w),
        name_w,
        ids: row_releases(app),
        width,
        theme,
    };
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
        lines.extend(notices(app, e, width, theme));
        let env_on = environment_release(app, e);
        let mut hidden = 0;
        for h in 0..env.hosts.len() {
            if !app.host_shown(HostKey { env: e, host: h }) {
                hidden += 1;
                continue;
            }
            let mut line = host_row(app, HostKey { env: e, host: h }, &rows, env_on.as_ref());
            if e == app.env_cursor && h == app.host_cursor {
                selected_line = lines.len();
                if focused(app, Pane::Environments) {
                    line = line.style(theme.selected());
                }
            }
            lines.push(line);
        }
        if hidden > 0 {
            let text = format!(
                "   {hidden} of {} hosts hidden by the filter",
                env.hosts.len()
            );
            lines.push(Line::from(Span::styled(fit(&text, width), theme.dim())));
        }
    }
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = selected_line.saturating_sub(visible.saturating_sub(1));
    let mut title = vec![Span::styled(" Environments ", theme.title())];
    if let Some(f) = app.host_filter() {
        let what = if matches!(app.overlay, Overlay::HostFilter(_)) {
            "hosts matching"
        } else {
            "hosts"
        };
        title.push(Span::styled(format!("{what} /{f} "), theme.warn()));
    }
    let title = Line::from(title);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)).block(pane(
            title,
            focused(app, Pane::Environments),
            theme,
        )),
        area,
    );
}

/// One host's row: health glyph, name, release (and slot), where a
/// rollback goes, then its lock or why it is unreachable, whether it is
/// behind its environment, and corrupt history lines.
fn host_row(
    app: &App,
    key: HostKey,
    rows: &Rows<'_>,
    env_on: Option<&crate::model::ReleaseId>,
) -> Line<'static> {
    let theme = rows.theme;
    let cells = host_cells(app, key);
    let (symbol, style) = dot(&cells, theme);
    let unread = app.monitor.host(key).is_none_or(|m| m.view.is_none());
    let release = match &cells.current {
        Some(r) => rows.id(r),
        None if unread && cells.disconnected.is_none() => "reading…".into(),
        None => "-".into(),
    };
    let release = match &cells.slot {
        Some(slot) => format!("{release} {slot}"),
        None => release,
    };
    let back = match (&cells.previous, cells.rollback_ready) {
        (Some(p), _) if cells.switch_back => format!("⇄ {}", rows.id(p)),
        (Some(p), true) => format!("↩ {}", rows.id(p)),
        (Some(p), false) => format!("↩ {} (gone)", rows.id(p)),
        (None, _) => "↩ -".into(),
    };
    let back_style = if cells.rollback_ready {
        theme.dim()
    } else {
        theme.warn()
    };
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(symbol, style),
        Span::raw(" "),
        Span::raw(pad(&rows.names[key.env][key.host], rows.name_w)),
        Span::raw(" "),
        Span::styled(fit(&release, RELEASE_W), theme.title()),
        Span::raw(" "),
        Span::styled(fit(&back, BACK_W), back_style),
    ];
    if let Some(lock) = &cells.lock {
        spans.push(Span::styled(format!(" 🔒 {lock}"), theme.warn()));
    } else if let Some(reason) = &cells.disconnected {
        spans.push(Span::styled(format!(" {reason}"), theme.bad()));
    }
    // Said in full where the row has room, shortest where it has not.
    let mut say = |long: String, short: String| {
        let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        let text = if used + long.chars().count() <= rows.width {
            long
        } else {
            short
        };
        spans.push(Span::styled(text, theme.warn()));
    };
    if let (Some(on), Some(runs)) = (env_on, &cells.current)
        && on.as_str() != runs
    {
        let env = &app.envs[key.env].name;
        say(format!(" behind: {env} on {on}"), format!(" BEHIND {on}"));
    }
    if !cells.corrupt_history.is_empty() {
        let n: Vec<String> = cells
            .corrupt_history
            .iter()
            .map(ToString::to_string)
            .collect();
        say(
            format!(" ⚠ history line {} corrupt", n.join(", ")),
            format!(" ⚠ hist {}", n.join(",")),
        );
    }
    Line::from(spans)
}

/// The release an environment's last change put its hosts on, by their
/// histories; `None` while a change is under way there (hosts differ by
/// design until it ends) or before anything was read.
fn environment_release(app: &App, e: usize) -> Option<crate::model::ReleaseId> {
    let env = &app.envs[e];
    if app
        .change
        .as_ref()
        .is_some_and(|c| c.env == env.name && c.finished.is_none())
    {
        return None;
    }
    let views: Vec<_> = (0..env.hosts.len())
        .filter_map(|host| app.monitor.host(HostKey { env: e, host }))
        .filter_map(|h| h.view.as_ref())
        .collect();
    if views.iter().any(|v| v.change.is_some()) {
        return None;
    }
    crate::model::history::environment_release(views.iter().map(|v| v.history.as_slice()))
}
