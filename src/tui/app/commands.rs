//! The commands the console asks of the engine (`Effect::Run`), and what
//! the status line says about each: ship, override, resume, finish, steer a
//! pause, roll back.

use super::*;

impl App {
    pub(super) fn ship(&mut self, promote: bool) -> Vec<Effect> {
        if self.change_running() {
            self.say(
                "a change is already running: wait for it, or cancel it with c",
                Tone::Info,
            );
            return Vec::new();
        }
        let Some(release) = self.selected_release().map(|m| m.id.clone()) else {
            self.say(
                "no release to ship: build one with `shipdeck build`",
                Tone::Info,
            );
            return Vec::new();
        };
        let env = self.selected_env().name.clone();
        let verb = if promote { "promoting" } else { "deploying" };
        self.say(format!("{verb} {release} to {env}…"), Tone::Info);
        self.request(Effect::Run(
            if promote {
                Command::Promote { release, to: env }
            } else {
                Command::Deploy { env, release }
            },
            ChangeOptions::default(),
        ))
    }

    /// Ask for a change, remembering it: the deploy window may refuse it,
    /// and `O` then asks for it again.
    pub(super) fn request(&mut self, effect: Effect) -> Vec<Effect> {
        self.offer = None;
        self.requested = Some(effect.clone());
        vec![effect]
    }

    /// The refused change again, with the operator's reason.
    pub(super) fn override_with(&mut self, reason: String) -> Vec<Effect> {
        let Some(offer) = self.offer.take() else {
            return Vec::new();
        };
        if self.change_running() {
            self.say("a change is already running: wait for it", Tone::Info);
            return Vec::new();
        }
        let mut effect = offer.effect;
        match &mut effect {
            Effect::Run(
                Command::Deploy { .. } | Command::Promote { .. } | Command::Resume { .. },
                opts,
            ) => opts.override_reason = Some(reason.clone()),
            _ => return Vec::new(),
        }
        self.say(
            format!("OVERRIDING the deploy window: {reason} (the history keeps it)"),
            Tone::Bad,
        );
        self.request(effect)
    }

    /// `r`: continue the selected environment's interrupted change.
    pub(super) fn resume(&mut self) -> Vec<Effect> {
        if self.change_running() {
            self.say("a change is already running: wait for it", Tone::Info);
            return Vec::new();
        }
        let env = self.selected_env().name.clone();
        let what = self
            .foreign_change(self.env_cursor)
            .map(|c| format!("{} {} by {}", c.kind.as_str(), c.release, c.operator))
            .unwrap_or_default();
        self.say(
            format!("resuming {what} on {env} from where it stopped…"),
            Tone::Info,
        );
        self.request(Effect::Run(
            Command::Resume { env },
            ChangeOptions::default(),
        ))
    }

    /// `F`: stop the old slots of the selected blue/green environment.
    pub(super) fn finish(&mut self) -> Vec<Effect> {
        if self.change_running() {
            self.say("a change is already running: wait for it", Tone::Info);
            return Vec::new();
        }
        let env = self.selected_env().name.clone();
        self.say(
            format!("finishing {env}: stopping the old slots; a rollback will start the old release again"),
            Tone::Info,
        );
        self.request(Effect::Run(
            Command::Finish { env, change: None },
            ChangeOptions::default(),
        ))
    }

    /// A blue/green change whose `finish_after` is up is finished once, as
    /// soon as no other change of this console runs.
    pub(super) fn finish_when_due(&mut self) -> Vec<Effect> {
        if self.change_running() {
            return Vec::new();
        }
        let Some((e, p, at)) = self.next_finish() else {
            return Vec::new();
        };
        if at > self.now {
            return Vec::new();
        }
        let env = self.envs[e].name.clone();
        let change = p.change.clone();
        self.finishing.push(change.clone());
        self.say(
            format!("finish_after is up: stopping the old slots of {env}"),
            Tone::Info,
        );
        self.request(Effect::Run(
            Command::Finish {
                env,
                change: Some(change),
            },
            ChangeOptions::default(),
        ))
    }

    /// Tell the paused change what to do: once per pause, though `R` (abort)
    /// may still follow an `n` or a `P` the change has not taken yet. A
    /// change paused by another process or machine hears it through its
    /// hosts.
    pub(super) fn control(&mut self, word: Control) -> Vec<Effect> {
        if self.paused_here().is_none() {
            return self.signal(word);
        }
        let Some(c) = self.change.as_mut().filter(|c| c.running()) else {
            return Vec::new();
        };
        let canary = c
            .paused()
            .map(|p| c.names(&p.canary).join(", "))
            .unwrap_or_default();
        let Some(p) = c.pause.as_mut() else {
            return Vec::new();
        };
        if let Some(sent) = p.sent
            && (sent == Control::Abort || word != Control::Abort)
        {
            self.say(
                format!(
                    "already told the change: {}; waiting for it to act",
                    sent.as_str()
                ),
                Tone::Info,
            );
            return Vec::new();
        }
        p.sent = Some(word);
        let batch = p.batch;
        let (text, tone) = match word {
            Control::Next => (
                format!(
                    "next step: moving on from step {} of {}…",
                    p.batch + 1,
                    p.of
                ),
                Tone::Info,
            ),
            Control::Promote => (
                "promoting: every remaining step, no more pauses…".to_owned(),
                Tone::Info,
            ),
            Control::Abort => (
                format!("ABORTING the canary: {canary} go back to what they ran…"),
                Tone::Bad,
            ),
        };
        self.say(text, tone);
        vec![Effect::Control { batch, word }]
    }

    /// A word for the change paused on the selected environment elsewhere.
    pub(super) fn signal(&mut self, word: Control) -> Vec<Effect> {
        let env = self.env_cursor;
        let Some((c, p)) = self.foreign_pause(env) else {
            return Vec::new();
        };
        let key = (c.change.clone(), p.batch);
        let what = format!(
            "{} {} by {}, paused after step {} of {}",
            c.kind.as_str(),
            c.release,
            c.operator,
            p.batch + 1,
            p.of
        );
        if self.told.as_ref() == Some(&key) && word != Control::Abort {
            self.say(
                format!("already told {what}; waiting for it to act"),
                Tone::Info,
            );
            return Vec::new();
        }
        self.told = Some(key);
        let (text, tone) = match word {
            Control::Next => (format!("telling {what}: next step…"), Tone::Info),
            Control::Promote => (format!("telling {what}: every remaining step…"), Tone::Info),
            Control::Abort => (
                format!("ABORTING {what}: its canary hosts go back…"),
                Tone::Bad,
            ),
        };
        self.say(text, tone);
        vec![Effect::Run(
            Command::Signal {
                env: self.envs[env].name.clone(),
                control: word,
            },
            ChangeOptions::default(),
        )]
    }

    /// `R`: roll the selected environment back; `armed` is the refusal of a
    /// rollback across a schema migration, which a second `R` on the same
    /// environment forces.
    pub(super) fn rollback(&mut self, armed: Option<Armed>) -> Vec<Effect> {
        let env = self.selected_env().name.clone();
        if let Some(why) = self.rollback_refusal() {
            self.say(why, Tone::Info);
            return Vec::new();
        }
        let force = armed.is_some_and(|a| a.env == env);
        let preview = self.rollback_preview(self.env_cursor);
        let mut moves: Vec<String> = preview
            .iter()
            .filter_map(|(_, cur, prev)| match (cur, prev) {
                (Some(c), Some(p)) => Some(format!("{c} → {p}")),
                _ => None,
            })
            .collect();
        moves.sort();
        moves.dedup();
        let what = if moves.is_empty() {
            "to the previous release".to_owned()
        } else {
            moves.join(", ")
        };
        let across = if force {
            ", ACROSS THE SCHEMA MIGRATION"
        } else {
            ""
        };
        self.say(format!("ROLLING BACK {env}{across}: {what}"), Tone::Bad);
        self.rollback_env = Some(env.clone());
        vec![Effect::rollback(env, force)]
    }
}
