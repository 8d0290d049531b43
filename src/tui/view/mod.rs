//! Views: each takes `&App` and draws; none changes state.

mod change;
mod envs;
mod footer;
mod health;
mod logs;
mod overlay;
mod releases;

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{App, Pane};
use super::theme::Theme;

/// Wide enough for the health pane beside the logs.
const WIDE: u16 = 110;
/// The smallest console still worth drawing: the environments, a change's
/// first rows, a log line, the status and the keys. Below it, one line says
/// so and the change goes on.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Whether a terminal of `width`×`height` gets the whole console.
pub fn fits(width: u16, height: u16) -> bool {
    width >= MIN_WIDTH && height >= MIN_HEIGHT
}

pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if !fits(area.width, area.height) {
        too_small(frame, app, theme);
        return;
    }
    let [body, status, keys] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(footer::status_height(app, area.width)),
        Constraint::Length(1),
    ])
    .areas(area);
    let host_rows: u16 = app.envs.iter().map(|e| e.hosts.len() as u16 + 1).sum();
    let top_height = (envs::rows(app) + 2).min(body.height / 2).max(5);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(top_height),
        Constraint::Length(change::height(app, body.height, top_height, body.width)),
        Constraint::Min(3),
    ])
    .areas(body);
    let [envs_area, releases_area] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(top);
    envs::draw(frame, envs_area, app, theme);
    releases::draw(frame, releases_area, app, theme);
    if middle.height > 0 {
        change::draw(frame, middle, app, theme);
    }
    if area.width >= WIDE {
        let [logs_area, health_area] = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Min(40), Constraint::Length(50)])
            .areas(bottom);
        logs::draw(frame, logs_area, app, theme);
        health::draw(frame, health_area, app, theme);
    } else {
        // Narrow: health goes under the logs when both fit.
        let health_rows = host_rows - app.envs.len() as u16 + 2;
        if bottom.height >= health_rows + 5 {
            let [logs_area, health_area] =
                Layout::vertical([Constraint::Min(3), Constraint::Length(health_rows)])
                    .areas(bottom);
            logs::draw(frame, logs_area, app, theme);
            health::draw(frame, health_area, app, theme);
        } else {
            logs::draw(frame, bottom, app, theme);
        }
    }
    footer::draw_status(frame, status, app, theme);
    footer::draw_keys(frame, keys, app, theme);
    overlay::draw(frame, area, app, theme);
}

/// One line on a terminal too small for the console; a question the
/// operator must answer comes first, so `q` still asks before cancelling.
fn too_small(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    let mut text = format!("terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT})");
    if let Some(q) = overlay::question(app) {
        text = format!("{text} · {q}");
    }
    let line = Line::from(Span::styled(fit(&text, area.width as usize), theme.bad()));
    frame.render_widget(Paragraph::new(line), Rect { height: 1, ..area });
}

/// A pane's frame, highlighted when it has the focus.
fn pane<'a>(title: Line<'a>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(if focused {
            theme.focused_border()
        } else {
            Style::new()
        })
}

fn focused(app: &App, p: Pane) -> bool {
    app.focus == p
}

/// The longest host name on screen, in characters.
fn widest_host(app: &App) -> usize {
    app.envs
        .iter()
        .flat_map(|e| e.hosts.iter())
        .map(|h| h.chars().count())
        .max()
        .unwrap_or(8)
}

/// `s` cut to `width` characters, with an ellipsis when cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

/// `text` in lines of at most `width` characters, broken between words
/// where it can be; at most `rows` lines, the last cut with an ellipsis.
fn wrap(text: &str, width: usize, rows: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    if out.len() > rows {
        let rest = out.split_off(rows).join(" ");
        if let Some(last) = out.last_mut() {
            *last = fit(&format!("{last} {rest}"), width).trim_end().to_owned();
        }
    }
    out.into_iter()
        .map(|l| fit(&l, width).trim_end().to_owned())
        .collect()
}

/// A sparkline in text, newest on the right: fits in a table cell.
fn spark(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0).max(1);
    let mut s: String = tail
        .iter()
        .map(|v| BARS[((*v * 7) / max) as usize])
        .collect();
    while s.chars().count() < width {
        s.insert(0, ' ');
    }
    s
}

fn clock(t: std::time::SystemTime) -> String {
    crate::model::time::utc_format(t, "%H:%M:%S")
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_between_words_and_cuts_the_last_row() {
        assert_eq!(wrap("a bc def", 4, 3), ["a bc", "def"]);
        assert_eq!(wrap("one two three four", 9, 2), ["one two", "three fo…"]);
        assert_eq!(wrap("abcdefghij", 4, 2), ["abc…"]);
        assert_eq!(wrap("", 4, 2), [""]);
    }
}
