//! `H`: the selected environment's history, newest first, read from its
//! hosts: who did what, when, to which release, and how it ended. The
//! lines are those of `shipdeck history` (`model::history::changes`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, HistoryRow, parse_time};
use super::super::theme::Theme;
use super::{fit, pad, pane, release_names};
use crate::monitor::HostKey;

/// Release ids in the release column, each.
const ID_W: usize = 10;

/// Rows the list shows in `body`: the frame and the header aside.
fn shown(body: Rect) -> usize {
    body.height.saturating_sub(3) as usize
}

pub fn extent(app: &App, body: Rect) -> (usize, usize) {
    (app.history_rows(app.env_cursor).len(), shown(body))
}

/// The columns' widths: time, action, release, who (the outcome and the
/// message take the rest).
#[derive(Clone, Copy)]
struct Columns {
    time: usize,
    action: usize,
    release: usize,
    who: usize,
}

impl Columns {
    fn new(width: usize, rows: &[(String, &HistoryRow)]) -> Columns {
        let widest =
            |f: &dyn Fn(&(String, &HistoryRow)) -> usize| rows.iter().map(f).max().unwrap_or(0);
        Columns {
            time: if width >= 100 { 19 } else { 14 },
            action: widest(&|(_, r)| r.action.chars().count()).clamp(6, 9),
            release: widest(&|(rel, _)| rel.chars().count()).clamp(7, 2 * ID_W + 3),
            who: widest(&|(_, r)| r.who.chars().count())
                .clamp(3, if width >= 100 { 24 } else { 14 }),
        }
    }

    fn fixed(&self) -> usize {
        self.time + self.action + self.release + self.who + 4
    }
}

/// `v1 → v2`: where a change went from, and to.
fn release(row: &HistoryRow, ids: &std::collections::HashMap<String, String>) -> String {
    let id = |s: &str| ids.get(s).cloned().unwrap_or_else(|| s.to_owned());
    match (&row.from, &row.release) {
        (Some(from), Some(to)) => format!("{} → {}", id(from), id(to)),
        (None, Some(to)) => id(to),
        (_, None) => "-".to_owned(),
    }
}

fn time(written: &str, width: usize) -> String {
    let format = if width >= 19 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%m-%d %H:%M:%S"
    };
    parse_time(written).map_or_else(
        || written.to_owned(),
        |t| crate::model::time::utc_format(t, format),
    )
}

fn row_line(
    row: &HistoryRow,
    release: &str,
    c: Columns,
    width: usize,
    theme: &Theme,
) -> Line<'static> {
    let mut outcome = row.outcome.clone();
    if !row.failed_hosts.is_empty() {
        outcome = format!("{outcome} {}", row.failed_hosts.join(","));
    }
    let outcome_w = outcome.chars().count().max(12);
    let message = row.message.as_deref().unwrap_or_default();
    let rest = width.saturating_sub(c.fixed() + outcome_w + 1);
    Line::from(vec![
        Span::styled(
            format!("{} ", pad(&time(&row.time, c.time), c.time)),
            theme.dim(),
        ),
        Span::raw(format!("{} ", fit(&row.action, c.action))),
        Span::styled(format!("{} ", fit(release, c.release)), theme.title()),
        Span::raw(format!("{} ", fit(&row.who, c.who))),
        Span::styled(
            format!("{} ", pad(&outcome, outcome_w)),
            if row.failed { theme.bad() } else { theme.ok() },
        ),
        Span::raw(fit(message, rest).trim_end().to_owned()),
    ])
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let env = app.env_cursor;
    let rows = app.history_rows(env);
    let width = area.width.saturating_sub(2) as usize;
    let shown = shown(area);
    let scroll = app.page_scroll.min(rows.len().saturating_sub(shown));
    let mut ids: Vec<&str> = rows
        .iter()
        .flat_map(|r| [r.release.as_deref(), r.from.as_deref()])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let ids = release_names(&ids, ID_W);
    let listed: Vec<(String, &HistoryRow)> = rows
        .iter()
        .skip(scroll)
        .take(shown)
        .map(|r| (release(r, &ids), r))
        .collect();
    let c = Columns::new(width, &listed);
    let header = format!(
        "{} {} {} {} OUTCOME      MESSAGE",
        pad("TIME (UTC)", c.time),
        pad("ACTION", c.action),
        pad("RELEASE", c.release),
        pad("WHO", c.who)
    );
    let mut lines = vec![Line::from(Span::styled(fit(&header, width), theme.dim()))];
    if rows.is_empty() {
        let read = (0..app.envs[env].hosts.len()).all(|host| {
            app.monitor
                .host(HostKey { env, host })
                .is_some_and(|h| h.view.is_some())
        });
        lines.push(Line::from(Span::styled(
            if read {
                "nothing in its hosts' history yet"
            } else {
                "reading its hosts…"
            },
            theme.dim(),
        )));
    }
    lines.extend(
        listed
            .iter()
            .map(|(rel, row)| row_line(row, rel, c, width, theme)),
    );
    let place = if rows.len() > shown {
        format!(
            " {}–{} of {} ",
            scroll + 1,
            (scroll + shown).min(rows.len()),
            rows.len()
        )
    } else {
        format!(
            " {} change{} ",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        )
    };
    let title = Line::from(vec![
        Span::styled(" History ", theme.title()),
        Span::styled(format!("{} ", app.envs[env].name), theme.title()),
        Span::styled(
            format!("· newest first, from its hosts ·{place}· Tab: next environment · Esc: back "),
            theme.dim(),
        ),
    ]);
    frame.render_widget(Paragraph::new(lines).block(pane(title, true, theme)), area);
}
