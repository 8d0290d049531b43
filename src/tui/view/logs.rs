//! Live logs: every host merged with a host column, or one host; follow or
//! paused; filtered with `/`; error lines stand out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Pane};
use super::super::theme::Theme;
use super::{clock, fit, focused, pane, widest_host};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let rows = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let only = app.one_host_logs.then(|| app.selected_host());
    let want = rows + app.log_scroll;
    let lines = app
        .monitor
        .logs_before(only, app.log_filter.as_deref(), want, app.log_anchor);
    let end = lines.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(rows);
    let name_w = widest_host(app).min(14);
    let text: Vec<Line> = lines[start..end]
        .iter()
        .map(|entry| {
            let (key, line) = (entry.key, entry.line);
            let host = app
                .envs
                .get(key.env)
                .and_then(|e| e.hosts.get(key.host))
                .map(String::as_str)
                .unwrap_or("?");
            let style = if line.error {
                theme.bad()
            } else {
                ratatui::style::Style::new()
            };
            let mut spans = vec![Span::styled(
                format!("{} ", clock(line.received)),
                theme.dim(),
            )];
            if only.is_none() {
                spans.push(Span::styled(format!("{} ", fit(host, name_w)), theme.dim()));
            }
            let used = 9 + if only.is_none() { name_w + 1 } else { 0 };
            spans.push(Span::styled(
                fit(&line.text, width.saturating_sub(used)),
                style,
            ));
            Line::from(spans)
        })
        .collect();
    let scope = match only {
        Some(k) => app
            .envs
            .get(k.env)
            .and_then(|e| e.hosts.get(k.host))
            .cloned()
            .unwrap_or_default(),
        None => "all hosts".to_owned(),
    };
    let mut title = vec![
        Span::styled(" Logs ", theme.title()),
        Span::styled(
            format!(
                "{scope} · {} ",
                if app.follow_logs {
                    "following"
                } else {
                    "PAUSED"
                }
            ),
            theme.dim(),
        ),
    ];
    if let Some(f) = &app.log_filter {
        title.push(Span::styled(format!("/{f} "), theme.warn()));
    }
    frame.render_widget(
        Paragraph::new(text).block(pane(Line::from(title), focused(app, Pane::Logs), theme)),
        area,
    );
}
