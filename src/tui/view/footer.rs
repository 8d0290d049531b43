use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Overlay, Tone};
use super::super::keymap::{Action, BINDINGS};
use super::super::theme::Theme;

pub fn draw_status(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let line = match (&app.overlay, &app.status) {
        (Overlay::Filter(text), _) => Line::from(vec![
            Span::styled(" filter logs: ", theme.title()),
            Span::raw(format!("{text}▏")),
            Span::styled("  Enter keep · Esc clear", theme.dim()),
        ]),
        (_, Some((text, tone))) => {
            let style = match tone {
                Tone::Info => ratatui::style::Style::new(),
                Tone::Good => theme.ok(),
                Tone::Bad => theme.bad(),
            };
            Line::from(Span::styled(format!(" {text}"), style))
        }
        (_, None) if app.readonly => Line::from(Span::styled(" read-only console", theme.dim())),
        (_, None) => Line::from(Span::styled(
            format!(" shipdeck · {}", app.config.path.display()),
            theme.dim(),
        )),
    };
    frame.render_widget(Paragraph::new(line), area);
}

pub fn draw_keys(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut spans = Vec::new();
    let mut used = 0;
    for b in BINDINGS.iter().filter(|b| !b.footer.is_empty()) {
        if app.readonly && b.changes_hosts {
            continue;
        }
        // Whole hints only: the most important come first in the table.
        let width = b.key_label.chars().count() + b.footer.chars().count() + 4;
        if used + width > area.width as usize {
            break;
        }
        used += width;
        let key_style = if b.action == Action::Rollback {
            theme.danger_key()
        } else {
            theme.key()
        };
        spans.push(Span::styled(format!(" {} ", b.key_label), key_style));
        spans.push(Span::raw(format!(" {} ", b.footer)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
