//! Local releases: where each runs, and which environments it passed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Pane};
use super::super::theme::Theme;
use super::{fit, focused, pad, pane, release_names};
use crate::engine::history::passed_gate;
use crate::monitor::HostKey;

/// Release ids in the list, fitted together: a timestamp id keeps its end.
const ID_W: usize = 10;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width.saturating_sub(2) as usize;
    let mut lines = Vec::new();
    if !app.releases_read {
        lines.push(Line::from(Span::styled("loading…", theme.dim())));
    } else if app.releases.is_empty() {
        lines.push(Line::from(Span::styled(
            "no releases: shipdeck build",
            theme.dim(),
        )));
    }
    let ids: Vec<&str> = app.releases.iter().map(|m| m.id.as_str()).collect();
    let shown = release_names(&ids, ID_W);
    // Newest first: the release an operator ships next is at the top.
    for (i, m) in app.releases.iter().enumerate().rev() {
        let mut where_ = Vec::new();
        let mut passed = Vec::new();
        for (e, env) in app.envs.iter().enumerate() {
            let keys = (0..env.hosts.len()).map(|h| HostKey { env: e, host: h });
            let views: Vec<_> = keys
                .filter_map(|k| app.monitor.host(k).and_then(|h| h.view.as_ref()))
                .collect();
            let running = views
                .iter()
                .filter(|v| v.current.as_ref() == Some(&m.id))
                .count();
            if running > 0 {
                where_.push(format!("{} {running}/{}", env.name, env.hosts.len()));
            }
            if views.len() == env.hosts.len()
                && !views.is_empty()
                && views
                    .iter()
                    .all(|v| passed_gate(&v.history, &m.id, &m.sha256))
            {
                passed.push(env.name.clone());
            }
        }
        let runs = if where_.is_empty() {
            "-".to_owned()
        } else {
            where_.join(" ")
        };
        let ok = if passed.is_empty() {
            String::new()
        } else {
            format!(" ✓{}", passed.join(","))
        };
        let id = shown
            .get(m.id.as_str())
            .map_or(m.id.as_str(), String::as_str);
        let text = format!("{} {}{}", pad(id, ID_W), runs, ok);
        let mut line = Line::from(vec![Span::raw(fit(&text, width))]);
        if i == app.release_cursor {
            line = line.style(if focused(app, Pane::Releases) {
                theme.selected()
            } else {
                theme.title()
            });
        }
        lines.push(line);
    }
    let title = Line::from(Span::styled(" Releases ", theme.title()));
    frame.render_widget(
        Paragraph::new(lines).block(pane(title, focused(app, Pane::Releases), theme)),
        area,
    );
}
