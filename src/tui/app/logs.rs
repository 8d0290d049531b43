//! The logs pane's reducer: following or paused at a line, scrolled by a
//! line, a page, or to either end; one host or all; filtered as the filter
//! is typed.

use super::*;
use crate::monitor::LogEntry;

/// What the logs pane shows and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogView {
    /// Showing the newest lines as they come.
    pub follow: bool,
    /// While paused: only lines older than this arrival number are shown, so
    /// the view holds still while lines keep coming.
    pub anchor: Option<u64>,
    /// Lines scrolled back from the anchor (or from the newest).
    pub scroll: usize,
    /// The selected host's lines only.
    pub one_host: bool,
    /// The filter kept with Enter (the one being typed is in the overlay).
    pub filter: Option<String>,
}

impl Default for LogView {
    fn default() -> Self {
        LogView {
            follow: true,
            anchor: None,
            scroll: 0,
            one_host: false,
            filter: None,
        }
    }
}

impl App {
    /// The filter the logs show now: the one being typed, else the kept one.
    pub fn log_filter(&self) -> Option<&str> {
        match &self.overlay {
            Overlay::Filter(text) => Some(text.as_str()).filter(|t| !t.is_empty()),
            _ => self.logs.filter.as_deref(),
        }
    }

    /// The host the logs are narrowed to, if they are.
    pub fn log_host(&self) -> Option<HostKey> {
        self.logs.one_host.then(|| self.selected_host())
    }

    /// Hosts in the logs' scope whose lines came faster than the console
    /// took them, with how many were dropped; the most first.
    pub fn logs_dropped(&self) -> Vec<(HostKey, u64)> {
        let only = self.log_host();
        let mut dropped: Vec<(HostKey, u64)> = self
            .monitor
            .hosts()
            .filter(|(key, h)| h.logs_dropped > 0 && only.is_none_or(|o| o == *key))
            .map(|(key, h)| (key, h.logs_dropped))
            .collect();
        dropped.sort_by_key(|(key, n)| (std::cmp::Reverse(*n), *key));
        dropped
    }

    /// The lines the logs pane shows in `rows` rows, oldest first.
    pub fn log_lines(&self, rows: usize) -> Vec<LogEntry<'_>> {
        let lines = self.monitor.logs_before(
            self.log_host(),
            self.log_filter(),
            rows + self.logs.scroll,
            self.logs.anchor,
        );
        let end = lines.len().saturating_sub(self.logs.scroll);
        let start = end.saturating_sub(rows);
        lines[start..end].to_vec()
    }

    /// While paused: the lines (that the filter lets through) below the
    /// last one shown, arrived since or scrolled past.
    pub fn logs_behind(&self) -> usize {
        match self.logs.anchor {
            Some(anchor) if !self.logs.follow => {
                self.monitor
                    .count_logs_since(self.log_host(), self.log_filter(), anchor)
                    + self.logs.scroll
            }
            _ => 0,
        }
    }

    /// Rows the logs pane has on this screen.
    fn log_rows(&self) -> usize {
        let (w, h) = self.screen.unwrap_or((120, 40));
        super::super::view::log_rows(self, w, h).max(1)
    }

    pub(super) fn pause_logs(&mut self) {
        self.logs.follow = false;
        self.logs.anchor = Some(self.monitor.last_log_seq() + 1);
    }

    pub(super) fn follow_logs(&mut self) {
        self.logs.follow = true;
        self.logs.anchor = None;
        self.logs.scroll = 0;
    }

    /// How far back the logs can scroll: to their oldest line in view.
    fn log_scroll_max(&self) -> usize {
        let all = self
            .monitor
            .logs_before(
                self.log_host(),
                self.log_filter(),
                usize::MAX,
                self.logs.anchor,
            )
            .len();
        all.saturating_sub(self.log_rows())
    }

    /// `lines` older (positive) or newer (negative). Going back pauses;
    /// coming past the newest line resumes following.
    pub(super) fn scroll_logs(&mut self, lines: isize) {
        if lines > 0 {
            if self.logs.follow {
                self.pause_logs();
            }
            let max = self.log_scroll_max();
            self.logs.scroll = (self.logs.scroll + lines as usize).min(max);
        } else if self.logs.scroll > 0 {
            self.logs.scroll = self.logs.scroll.saturating_sub(lines.unsigned_abs());
        } else if !self.logs.follow {
            self.follow_logs();
        }
    }

    pub(super) fn page_logs(&mut self, back: bool) {
        let page = self.log_rows().saturating_sub(1).max(1) as isize;
        self.scroll_logs(if back { page } else { -page });
    }

    /// The oldest line kept, paused there.
    pub(super) fn logs_to_top(&mut self) {
        if self.logs.follow {
            self.pause_logs();
        }
        self.logs.scroll = self.log_scroll_max();
    }

    /// The filter changed: from the newest line it lets through.
    pub(super) fn refilter_logs(&mut self) {
        self.logs.scroll = 0;
    }
}
