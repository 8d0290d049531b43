//! What the views and the keys ask of the state: the environment changed
//! last, what `R` would do (or why it cannot), a change another process
//! runs, the history of an environment, and the moment the key table holds.

use std::time::SystemTime;

use super::*;
use crate::engine::bluegreen::PendingFinish;
use crate::engine::journal::{ChangeInfo, Liveness, PauseState};
use crate::model::{HistoryRecord, ReleaseId};

/// One line of the console's history: a change, as `shipdeck history`
/// lists it (`model::history::changes`), its hosts named as the screen does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub time: String,
    pub action: String,
    pub release: Option<String>,
    pub from: Option<String>,
    pub who: String,
    /// `success 3/3`, `FAILED 1/3`.
    pub outcome: String,
    pub failed: bool,
    /// The hosts that did not succeed.
    pub failed_hosts: Vec<String>,
    pub message: Option<String>,
}

impl App {
    /// The host filter being typed, else the kept one.
    pub fn host_filter(&self) -> Option<&str> {
        match &self.overlay {
            Overlay::HostFilter(text) => Some(text.as_str()).filter(|t| !t.is_empty()),
            _ => self.host_filter.as_deref(),
        }
    }

    /// Whether the environments pane shows this host under the host filter.
    pub fn host_shown(&self, key: HostKey) -> bool {
        let Some(filter) = self.host_filter() else {
            return true;
        };
        let name = self.host_name(key);
        if filter.chars().any(char::is_uppercase) {
            name.contains(filter)
        } else {
            name.to_lowercase().contains(filter)
        }
    }

    /// The environment the hosts say was changed last (their newest history
    /// record or journal); on a tie the later one; none: the last one.
    pub fn latest_env(&self) -> usize {
        let mut latest: Option<(SystemTime, usize)> = None;
        for (env, row) in self.envs.iter().enumerate() {
            for host in 0..row.hosts.len() {
                let Some(v) = self
                    .monitor
                    .host(HostKey { env, host })
                    .and_then(|h| h.view.as_ref())
                else {
                    continue;
                };
                let journal = v.change.iter().map(|c| c.updated.as_str());
                let times = v.history.iter().map(|r| r.time.as_str()).chain(journal);
                for t in times.filter_map(parse_time) {
                    if latest.is_none_or(|(l, _)| t >= l) {
                        latest = Some((t, env));
                    }
                }
            }
        }
        latest.map_or(self.envs.len().saturating_sub(1), |(_, e)| e)
    }

    /// What `R` would do now, as the footer names it: the selected
    /// environment and what its hosts go back to; `None` where a rollback
    /// cannot start (`rollback_refusal` says why).
    pub fn rollback_hint(&self) -> Option<String> {
        if self.rollback_refusal().is_some() {
            return None;
        }
        let env = &self.selected_env().name;
        let mut to: Vec<String> = self
            .rollback_preview(self.env_cursor)
            .into_iter()
            .filter_map(|(_, _, prev)| prev.map(|p| p.to_string()))
            .collect();
        to.sort();
        to.dedup();
        Some(if to.is_empty() {
            format!("roll back {env}")
        } else {
            format!("roll back {env} → {}", to.join(","))
        })
    }

    /// Why `R` cannot roll the selected environment back now, if it cannot:
    /// a change of this console runs, another process's change holds its
    /// hosts, or every host was read and none has a release to go back to
    /// (an interrupted change is always undone by `R`).
    pub fn rollback_refusal(&self) -> Option<String> {
        let env = &self.selected_env().name;
        if let Some(c) = self.running_change() {
            let what = c.label();
            return Some(if &c.env == env {
                format!(
                    "not rolled back: {what} is running; c cancels it (asks first), switched hosts go back"
                )
            } else {
                format!(
                    "{env} not rolled back: {what} is running; roll {env} back once it ends (c cancels it, asking first)"
                )
            });
        }
        if let Some(c) = self.foreign_change(self.env_cursor) {
            if c.liveness == Liveness::Interrupted {
                return None;
            }
            if self.foreign_pause(self.env_cursor).is_none() {
                return Some(format!(
                    "{env} not rolled back: {} {} by {} is in progress and holds its hosts",
                    c.kind.as_str(),
                    c.release,
                    c.operator
                ));
            }
        }
        let preview = self.rollback_preview(self.env_cursor);
        let all_read = (0..preview.len()).all(|host| {
            self.monitor
                .host(HostKey {
                    env: self.env_cursor,
                    host,
                })
                .is_some_and(|h| h.view.is_some())
        });
        if all_read && preview.iter().all(|(_, _, prev)| prev.is_none()) {
            return Some(format!(
                "{env} not rolled back: no host of it has a release to go back to"
            ));
        }
        None
    }

    /// What a rollback of `env` would do, host by host, from what the hosts say.
    pub fn rollback_preview(
        &self,
        env: usize,
    ) -> Vec<(String, Option<ReleaseId>, Option<ReleaseId>)> {
        self.envs[env]
            .hosts
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let view = self
                    .monitor
                    .host(HostKey { env, host: i })
                    .and_then(|h| h.view.as_ref());
                (
                    name.clone(),
                    view.and_then(|v| v.current.clone()),
                    view.and_then(|v| v.previous.clone()),
                )
            })
            .collect()
    }

    /// What `c` would cancel, as the footer names it: the environment too
    /// when it is not the selected one.
    pub fn cancel_hint(&self) -> Option<String> {
        let c = self.running_change()?;
        Some(if c.env == self.selected_env().name {
            "cancel".to_owned()
        } else {
            format!("cancel {}", c.env)
        })
    }

    /// The change a host of environment `env` carries that is not this
    /// console's: an interrupted one first, then one on another machine, then
    /// one of another process here.
    pub fn foreign_change(&self, env: usize) -> Option<&ChangeInfo> {
        let ours = self.change.as_ref().map(|c| c.id.as_str());
        let infos: Vec<&ChangeInfo> = self
            .host_changes(env)
            .filter(|c| Some(c.change.as_str()) != ours)
            .collect();
        [
            Liveness::Interrupted,
            Liveness::Elsewhere,
            Liveness::Running,
        ]
        .into_iter()
        .find_map(|l| infos.iter().copied().find(|c| c.liveness == l))
    }

    /// Where the change another process runs on `env` is paused, by the
    /// newest pause any of its hosts' journals records.
    pub fn foreign_pause(&self, env: usize) -> Option<(&ChangeInfo, &PauseState)> {
        let c = self.foreign_change(env)?;
        if c.liveness == Liveness::Interrupted {
            return None;
        }
        let pause = self
            .host_changes(env)
            .filter(|o| o.change == c.change)
            .filter_map(|o| o.pause.as_ref())
            .max_by_key(|p| p.batch)?;
        Some((c, pause))
    }

    /// What the journals on the hosts of `env` say of a change, host by host.
    fn host_changes(&self, env: usize) -> impl Iterator<Item = &ChangeInfo> {
        (0..self.envs[env].hosts.len())
            .filter_map(move |host| self.monitor.host(HostKey { env, host }))
            .filter_map(|h| h.view.as_ref()?.change.as_deref())
    }

    /// The old slots a blue/green environment still runs, by host.
    pub fn unfinished(&self, env: usize) -> Vec<(usize, &PendingFinish)> {
        (0..self.envs[env].hosts.len())
            .filter_map(|host| {
                let v = self.monitor.host(HostKey { env, host })?.view.as_ref()?;
                Some((host, v.pending_finish.as_deref()?))
            })
            .collect()
    }

    /// What the key bindings hold for now.
    pub fn moment(&self) -> keymap::Moment {
        let env = self.env_cursor;
        keymap::Moment {
            page: self.page,
            paused: self.paused_here().is_some()
                || (!self.change_running() && self.foreign_pause(env).is_some()),
            interrupted: self
                .foreign_change(env)
                .is_some_and(|c| c.liveness == Liveness::Interrupted),
            unfinished: !self.unfinished(env).is_empty(),
            offered: self.offer.is_some(),
            running: self.change_running(),
            can_roll_back: self.rollback_refusal().is_none(),
            change_ran: self.change.is_some(),
            on_hosts: self.page == Page::Console && self.focus == Pane::Environments,
        }
    }

    /// Why a binding does nothing now, in words for the status line and `?`.
    pub fn why_not(&self, b: &keymap::Binding) -> String {
        let m = self.moment();
        if self.readonly && b.changes_hosts {
            return "off: this console is read-only".to_owned();
        }
        if b.action == Action::Rollback
            && b.on == keymap::Where::Console
            && m.page == Page::Console
            && !m.paused
            && let Some(why) = self.rollback_refusal()
        {
            return why;
        }
        b.why_not(m).to_owned()
    }

    /// The history of environment `env` from what its hosts' views hold,
    /// newest first: one row per change, merged across its hosts.
    pub fn history_rows(&self, env: usize) -> Vec<HistoryRow> {
        let Some(row) = self.envs.get(env) else {
            return Vec::new();
        };
        let mut records: Vec<HistoryRecord> = (0..row.hosts.len())
            .filter_map(|host| self.monitor.host(HostKey { env, host })?.view.as_ref())
            .flat_map(|v| v.history.iter().filter(|r| r.env == row.name).cloned())
            .collect();
        crate::model::history::in_order(&mut records);
        let engine_names: Vec<&str> = self.config.environments[env]
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        let screen = |host: &str| {
            engine_names
                .iter()
                .position(|n| *n == host)
                .map_or_else(|| host.to_owned(), |i| row.hosts[i].clone())
        };
        let mut rows: Vec<HistoryRow> = crate::model::history::changes(&records)
            .iter()
            .map(|c| {
                let first = c.first();
                HistoryRow {
                    time: first.time.clone(),
                    action: first.action.as_str().to_owned(),
                    release: first.release.as_ref().map(ToString::to_string),
                    from: first.from.as_ref().map(ToString::to_string),
                    who: first.operator.to_string(),
                    outcome: c.outcome(),
                    failed: c.succeeded() < c.records.len(),
                    failed_hosts: c.failed_hosts().into_iter().map(screen).collect(),
                    message: c.message().map(|m| self.on_screen(m)),
                }
            })
            .collect();
        rows.reverse();
        rows
    }

    /// The first blue/green change whose `finish_after` this console will
    /// finish when it falls due: (environment, change, when).
    pub fn next_finish(&self) -> Option<(usize, &PendingFinish, SystemTime)> {
        if self.readonly {
            return None;
        }
        (0..self.envs.len())
            .flat_map(|e| self.unfinished(e).into_iter().map(move |(_, p)| (e, p)))
            .filter(|(_, p)| !self.finishing.contains(&p.change))
            .filter_map(|(e, p)| Some((e, p, p.due()?)))
            .min_by_key(|(_, _, at)| *at)
    }
}
