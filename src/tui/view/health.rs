//! Health per host: status, latency sparkline, error rate, CPU, memory.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::App;
use super::super::theme::Theme;
use super::{host_names, pad, pane, spark, widest_host};
use crate::monitor::{HealthStatus, HostKey};

/// What the views show of one host, read from the monitor's state.
#[derive(Debug, Default)]
pub struct HostCells {
    pub health: Option<HealthStatus>,
    pub disconnected: Option<String>,
    pub current: Option<String>,
    /// Blue/green: the slot taking traffic.
    pub slot: Option<String>,
    pub previous: Option<String>,
    pub rollback_ready: bool,
    /// Blue/green: the previous release still runs on the other slot, so a
    /// rollback is the switch back.
    pub switch_back: bool,
    pub lock: Option<String>,
    /// History lines of the host that are not records, by line number.
    pub corrupt_history: Vec<usize>,
    pub latency_ms: Vec<u64>,
    pub last_latency: Option<u64>,
    pub error_lines_per_min: f64,
    pub error_ratio: Option<f64>,
    pub cpu_pct: Option<f64>,
    pub mem: Option<(u64, u64)>,
}

pub fn host_cells(app: &App, key: HostKey) -> HostCells {
    let Some(h) = app.monitor.host(key) else {
        return HostCells::default();
    };
    let view = h.view.as_ref();
    HostCells {
        health: h.health_status(),
        disconnected: (h.connected == Some(false)).then(|| {
            h.disconnect_reason
                .clone()
                .unwrap_or_else(|| "disconnected".into())
        }),
        current: view.and_then(|v| v.current.as_ref().map(ToString::to_string)),
        slot: view.and_then(|v| v.live_slot.map(|s| s.to_string())),
        previous: view.and_then(|v| v.previous.as_ref().map(ToString::to_string)),
        rollback_ready: view.is_some_and(|v| v.rollback_ready),
        switch_back: view.is_some_and(|v| {
            v.pending_finish
                .as_ref()
                .is_some_and(|p| p.old.is_some() && p.old_release == v.previous)
        }),
        lock: view.and_then(|v| v.lock.clone()),
        corrupt_history: view.map(|v| v.corrupt_history.clone()).unwrap_or_default(),
        latency_ms: h.latency_ms(),
        // A probe that got no answer has no latency: `-`, never `0ms`.
        last_latency: h.latency_ms_or_absent().last().copied().flatten(),
        error_lines_per_min: h.error_lines_per_min(app.now),
        error_ratio: h.error_ratio(),
        cpu_pct: h.cpu_pct(),
        mem: h.memory(),
    }
}

/// The health dot: colour where there is colour, a distinct symbol always.
/// A glyph per state, distinct without colour (`NO_COLOR`, a monochrome
/// terminal, a screenshot pasted in a ticket).
pub fn dot(cells: &HostCells, theme: &Theme) -> (&'static str, Style) {
    let (glyph, _, style) = state(cells, theme);
    (glyph, style)
}

/// The glyph, the word and the style of a host's state.
pub fn state(cells: &HostCells, theme: &Theme) -> (&'static str, &'static str, Style) {
    if cells.disconnected.is_some() {
        return ("⊘", "unreachable", theme.bad());
    }
    match cells.health {
        Some(HealthStatus::Healthy) => ("✓", "healthy", theme.ok()),
        Some(HealthStatus::Unhealthy) => ("✗", "failing", theme.bad()),
        Some(HealthStatus::Unknown) | None => ("?", "unknown", theme.dim()),
    }
}

/// How the health pane is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Form {
    #[default]
    None,
    /// Beside the logs: a row per host, with the latency's sparkline.
    Pane,
    /// Under the logs on a narrow screen: hosts side by side, shorter.
    Grid,
    /// One line: how many hosts are healthy, and each one that is not.
    Line,
}

/// Columns of a health row other than the host's name.
const HEALTH_FIXED: usize = 35;
const SPARK: usize = 8;
/// A grid cell other than the host's name: glyph, latency or word, errors.
const CELL_FIXED: usize = 2 + 1 + 11 + 1 + 6;
const CELL_GAP: usize = 2;

/// The latency of a healthy host; `None` for any other, which shows its
/// state's word instead: an old figure would read as a live one.
fn latency(cells: &HostCells) -> Option<String> {
    (cells.disconnected.is_none() && cells.health == Some(HealthStatus::Healthy)).then(|| {
        cells
            .last_latency
            .map_or("   -".to_owned(), |l| format!("{l:>4}"))
    })
}

fn errors(cells: &HostCells, theme: &Theme) -> (String, Style) {
    let text = match cells.error_ratio {
        Some(r) => format!("{:>4.1}%", r * 100.0),
        None => format!("{:>4.0}/m", cells.error_lines_per_min),
    };
    let style = if cells.error_ratio.is_some_and(|r| r > 0.01) || cells.error_lines_per_min > 0.0 {
        theme.bad()
    } else {
        theme.dim()
    };
    (text, style)
}

pub fn draw(frame: &mut Frame, area: Rect, form: Form, app: &App, theme: &Theme) {
    if area.height == 0 {
        return;
    }
    match form {
        Form::None => {}
        Form::Pane => draw_pane(frame, area, app, theme),
        Form::Grid => draw_grid(frame, area, app, theme),
        Form::Line => draw_line(frame, area, app, theme),
    }
}

/// Every host, in config order, with its cells.
fn every_host(app: &App) -> Vec<(HostKey, HostCells)> {
    app.envs
        .iter()
        .enumerate()
        .flat_map(|(e, env)| (0..env.hosts.len()).map(move |h| HostKey { env: e, host: h }))
        .map(|key| (key, host_cells(app, key)))
        .collect()
}

fn draw_pane(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width.saturating_sub(2) as usize;
    // As wide as the widest name, within what the pane leaves it.
    let name_width = widest_host(app).clamp(12, width.saturating_sub(HEALTH_FIXED).max(12));
    let names = host_names(app, name_width);
    let mut lines = Vec::new();
    for (key, cells) in every_host(app) {
        let (symbol, word, style) = state(&cells, theme);
        let cpu = cells
            .cpu_pct
            .map_or("  -".to_owned(), |c| format!("{c:>3.0}"));
        let mem = cells.mem.map_or("  -".to_owned(), |(used, total)| {
            format!("{:>3.0}", used as f64 * 100.0 / total.max(1) as f64)
        });
        let (errors, err_style) = errors(&cells, theme);
        let trend = match latency(&cells) {
            Some(latency) => Span::styled(
                format!(" {} {latency}ms ", spark(&cells.latency_ms, SPARK)),
                theme.ok(),
            ),
            None => Span::styled(format!(" {word:<15} "), style),
        };
        lines.push(Line::from(vec![
            Span::styled(symbol, style),
            Span::raw(" "),
            Span::raw(pad(&names[key.env][key.host], name_width)),
            trend,
            Span::styled(errors, err_style),
            Span::raw(format!(" {cpu}% {mem}%")),
        ]));
    }
    let title = Line::from(vec![
        Span::styled(" Health ", theme.title()),
        Span::styled("latency  err  cpu mem ", theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(lines).block(pane(title, false, theme)), area);
}

/// Host names in a grid cell, and how many cells fit side by side.
fn grid_shape(app: &App, width: u16) -> (usize, usize) {
    let inner = width.saturating_sub(2) as usize;
    let name_w = widest_host(app).clamp(6, 14);
    let cell = name_w + CELL_FIXED;
    let cols = ((inner + CELL_GAP) / (cell + CELL_GAP)).max(1);
    (name_w, cols)
}

/// Rows the grid takes, frame included.
pub fn grid_height(app: &App, width: u16) -> u16 {
    let (_, cols) = grid_shape(app, width);
    let hosts: usize = app.envs.iter().map(|e| e.hosts.len()).sum();
    hosts.div_ceil(cols) as u16 + 2
}

fn draw_grid(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let (name_w, cols) = grid_shape(app, area.width);
    let names = host_names(app, name_w);
    let cells: Vec<Vec<Span>> = every_host(app)
        .into_iter()
        .map(|(key, cells)| {
            let (symbol, word, style) = state(&cells, theme);
            let (errors, err_style) = errors(&cells, theme);
            let trend = match latency(&cells) {
                Some(latency) => Span::styled(format!(" {latency:>9}ms"), theme.ok()),
                None => Span::styled(format!(" {word:>11}"), style),
            };
            vec![
                Span::styled(symbol, style),
                Span::raw(" "),
                Span::raw(pad(&names[key.env][key.host], name_w)),
                trend,
                Span::styled(format!(" {errors}"), err_style),
            ]
        })
        .collect();
    let lines: Vec<Line> = cells
        .chunks(cols)
        .map(|row| {
            let mut spans = Vec::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::raw(" ".repeat(CELL_GAP)));
                }
                spans.extend(cell.iter().cloned());
            }
            Line::from(spans)
        })
        .collect();
    let title = Line::from(vec![
        Span::styled(" Health ", theme.title()),
        Span::styled("latency err ", theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(lines).block(pane(title, false, theme)), area);
}

/// `Health ✓ 4 healthy · ✗ web-3 failing · ⊘ eu-1 unreachable`: every host
/// that is not healthy by name, the healthy ones counted.
fn draw_line(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let names = host_names(app, widest_host(app).min(14));
    let hosts = every_host(app);
    let healthy = hosts
        .iter()
        .filter(|(_, c)| c.disconnected.is_none() && c.health == Some(HealthStatus::Healthy))
        .count();
    let mut spans = vec![
        Span::styled(" Health ", theme.title()),
        Span::styled(format!("✓ {healthy} healthy"), theme.ok()),
    ];
    for (key, cells) in &hosts {
        let (symbol, word, style) = state(cells, theme);
        if word == "healthy" {
            continue;
        }
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(
            format!("{symbol} {} {word}", names[key.env][key.host]),
            style,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
