//! Live logs: every host merged with a host column, or one host; following
//! or paused (with how many lines are below); filtered as the filter is
//! typed; error lines stand out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Overlay, Pane};
use super::super::theme::Theme;
use super::{clock, fit, focused, host_names, pad, pane, widest_host};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if area.height == 0 {
        return;
    }
    let rows = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let only = app.log_host();
    let name_w = widest_host(app).min(14);
    let names = host_names(app, name_w);
    let text: Vec<Line> = app
        .log_lines(rows)
        .iter()
        .map(|entry| {
            let (key, line) = (entry.key, entry.line);
            let host = names
                .get(key.env)
                .and_then(|e| e.get(key.host))
                .map_or("?", String::as_str);
            let style = if line.error {
                theme.bad()
            } else {
                ratatui::style::Style::new()
            };
            let mut spans = vec![Span::styled(
                format!("{} ", clock(line.received)),
                theme.dim(),
            )];
            let mut used = 9;
            if only.is_none() {
                let host = pad(host, name_w);
                used += host.chars().count() + 1;
                spans.push(Span::styled(format!("{host} "), theme.dim()));
            }
            spans.push(Span::styled(
                fit(&line.text, width.saturating_sub(used)),
                style,
            ));
            Line::from(spans)
        })
        .collect();
    let text = if text.is_empty() {
        vec![Line::from(Span::styled(empty(app), theme.dim()))]
    } else {
        text
    };
    frame.render_widget(
        Paragraph::new(text).block(pane(title(app, theme), focused(app, Pane::Logs), theme)),
        area,
    );
}

/// What an empty pane says: why there is nothing to read.
fn empty(app: &App) -> String {
    match app.log_filter() {
        Some(f) => format!("no line matches /{f}"),
        None if app.monitor.last_log_seq() == 0 => "no log lines yet…".to_owned(),
        None => String::new(),
    }
}

/// `web-3: 12,408 lines dropped, +2 hosts`: a flood
/// came faster than the screen could take it, and these were never shown.
fn dropped(app: &App) -> Option<String> {
    let dropped = app.logs_dropped();
    let (key, count) = *dropped.first()?;
    let mut said = format!(
        "{}: {} lines dropped",
        app.host_name(key),
        crate::model::fit::grouped(count)
    );
    match dropped.len() - 1 {
        0 => {}
        1 => said.push_str(", +1 host"),
        n => said.push_str(&format!(", +{n} hosts")),
    }
    Some(said)
}

/// ` Logs all hosts · following /error `, or `PAUSED · 37 newer below · G follows`.
fn title<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let scope = match app.log_host() {
        Some(k) => app.host_name(k).to_owned(),
        None => "all hosts".to_owned(),
    };
    let state = if app.logs.follow {
        "following".to_owned()
    } else {
        match app.logs_behind() {
            0 => "PAUSED · f or G follows".to_owned(),
            n => format!("PAUSED · {n} newer below · f or G follows"),
        }
    };
    let mut title = vec![
        Span::styled(" Logs ", theme.title()),
        Span::styled(format!("{scope} · {state} "), theme.dim()),
    ];
    if let Some(dropped) = dropped(app) {
        title.push(Span::styled(format!("{dropped} "), theme.warn()));
    }
    let typing = matches!(app.overlay, Overlay::Filter(_));
    if let Some(f) = app.log_filter() {
        let what = if typing { "filtering" } else { "filter" };
        title.push(Span::styled(format!("{what} /{f} "), theme.warn()));
    }
    Line::from(title)
}
