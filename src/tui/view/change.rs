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

use super::super::app::{App, ChangeView, HostProgress, PauseView, StepState};
use super::super::theme::Theme;
use super::{fit, pad, pane, wrap};
use crate::engine::canary::Verdict;
use crate::engine::plan::LEFT_OUT;
use crate::engine::{ChangeOutcome, Control, human_duration};
use crate::model::fit::fit_all;

/// Log lines of a breaching host shown at most.
const BREACH_LINES: usize = 5;
/// Below this many rows a finished change folds to one line; a change that
/// succeeded folds on any screen (`o` shows it all).
const FOLD_BELOW: u16 = 30;
/// The progress bar, in characters.
const BAR: usize = 10;

/// How the change pane is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Form {
    /// No change has run.
    #[default]
    None,
    /// One line, no frame: a finished change, or one squeezed out.
    Line,
    Pane,
}

/// How the pane would be drawn and the rows it asks for; the layout may
/// give fewer. `body` is the height under the screen's status and keys,
/// `screen` the terminal's.
pub fn wanted(app: &App, body: Rect, screen: u16) -> (Form, u16) {
    let Some(c) = &app.change else {
        return (Form::None, 0);
    };
    if c.finished.is_some() && (c.succeeded() || screen < FOLD_BELOW) {
        return (Form::Line, 1);
    }
    let hosts = c.hosts.len() as u16;
    let inner = body.width.saturating_sub(2) as usize;
    let block = pause_rows(c) + analysis_rows(c, BREACH_LINES, inner);
    let summary = c.finished.is_some() && !summary_in_title(c);
    let want = 2 + u16::from(summary) + block + hosts;
    if block == 0 {
        // The hosts alone: at most a third of the body, they scroll.
        return (Form::Pane, want.min((body.height / 3).max(4)));
    }
    (Form::Pane, want)
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

/// The change's state in words, and its style: `PAUSED`, `running, batch
/// 2/3`, `FAILED, hosts put back`.
fn state(c: &ChangeView, theme: &Theme) -> (String, Style) {
    let (text, style) = match &c.finished {
        None if c.paused().is_some() => ("PAUSED", theme.warn_bold()),
        None if c.aborting => ("ABORTED, putting the canary hosts back", theme.bad()),
        None if breached(c) => ("CANARY BREACH, putting hosts back", theme.bad()),
        None => {
            let text = match c.batch {
                Some((i, of)) if of > 1 => format!("running, batch {i}/{of}"),
                _ => "running".to_owned(),
            };
            return (text, theme.warn());
        }
        Some(_) if c.refused.is_some() => ("REFUSED, nothing changed", theme.bad()),
        Some((ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo, _, _)) => ("done", theme.ok()),
        Some((ChangeOutcome::Cancelled, _, _)) => ("cancelled, hosts put back", theme.warn()),
        Some((ChangeOutcome::RolledBack, _, _)) if breached(c) => {
            ("CANARY BREACH, hosts put back", theme.bad())
        }
        Some((ChangeOutcome::RolledBack, _, _)) => ("FAILED, hosts put back", theme.bad()),
        Some((ChangeOutcome::Failed, _, _)) => ("FAILED", theme.bad()),
    };
    (text.to_owned(), style)
}

/// How long the change took, or runs; while paused, how long the pause is.
fn clock(app: &App, c: &ChangeView) -> String {
    match c.paused() {
        Some(p) => human_duration(app.now.duration_since(p.since).unwrap_or_default()),
        None => app.change_elapsed().map(human_duration).unwrap_or_default(),
    }
}

/// `promote v2 → production `
fn what(c: &ChangeView) -> String {
    format!(
        " {} {}→ {} ",
        c.kind.as_str(),
        c.release
            .as_ref()
            .map(|r| format!("{r} "))
            .unwrap_or_default(),
        c.env
    )
}

pub fn draw(frame: &mut Frame, area: Rect, form: Form, app: &App, theme: &Theme) {
    let Some(c) = &app.change else { return };
    if area.height == 0 {
        return;
    }
    match form {
        Form::None => {}
        Form::Line => draw_line(frame, area, app, c, theme),
        Form::Pane => draw_pane(frame, area, app, c, theme),
    }
}

/// The change in one line: what, how it stands, how long, and its summary
/// (or, while it runs, how many hosts are done).
fn draw_line(frame: &mut Frame, area: Rect, app: &App, c: &ChangeView, theme: &Theme) {
    let (state, style) = state(c, theme);
    let mark = match &c.finished {
        None => "▶",
        Some(_) if c.succeeded() => "✓",
        Some(_) => "✗",
    };
    let head = format!("{mark}{}{state} {} ", what(c), clock(app, c));
    let tail = match &c.finished {
        Some((_, summary, _)) => {
            let text = c.refused.as_deref().unwrap_or(summary);
            format!(
                "· {} · o: all of it",
                text.lines().next().unwrap_or_default()
            )
        }
        None => {
            let done = c
                .hosts
                .iter()
                .filter(|h| h.state == StepState::Done)
                .count();
            format!("· {done}/{} hosts done", c.hosts.len())
        }
    };
    let width = area.width as usize;
    let room = width.saturating_sub(head.chars().count());
    let line = Line::from(vec![
        Span::styled(head, style),
        Span::styled(fit(&tail, room), theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_pane(frame: &mut Frame, area: Rect, app: &App, c: &ChangeView, theme: &Theme) {
    let (state, style) = state(c, theme);
    let title = Line::from(vec![
        Span::styled(what(c), theme.title()),
        Span::styled(format!("{state} "), style),
        Span::styled(format!("{} ", clock(app, c)), theme.dim()),
    ]);
    let width = area.width.saturating_sub(2) as usize;
    let rows = area.height.saturating_sub(2) as usize;
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
    let names: Vec<&str> = c.hosts.iter().map(|h| h.name.as_str()).collect();
    let name_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(8)
        .min(width / 3);
    let names = fit_all(&names, name_w);
    for (h, name) in c.hosts.iter().zip(&names) {
        lines.push(host_line(c, h, name, name_w, width, theme));
    }
    frame.render_widget(Paragraph::new(lines).block(pane(title, false, theme)), area);
}

/// One host's row: its mark, its bar, its step, its error. Once the change
/// is over the bar is final: full where the host finished, stopped (`╌`)
/// where it did not, never progress that goes on.
fn host_line(
    c: &ChangeView,
    h: &HostProgress,
    name: &str,
    name_w: usize,
    width: usize,
    theme: &Theme,
) -> Line<'static> {
    let (mark, st) = match h.state {
        StepState::Waiting => ("·", theme.dim()),
        StepState::Running => ("▶", theme.warn()),
        StepState::Done => ("✓", theme.ok()),
        StepState::Skipped => ("-", theme.dim()),
        StepState::Failed => ("✗", theme.bad()),
    };
    let left_out = h.state == StepState::Skipped
        && h.error.as_deref().is_some_and(|e| e.starts_with(LEFT_OUT));
    let over = c.finished.is_some();
    // Stopped before it switched: not a host that finished.
    let stopped = over && !c.succeeded() && h.state == StepState::Done && !h.reverted;
    let (mark, st) = if left_out {
        ("⊘", theme.bad())
    } else if h.reverted && !h.failed {
        ("↩", theme.warn())
    } else if stopped {
        ("·", theme.dim())
    } else {
        (mark, st)
    };
    let step = if h.reverted {
        "put back".to_owned()
    } else if over && h.state == StepState::Done && c.succeeded() {
        "done".to_owned()
    } else if over && h.state != StepState::Skipped {
        format!(
            "stopped: {}",
            h.step.map(|s| s.label()).unwrap_or("waiting")
        )
    } else {
        h.step.map(|s| s.label()).unwrap_or("waiting").to_owned()
    };
    let bar = if over && (c.succeeded() || h.reverted) && h.state != StepState::Skipped {
        "█".repeat(BAR)
    } else {
        // A bar that stopped never reads as a finished one.
        let most = if over { BAR - 1 } else { BAR };
        let filled = (h.steps_done * BAR / h.steps_total.max(1)).min(most);
        let rest = if over { "╌" } else { "░" };
        format!("{}{}", "█".repeat(filled), rest.repeat(BAR - filled))
    };
    let mut spans = vec![
        Span::styled(format!("{mark} "), st),
        Span::raw(pad(name, name_w)),
        Span::raw(" "),
        Span::styled(bar, st),
        Span::raw(" "),
        Span::raw(fit(&step, 15)),
    ];
    if let Some(err) = &h.error {
        let room = width.saturating_sub(name_w + 30);
        spans.push(Span::styled(
            fit(err.lines().next().unwrap_or_default(), room),
            if h.state == StepState::Failed || left_out {
                theme.bad()
            } else {
                theme.dim()
            },
        ));
    }
    Line::from(spans)
}
