//! `?`: every key once, from the key table: first those that apply now,
//! then those that do not, each with why. Scrolls where the screen is short.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::super::app::App;
use super::super::keymap;
use super::super::theme::Theme;
use super::{pane, wrap};

/// The help is this wide, or the screen's width.
const WIDTH: u16 = 78;
/// The key column, with its gap.
const KEY_COLUMN: usize = 10;

/// Where the help goes on `area`.
fn rect(app: &App, area: Rect) -> Rect {
    let lines = lines(app, inner_width(area), &Theme { color: false }).len() as u16;
    let w = WIDTH.min(area.width);
    let h = (lines + 2).min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn inner_width(area: Rect) -> usize {
    WIDTH.min(area.width).saturating_sub(2) as usize
}

/// How many lines the help has, and how many it shows on `area`.
pub fn extent(app: &App, area: Rect) -> (usize, usize) {
    let total = lines(app, inner_width(area), &Theme { color: false }).len();
    (total, rect(app, area).height.saturating_sub(2) as usize)
}

/// The help's lines, wrapped to `width`.
fn lines(app: &App, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let m = app.moment();
    let keys = keymap::every_key(m);
    let text_w = width.saturating_sub(KEY_COLUMN);
    let entry = |b: &keymap::Binding, text: &str, rows: usize, style| {
        wrap(text, text_w, rows)
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let key = if i == 0 { b.key_label } else { "" };
                Line::from(vec![
                    Span::styled(format!("{key:>8}  "), style),
                    Span::raw(t),
                ])
            })
            .collect::<Vec<_>>()
    };
    let off = |b: &keymap::Binding| app.readonly && b.changes_hosts;
    let mut out = vec![Line::from(Span::styled(
        "Keys that work now",
        theme.title(),
    ))];
    for b in keys.iter().filter(|b| b.holds(m) && !off(b)) {
        out.extend(entry(b, b.help, 3, theme.title()));
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(
        "Keys that do nothing now, and why",
        theme.title(),
    )));
    for b in keys.iter().filter(|b| !b.holds(m) || off(b)) {
        out.extend(entry(b, b.help, 2, theme.dim()));
        let why = format!("· not now: {}", app.why_not(b));
        out.extend(wrap(&why, text_w, 2).into_iter().map(|t| {
            Line::from(vec![
                Span::raw(" ".repeat(KEY_COLUMN)),
                Span::styled(t, theme.warn()),
            ])
        }));
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let rect = rect(app, area);
    let all = lines(app, inner_width(area), theme);
    let shown = rect.height.saturating_sub(2) as usize;
    let scroll = app.help_scroll.min(all.len().saturating_sub(shown));
    let more = if all.len() > shown {
        format!(
            " {}–{} of {} · j/k PgUp/PgDn scroll · other keys close ",
            scroll + 1,
            (scroll + shown).min(all.len()),
            all.len()
        )
    } else {
        " any key closes this ".to_owned()
    };
    let title = if app.readonly {
        " Keys · read-only console: keys that change hosts are off "
    } else {
        " Keys "
    };
    let block = pane(Line::from(Span::styled(title, theme.title())), true, theme)
        .title_bottom(Line::from(Span::styled(more, theme.dim())));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(all).scroll((scroll as u16, 0)).block(block),
        rect,
    );
}
