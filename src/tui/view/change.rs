//! The change in flight: per host, the step it is on and how far it got.
//! During a canary pause: after which step, on which hosts, what it waits
//! for, and what the analysis says. After a breach: which metric, and the
//! last log lines of the host that breached, kept once the change is over.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, ChangeView, PauseView, StepState};
use super::super::theme::Theme;
use super::{fit, pane, wrap};
use crate::engine::canary::Verdict;
use crate::engine::plan::LEFT_OUT;
use crate::engine::{ChangeOutcome, Control, human_duration};

/// Log lines of a breaching host shown at most.
const BREACH_LINES: usize = 5;
/// Rows the logs keep however much a paused or breached change has to say.
const LOGS_KEEP: u16 = 4;

/// Rows the pane takes: none until a change has run. `top` is what the
/// environments took of `body`; `width` the pane's.
pub fn height(app: &App, body: u16, top: u16, width: u16) -> u16 {
    let Some(c) = &app.change else { return 0 };
    let hosts = c.hosts.len() as u16;
    let inner = width.saturating_sub(2) as usize;
    let block = pause_rows(c) + analysis_rows(c, BREACH_LINES, inner);
    if block == 0 {
        return (hosts + 3).min(body / 3).max(4);
    }
    let summary = c.finished.is_some() && !summary_in_title(c);
    let want = 2 + u16::from(summary) + block + hosts;
    let room = body.saturating_sub(top + LOGS_KEEP).max(body / 3);
    want.min(room).max(4)
}

/// Rows of the pause block.
fn pause_rows(c: &ChangeView) -> u16 {
    match c.paused() {
        None => 0,
        Some(p) => 2 + u16::from(why_line(c, p).is_some()),
    }
}

/// The analysis is shown while paused, and a breach until the next change;
/// not an inconclusive one the pause's `why` line already tells.
fn shown_analysis(c: &ChangeView) -> Option<(&Verdict, &[String])> {
    let a = c.analysis.as_ref()?;
    match (&a.verdict, c.paused()) {
        (Verdict::Breach { .. }, _) => Some((&a.verdict, &a.lines[..])),
        (Verdict::Inconclusive { .. }, Some(p)) if p.why.is_some() => None,
        (_, Some(_)) => Some((&a.verdict, &a.lines[..])),
        (_, None) => None,
    }
}

fn analysis_rows(c: &ChangeView, max_lines: usize, width: usize) -> u16 {
    match shown_analysis(c) {
        None => 0,
        Some((v @ Verdict::Breach { .. }, lines)) => {
            (verdict_text(v, width).len() + lines.len().min(max_lines)) as u16
        }
        Some(_) => 1,
    }
}

/// Rows a verdict takes: a breach may take two, so its threshold and
/// detail are read in full; the others one.
const BREACH_TEXT_ROWS: usize = 2;

fn verdict_text(verdict: &Verdict, width: usize) -> Vec<String> {
    let mark = match verdict {
        Verdict::Pass { .. } => "✓",
        Verdict::Inconclusive { .. } => "?",
        Verdict::Breach { .. } => "✗",
    };
    let text = format!("{mark} {verdict}");
    match verdict {
        Verdict::Breach { .. } => wrap(&text, width, BREACH_TEXT_ROWS)
            .into_iter()
            .enumerate()
            .map(|(i, l)| if i == 0 { l } else { format!("  {l}") })
            .collect(),
        _ => vec![fit(&text, width)],
    }
}

/// Why the analysis could not decide, when that made the pause wait for
/// the operator: the latest inconclusive verdict's words, else the pause's.
fn why_line<'a>(c: &'a ChangeView, p: &'a PauseView) -> Option<&'a str> {
    let why = p.why.as_deref()?;
    Some(match c.analysis.as_ref().map(|a| &a.verdict) {
        Some(Verdict::Inconclusive { why: latest }) => latest.as_str(),
        _ => why,
    })
}

fn breached(c: &ChangeView) -> bool {
    c.analysis
        .as_ref()
        .is_some_and(|a| matches!(a.verdict, Verdict::Breach { .. }))
}

/// A canary breach whose hosts all went back: the title and the breach
/// lines say everything the summary would.
fn summary_in_title(c: &ChangeView) -> bool {
    breached(c) && matches!(c.finished, Some((ChangeOutcome::RolledBack, _, _)))
}

/// Whole seconds, rounded up: a countdown never shows 0s while it still runs.
fn countdown(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn pause_lines(
    app: &App,
    c: &ChangeView,
    p: &PauseView,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let names = c.names(&p.canary);
    let head = format!(
        "⏸ PAUSED after step {} of {} · canary: {} ({} of {} host{})",
        p.batch + 1,
        p.of,
        names.join(", "),
        names.len(),
        c.hosts.len(),
        if c.hosts.len() == 1 { "" } else { "s" }
    );
    let mut lines = vec![Line::from(Span::styled(
        fit(&head, width),
        theme.warn_bold(),
    ))];
    // The keys steer it only with its environment selected.
    let here = app.selected_env().name == c.env;
    let (what, style, keys) = match (p.sent, p.until) {
        (Some(word), _) => (
            format!(
                "  {} sent, waiting for the change to act…",
                match word {
                    Control::Next => "next step",
                    Control::Promote => "promote all",
                    Control::Abort => "ABORT",
                }
            ),
            theme.warn(),
            "",
        ),
        (None, Some(until)) => match until.duration_since(app.now) {
            Ok(left) if !left.is_zero() => (
                format!("  next step in {}", countdown(left)),
                theme.warn(),
                " · n go now · P promote all · R abort and roll back",
            ),
            _ => ("  next step starting…".to_owned(), theme.warn(), ""),
        },
        (None, None) => (
            "  WAITING FOR YOU".to_owned(),
            theme.warn_bold(),
            " · n next step · P promote all · R abort and roll back",
        ),
    };
    let room = width.saturating_sub(what.chars().count());
    let keys = match (app.readonly, here, keys.is_empty()) {
        (true, _, _) | (_, _, true) => String::new(),
        (false, true, false) => keys.to_owned(),
        (false, false, false) => format!(" · select {} to steer it (c cancels it)", c.env),
    };
    lines.push(Line::from(vec![
        Span::styled(what, style),
        Span::styled(fit(&keys, room), theme.dim()),
    ]));
    if let Some(why) = why_line(c, p) {
        lines.push(Line::from(Span::styled(
            fit(&format!("  analysis undecided: {why}"), width),
            theme.warn(),
        )));
    }
    lines
}

fn analysis_lines(
    app: &App,
    verdict: &Verdict,
    lines: &[String],
    max_lines: usize,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let style = match verdict {
        Verdict::Pass { .. } => theme.ok(),
        Verdict::Inconclusive { .. } => theme.warn(),
        Verdict::Breach { .. } => theme.bad(),
    };
    let mut out: Vec<Line> = verdict_text(verdict, width)
        .into_iter()
        .map(|t| Line::from(Span::styled(fit(&t, width), style)))
        .collect();
    if let Verdict::Breach { .. } = verdict {
        let pattern = app.config.logs.error_pattern.as_ref();
        let tail = &lines[lines.len().saturating_sub(max_lines)..];
        out.extend(tail.iter().map(|l| {
            let error = pattern.is_some_and(|re| re.is_match(l));
            Line::from(vec![
                Span::styled("  │ ", theme.dim()),
                Span::styled(
                    fit(l, width.saturating_sub(4)),
                    if error { theme.bad() } else { Style::new() },
                ),
            ])
        }));
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(c) = &app.change else { return };
    let elapsed = app.change_elapsed().map(human_duration).unwrap_or_default();
    let (state, style) = match &c.finished {
        None if c.paused().is_some() => ("PAUSED".to_owned(), theme.warn_bold()),
        None if c.aborting => (
            "ABORTED, putting the canary hosts back".to_owned(),
            theme.bad(),
        ),
        None if breached(c) => ("CANARY BREACH, putting hosts back".to_owned(), theme.bad()),
        None => (
            match c.batch {
                Some((i, of)) if of > 1 => format!("running, batch {i}/{of}"),
                _ => "running".to_owned(),
            },
            theme.warn(),
        ),
        Some(_) if c.refused.is_some() => ("REFUSED, nothing changed".to_owned(), theme.bad()),
        Some((ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo, _, _)) => {
            ("done".to_owned(), theme.ok())
        }
        Some((ChangeOutcome::Cancelled, _, _)) => {
            ("cancelled, hosts put back".to_owned(), theme.warn())
        }
        Some((ChangeOutcome::RolledBack, _, _)) if breached(c) => {
            ("CANARY BREACH, hosts put back".to_owned(), theme.bad())
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
    let rows = area.height.saturating_sub(2) as usize;
    let name_w = c
        .hosts
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(8)
        .min(width / 3);
    let mut lines: Vec<Line> = Vec::new();
    if let Some((_, summary, _)) = c.finished.as_ref().filter(|_| !summary_in_title(c)) {
        let text = c.refused.as_deref().unwrap_or(summary);
        let first = text.lines().next().unwrap_or_default();
        lines.push(Line::from(Span::styled(fit(first, width), style)));
    }
    if let Some(p) = c.paused() {
        lines.extend(pause_lines(app, c, p, width, theme));
    }
    if let Some((verdict, log)) = shown_analysis(c) {
        // A breach's log lines come before the hosts: they say why; at
        // least the first host (the canary) stays in view.
        let fixed = lines.len() + verdict_text(verdict, width).len() + c.hosts.len().min(1);
        let room = rows.saturating_sub(fixed).clamp(1, BREACH_LINES);
        lines.extend(analysis_lines(app, verdict, log, room, width, theme));
    }
    for h in &c.hosts {
        let (mark, st) = match h.state {
            StepState::Waiting => ("·", theme.dim()),
            StepState::Running => ("▶", theme.warn()),
            StepState::Done => ("✓", theme.ok()),
            StepState::Skipped => ("-", theme.dim()),
            StepState::Failed => ("✗", theme.bad()),
        };
        let left_out = h.state == StepState::Skipped
            && h.error.as_deref().is_some_and(|e| e.starts_with(LEFT_OUT));
        let (mark, st) = if left_out {
            ("⊘", theme.bad())
        } else if h.reverted && !h.failed {
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
                if h.state == StepState::Failed || left_out {
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
