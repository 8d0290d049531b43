use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Overlay, Tone};
use super::super::keymap::{self, Action, Page};
use super::super::theme::Theme;
use super::{fit, wrap};

/// How much of a refusal's reason the status shows.
const REASON_ROWS: usize = 2;

/// A refusal a key can overrule, as the status shows it: why (wrapped to
/// the status's width), the key, and what the key would do.
struct Warning {
    reason: Vec<String>,
    key: &'static str,
    hint: String,
}

/// The armed second `R`, else the offered `O` (while its prompt is not
/// open): the one thing the status must say in full.
fn warning(app: &App, width: u16) -> Option<Warning> {
    let (message, key, hint) = if let Some(a) = app.armed() {
        let left = a.until.duration_since(app.now).unwrap_or_default();
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        (
            &a.message,
            " R ",
            format!(
                " again within {secs}s: roll {} back anyway · any other key: leave it",
                a.env
            ),
        )
    } else {
        let o = app
            .offer
            .as_ref()
            .filter(|_| app.overlay == Overlay::None)?;
        (
            &o.message,
            " O ",
            " override it, with a reason the history keeps · Esc: leave it".to_owned(),
        )
    };
    let first = message.lines().next().unwrap_or_default();
    Some(Warning {
        reason: wrap(
            &format!("⚠ {first}"),
            width.saturating_sub(2) as usize,
            REASON_ROWS,
        ),
        key,
        hint,
    })
}

/// More rows while a second `R` is awaited, or an override offered: why,
/// and what the key would do.
pub fn status_height(app: &App, width: u16) -> u16 {
    warning(app, width).map_or(1, |w| w.reason.len() as u16 + 1)
}

pub fn draw_status(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width.saturating_sub(2) as usize;
    if let Some(w) = warning(app, area.width) {
        let mut lines: Vec<Line> = w
            .reason
            .into_iter()
            .map(|r| Line::from(Span::styled(format!(" {r}"), theme.bad())))
            .collect();
        lines.push(Line::from(vec![
            Span::styled(w.key, theme.danger_key()),
            Span::styled(fit(&w.hint, width.saturating_sub(3)), theme.bad()),
        ]));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let line = match (&app.overlay, &app.status) {
        (Overlay::Filter(text), _) => Line::from(vec![
            Span::styled(" filter logs: ", theme.title()),
            Span::raw(format!("{text}▏")),
            Span::styled("  as you type · Enter keep · Esc clear", theme.dim()),
        ]),
        (Overlay::HostFilter(text), _) => Line::from(vec![
            Span::styled(" show hosts: ", theme.title()),
            Span::raw(format!("{text}▏")),
            Span::styled("  as you type · Enter keep · Esc show all", theme.dim()),
        ]),
        (_, Some((text, tone))) => {
            let style = match tone {
                Tone::Info => ratatui::style::Style::new(),
                Tone::Good => theme.ok(),
                Tone::Bad => theme.bad(),
            };
            let first = text.lines().next().unwrap_or_default();
            Line::from(Span::styled(format!(" {first}"), style))
        }
        (_, None) if app.readonly => Line::from(Span::styled(" read-only console", theme.dim())),
        (_, None) => Line::from(Span::styled(
            format!(" shipdeck · {}", app.config.path.display()),
            theme.dim(),
        )),
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The footer's hint for a binding that holds now: the keymap's word, with
/// the environment (and `R`'s target) where the key acts on one; `None`
/// keeps it out (a read-only console's keys that change hosts, `R` where a
/// rollback cannot start).
fn hint(app: &App, b: &keymap::Binding) -> Option<String> {
    if app.readonly && b.changes_hosts {
        return None;
    }
    match b.action {
        Action::Rollback => app.rollback_hint(),
        Action::Cancel => app.cancel_hint(),
        Action::Back if app.page != Page::Console => Some("back".to_owned()),
        Action::History if app.page == Page::History => None,
        _ => (!b.footer.is_empty()).then(|| b.footer.to_owned()),
    }
}

pub fn draw_keys(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let hints: Vec<(&keymap::Binding, String)> = keymap::active(app.moment())
        .filter_map(|b| Some((b, hint(app, b)?)))
        .collect();
    let width_of =
        |b: &keymap::Binding, label: &str| b.key_label.chars().count() + label.chars().count() + 4;
    // `?` is always there: it says what the others are.
    let help = keymap::binding(Action::Help);
    let reserve = width_of(help, help.footer);
    let mut spans = Vec::new();
    let mut used = 0;
    let mut full = false;
    for (b, label) in &hints {
        // Whole hints only: the most important come first in the table, so
        // the first that does not fit ends them (but for `?`).
        let width = width_of(b, label);
        let help = b.action == Action::Help;
        let room = if help {
            area.width as usize
        } else {
            (area.width as usize).saturating_sub(reserve)
        };
        full = full || used + width > room;
        if full && !help || used + width > room {
            continue;
        }
        used += width;
        let key_style = if matches!(b.action, Action::Rollback | Action::AbortCanary) {
            theme.danger_key()
        } else {
            theme.key()
        };
        spans.push(Span::styled(format!(" {} ", b.key_label), key_style));
        spans.push(Span::raw(format!(" {label} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
