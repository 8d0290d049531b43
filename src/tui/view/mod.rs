//! Views: each takes `&App` and draws; none changes state. `layout` says
//! where each pane goes on a screen, and the keys ask it how many lines a
//! page or a list shows (`log_rows`, `page_extent`, `help_extent`).

mod change;
mod envs;
mod footer;
mod health;
mod help;
mod history;
mod host;
mod logs;
mod overlay;
mod releases;

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{App, Pane};
use super::keymap::Page;
use super::theme::Theme;
use crate::model::fit::fit_all;

/// Wide enough for the health pane beside the logs.
const WIDE: u16 = 110;
/// The smallest console still worth drawing: the environments, a change's
/// first rows, a log line, the status and the keys. Below it, one line says
/// so and the change goes on.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// Rows the logs keep however much the panes above them have to say.
const LOGS_KEEP: u16 = 4;

/// Whether a terminal of `width`×`height` gets the whole console.
pub fn fits(width: u16, height: u16) -> bool {
    width >= MIN_WIDTH && height >= MIN_HEIGHT
}

/// Where each part goes on one screen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Areas {
    pub envs: Rect,
    pub releases: Rect,
    pub change: Rect,
    pub change_form: change::Form,
    pub logs: Rect,
    pub health: Rect,
    pub health_form: health::Form,
    /// The body, for the history and a host's detail.
    pub page: Rect,
    pub status: Rect,
    pub keys: Rect,
}

/// The console's layout on `area`. At 80×24 every pane keeps rows: the
/// environments give up rows to a change, a finished change folds to one
/// line, and health shrinks to a grid, then to one line.
pub fn layout(app: &App, area: Rect) -> Areas {
    let [body, status, keys] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(footer::status_height(app, area.width)),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut a = Areas {
        page: body,
        status,
        keys,
        ..Areas::default()
    };
    if app.page != Page::Console {
        return a;
    }
    let wide = area.width >= WIDE;
    let health_min = u16::from(!wide);
    let top_want = envs::rows(app) + 2;
    let mut top = top_want.min(body.height / 2).max(5).min(body.height);
    let (mut form, want) = change::wanted(app, body, area.height);
    let room = |top: u16| body.height.saturating_sub(top + LOGS_KEEP + health_min);
    if want > room(top) {
        // The environments scroll to the selection: a change's hosts are in
        // its own pane.
        let least = top_want.min((body.height / 3).max(5));
        top = top.saturating_sub(want - room(top)).max(least);
    }
    let mut rows = want.min(room(top));
    if form == change::Form::Pane && rows < 3 {
        form = change::Form::Line;
        rows = want.min(1).min(room(top));
    }
    let [top_area, change_area, bottom] = Layout::vertical([
        Constraint::Length(top),
        Constraint::Length(rows),
        Constraint::Min(0),
    ])
    .areas(body);
    [a.envs, a.releases] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
            .areas(top_area);
    (a.change, a.change_form) = (change_area, form);
    if wide {
        [a.logs, a.health] =
            Layout::horizontal([Constraint::Min(40), Constraint::Length(50)]).areas(bottom);
        a.health_form = health::Form::Pane;
        return a;
    }
    let grid = health::grid_height(app, bottom.width);
    let (health_form, health_rows) = if bottom.height >= grid + LOGS_KEEP {
        (health::Form::Grid, grid)
    } else if bottom.height > 3 {
        (health::Form::Line, 1)
    } else {
        (health::Form::None, 0)
    };
    [a.logs, a.health] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(health_rows)]).areas(bottom);
    a.health_form = health_form;
    a
}

/// Lines the logs pane shows on a `width`×`height` screen.
pub fn log_rows(app: &App, width: u16, height: u16) -> usize {
    let a = layout(app, Rect::new(0, 0, width, height));
    a.logs.height.saturating_sub(2) as usize
}

/// How many lines the page has, and how many it shows at once.
pub fn page_extent(app: &App, width: u16, height: u16) -> (usize, usize) {
    let body = layout(app, Rect::new(0, 0, width, height)).page;
    match app.page {
        Page::Console => (0, 0),
        Page::History => history::extent(app, body),
        Page::Host => host::extent(app, body),
    }
}

/// How many lines the help has, and how many it shows at once.
pub fn help_extent(app: &App, width: u16, height: u16) -> (usize, usize) {
    help::extent(app, Rect::new(0, 0, width, height))
}

pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if !fits(area.width, area.height) {
        too_small(frame, app, theme);
        return;
    }
    let a = layout(app, area);
    match app.page {
        Page::Console => {
            envs::draw(frame, a.envs, app, theme);
            releases::draw(frame, a.releases, app, theme);
            change::draw(frame, a.change, a.change_form, app, theme);
            logs::draw(frame, a.logs, app, theme);
            health::draw(frame, a.health, a.health_form, app, theme);
        }
        Page::History => history::draw(frame, a.page, app, theme),
        Page::Host => host::draw(frame, a.page, app, theme),
    }
    footer::draw_status(frame, a.status, app, theme);
    footer::draw_keys(frame, a.keys, app, theme);
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

/// Every host's screen name fitted into `width` together (so two hosts
/// never read the same), by environment and host.
fn host_names(app: &App, width: usize) -> Vec<Vec<String>> {
    let all: Vec<&str> = app
        .envs
        .iter()
        .flat_map(|e| e.hosts.iter().map(String::as_str))
        .collect();
    let mut fitted = fit_all(&all, width).into_iter();
    app.envs
        .iter()
        .map(|e| fitted.by_ref().take(e.hosts.len()).collect())
        .collect()
}

/// Release ids fitted into `width` together: the end of a timestamp id is
/// kept, two different builds never read the same.
fn release_names(ids: &[&str], width: usize) -> HashMap<String, String> {
    ids.iter()
        .map(|s| (*s).to_owned())
        .zip(fit_all(ids, width))
        .collect()
}

/// `s` padded to `width`, never cut: names fitted with `fit_all` may be a
/// little wider than asked where that keeps them apart.
fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
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

/// How long ago `t` was, shortly: `45s`, `12m`, `5h`, `3d`.
fn ago(t: std::time::SystemTime, now: std::time::SystemTime) -> String {
    short(now.duration_since(t).unwrap_or_default())
}

fn short(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
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
