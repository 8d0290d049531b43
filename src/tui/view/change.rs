//! The change in flight: per host, the step it is on and how far it got.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, StepState};
use super::super::theme::Theme;
use super::{fit, pane};
use crate::engine::{ChangeOutcome, human_duration};

/// Rows the pane takes: none until a change has run.
pub fn height(app: &App, body: u16) -> u16 {
    match &app.change {
        None => 0,
        Some(c) => (c.hosts.len() as u16 + 3).min(body / 3).max(4),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(c) = &app.change else { return };
    let elapsed = app.change_elapsed().map(human_duration).unwrap_or_default();
    let (state, style) = match &c.finished {
        None => (
            match c.batch {
                Some((i, of)) if of > 1 => format!("running, batch {i}/{of}"),
                _ => "running".to_owned(),
            },
            theme.warn(),
        ),
        Some((ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo, _, _)) => {
            ("done".to_owned(), theme.ok())
        }
        Some((ChangeOutcome::Cancelled, _, _)) => {
            ("cancelled, hosts put back".to_owned(), theme.warn())
        }
        Some((ChangeOutcome::RolledBack, _, _)) => {
            ("FAILED, hosts put back".to_owned(), theme.bad())
        }
        Some((ChangeOutcome::Failed, _, _)) => ("FAILED".to_owned(), theme.bad()),
    };
    let title = Line::from(vec![
        Span::styled(
            format!(
                " {} {}→ {} ",
                c.kind.as_str(),
                c.release
                    .as_ref()
                    .map(|r| format!("{r} "))
                    .unwrap_or_default(),
                c.env
            ),
            theme.title(),
        ),
        Span::styled(format!("{state} "), style),
        Span::styled(format!("{elapsed} "), theme.dim()),
    ]);
    let width = area.width.saturating_sub(2) as usize;
    let name_w = c
        .hosts
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(8)
        .min(width / 3);
    let mut lines: Vec<Line> = Vec::new();
    if let Some((_, summary, _)) = &c.finished {
        lines.push(Line::from(Span::styled(fit(summary, width), style)));
    }
    for h in &c.hosts {
        let (mark, st) = match h.state {
            StepState::Waiting => ("·", theme.dim()),
            StepState::Running => ("▶", theme.warn()),
            StepState::Done => ("✓", theme.ok()),
            StepState::Skipped => ("-", theme.dim()),
            StepState::Failed => ("✗", theme.bad()),
        };
        let (mark, st) = if h.reverted && !h.failed {
            ("↩", theme.warn())
        } else {
            (mark, st)
        };
        let step = if h.reverted {
            "put back"
        } else {
            h.step.map(|s| s.label()).unwrap_or("waiting")
        };
        let bar_w = 10;
        let filled = (h.steps_done * bar_w / h.steps_total.max(1)).min(bar_w);
        let bar = format!("{}{}", "█".repeat(filled), "░".repeat(bar_w - filled));
        let mut spans = vec![
            Span::styled(format!("{mark} "), st),
            Span::raw(fit(&h.name, name_w)),
            Span::raw(" "),
            Span::styled(bar, st),
            Span::raw(" "),
            Span::raw(fit(step, 13)),
        ];
        if let Some(err) = &h.error {
            let room = width.saturating_sub(name_w + 28);
            spans.push(Span::styled(
                fit(err.lines().next().unwrap_or_default(), room),
                if h.state == StepState::Failed {
                    theme.bad()
                } else {
                    theme.dim()
                },
            ));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(pane(title, false, theme)), area);
}
