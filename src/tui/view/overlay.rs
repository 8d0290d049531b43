//! Overlays: the help (`help`), what the last change said and what failed
//! in it, the questions before cancelling or quitting mid-change, and the
//! reason for overriding the deploy window.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::super::app::{App, ChangeView, Effect, Overlay, StepState};
use super::super::theme::Theme;
use super::{pane, wrap};
use crate::engine::Command;

/// Overlays are this wide, or the screen's width.
const WIDTH: u16 = 76;

/// What an open question or prompt asks, in one line: all a terminal too
/// small for the console shows of it.
pub fn question(app: &App) -> Option<String> {
    match &app.overlay {
        Overlay::ConfirmQuit => {
            Some("quit? q/y: cancel the change and quit · other keys: stay".into())
        }
        Overlay::ConfirmCancel => Some(format!(
            "cancel {}? y: cancel it · other keys: leave it running",
            app.running_change()
                .map(ChangeView::label)
                .unwrap_or_default()
        )),
        Overlay::Reason(text) => Some(format!("reason: {text}▏ Enter: override · Esc: leave")),
        Overlay::Filter(text) => Some(format!("filter: {text}▏")),
        Overlay::HostFilter(text) => Some(format!("hosts: {text}▏")),
        Overlay::None | Overlay::Help | Overlay::Output => None,
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let (title, lines): (&str, Vec<Line>) = match &app.overlay {
        Overlay::None | Overlay::Filter(_) | Overlay::HostFilter(_) => return,
        Overlay::Help => return super::help::draw(frame, area, app, theme),
        Overlay::Output => (" What failed ", failures(app, theme)),
        Overlay::Reason(text) => (
            " Override the deploy window ",
            reason(
                app,
                text,
                WIDTH.min(area.width).saturating_sub(2) as usize,
                theme,
            ),
        ),
        Overlay::ConfirmCancel => (
            " Cancel? ",
            vec![
                Line::from(Span::styled(
                    format!(
                        "{} is running.",
                        app.running_change()
                            .map(ChangeView::label)
                            .unwrap_or_default()
                    ),
                    theme.bad(),
                )),
                Line::from(
                    "y: cancel it (it stops after the current step, switched hosts go back)",
                ),
                Line::from("any other key: leave it running"),
            ],
        ),
        Overlay::ConfirmQuit => (
            " Quit? ",
            vec![
                Line::from(Span::styled(
                    format!(
                        "{} is running.",
                        app.running_change()
                            .map(ChangeView::label)
                            .unwrap_or_default()
                    ),
                    theme.bad(),
                )),
                Line::from("q or y: cancel it (switched hosts go back), then quit"),
                Line::from("any other key: stay"),
            ],
        ),
    };
    let height = lines.len() as u16 + 2;
    let rect = centered(area, WIDTH, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(
            Line::from(Span::styled(title, theme.title())),
            true,
            theme,
        )),
        rect,
    );
}

/// The refusal, what would start, and the reason being typed, wrapped to
/// `width` here so the overlay knows its height.
fn reason(app: &App, text: &str, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let Some(offer) = &app.offer else {
        return vec![Line::from("nothing to override")];
    };
    let what = match &offer.effect {
        Effect::Run(Command::Deploy { env, release }, _) => format!("Deploy {release} to {env}"),
        Effect::Run(Command::Promote { release, to }, _) => format!("Promote {release} to {to}"),
        Effect::Run(Command::Resume { env }, _) => format!("Resume the change on {env}"),
        _ => "Start it".to_owned(),
    };
    let first = offer.message.lines().next().unwrap_or_default();
    let mut lines: Vec<Line> = wrap(first, width, 3)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, theme.bad())))
        .collect();
    lines.extend(
        wrap(
            &format!("{what} anyway? Why (the history keeps it, with your name):"),
            width,
            2,
        )
        .into_iter()
        .map(Line::from),
    );
    // The end of a long reason stays in view as it is typed.
    let typed: String = {
        let room = width.saturating_sub(3);
        let n = text.chars().count();
        text.chars().skip(n.saturating_sub(room)).collect()
    };
    lines.push(Line::from(vec![
        Span::styled("> ", theme.title()),
        Span::raw(format!("{typed}▏")),
    ]));
    lines.push(Line::from(Span::styled(
        "Enter: start it anyway · Esc: leave it",
        theme.dim(),
    )));
    lines
}

fn failures(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let Some(c) = &app.change else {
        return vec![Line::from("no change has run yet")];
    };
    let mut lines = Vec::new();
    if let Some((_, summary, _)) = &c.finished {
        lines.extend(
            summary
                .lines()
                .map(|l| Line::from(Span::styled(l.to_owned(), theme.title()))),
        );
    }
    for h in c.hosts.iter().filter(|h| h.state == StepState::Failed) {
        lines.push(Line::from(Span::styled(
            format!(
                "{} at {}:",
                h.name,
                h.step.map(|s| s.label()).unwrap_or("?")
            ),
            theme.bad(),
        )));
        for l in h.error.as_deref().unwrap_or("").lines() {
            lines.push(Line::from(format!("  {l}")));
        }
    }
    let told = |t: &str| c.finished.as_ref().is_some_and(|f| f.1.contains(t));
    if let Some(a) = c
        .analysis
        .as_ref()
        .filter(|a| !told(&a.verdict.to_string()))
    {
        let style = match a.verdict {
            crate::engine::canary::Verdict::Pass { .. } => theme.ok(),
            crate::engine::canary::Verdict::Inconclusive { .. } => theme.warn(),
            crate::engine::canary::Verdict::Breach { .. } => theme.bad(),
        };
        lines.push(Line::from(Span::styled(a.verdict.to_string(), style)));
        for l in &a.lines {
            lines.push(Line::from(format!("  │ {l}")));
        }
    }
    for n in &c.notes {
        lines.push(Line::from(Span::styled(n.clone(), theme.warn())));
    }
    if lines.len() <= 1 {
        lines.push(Line::from("nothing failed"));
    }
    lines
}
