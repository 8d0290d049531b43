//! Environments and their hosts: what each runs, what a rollback would go
//! to, health at a glance, and who holds a lock.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Pane};
use super::super::theme::Theme;
use super::health::{dot, host_cells};
use super::{fit, focused, pane, widest_host};
use crate::monitor::HostKey;

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
