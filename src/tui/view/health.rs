//! Health per host: status, latency sparkline, error rate, CPU, memory.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::App;
use super::super::theme::Theme;
use super::{fit, pane, spark, widest_host};
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

/// Columns of a health row other than the host's name.
const HEALTH_FIXED: usize = 35;
const SPARK: usize = 8;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width.saturating_sub(2) as usize;
    // As wide as the widest name, within what the pane leaves it.
    let name_width = widest_host(app).clamp(12, width.saturating_sub(HEALTH_FIXED).max(12));
    let mut lines = Vec::new();
    for (e, env) in app.envs.iter().enumerate() {
        for (h, name) in env.hosts.iter().enumerate() {
            let cells = host_cells(app, HostKey { env: e, host: h });
            let (symbol, word, style) = state(&cells, theme);
            let latency = cells
                .last_latency
                .map_or("   -".to_owned(), |l| format!("{l:>4}"));
            let errors = match cells.error_ratio {
                Some(r) => format!("{:>4.1}%", r * 100.0),
                None => format!("{:>4.0}/m", cells.error_lines_per_min),
            };
            let cpu = cells
                .cpu_pct
                .map_or("  -".to_owned(), |c| format!("{c:>3.0}"));
            let mem = cells.mem.map_or("  -".to_owned(), |(used, total)| {
                format!("{:>3.0}", used as f64 * 100.0 / total.max(1) as f64)
            });
            let err_style =
                if cells.error_ratio.is_some_and(|r| r > 0.01) || cells.error_lines_per_min > 0.0 {
                    theme.bad()
                } else {
                    theme.dim()
                };
            // A host that is not healthy shows its state's word where its
            // latency would be: an old figure would read as a live one.
            let trend =
                if cells.disconnected.is_none() && cells.health == Some(HealthStatus::Healthy) {
                    Span::styled(
                        format!(" {} {latency}ms ", spark(&cells.latency_ms, SPARK)),
                        theme.ok(),
                    )
                } else {
                    Span::styled(format!(" {word:<15} "), style)
                };
            lines.push(Line::from(vec![
                Span::styled(symbol, style),
                Span::raw(" "),
                Span::raw(fit(name, name_width)),
                trend,
                Span::styled(errors, err_style),
                Span::raw(format!(" {cpu}% {mem}%")),
            ]));
        }
    }
    let title = Line::from(vec![
        Span::styled(" Health ", theme.title()),
        Span::styled("latency  err  cpu mem ", theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(lines).block(pane(title, false, theme)), area);
}
