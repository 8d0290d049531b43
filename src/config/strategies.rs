//! Resolving each environment's strategy and its keys, canary thresholds and
//! blue/green ports.

use super::*;

impl Resolver<'_> {
    pub(super) fn strategy(
        &self,
        s: &Spanned<RawStrategy>,
        sources: Sources,
    ) -> Result<Strategy, ConfigError> {
        let raw = s.get_ref();
        let kind = raw.kind.get_ref().as_str();
        let Some((_, takes)) = STRATEGY_KEYS.iter().find(|(k, _)| *k == kind) else {
            return Err(self.err(
                &raw.kind,
                format!("unknown strategy kind {kind:?}, expected {}", kinds_list()),
            ));
        };
        if let Some(key) = raw.written_keys().into_iter().find(|k| !takes.contains(k)) {
            return Err(self.err(
                s,
                format!("`{key}` does not apply to strategy kind {kind:?}"),
            ));
        }
        match kind {
            "rolling" => self.rolling(raw),
            "canary" => self.canary(s, sources),
            "blue-green" => self.blue_green(s),
            // The only other kind in STRATEGY_KEYS.
            _ => Ok(Strategy::AllAtOnce),
        }
    }

    pub(super) fn rolling(&self, raw: &RawStrategy) -> Result<Strategy, ConfigError> {
        let batch = match &raw.batch {
            None => HostCount::Count(1),
            Some(b) => match b.get_ref() {
                RawCount::Number(n) => HostCount::parse(&n.to_string()),
                RawCount::Text(t) => HostCount::parse(t),
            }
            .map_err(|m| self.err(b, format!("batch: {m}")))?,
        };
        let max_failures = match &raw.max_failures {
            None => 0,
            Some(m) => usize::try_from(*m.get_ref())
                .map_err(|_| self.err(m, "max_failures must be 0 or more"))?,
        };
        if let Some(m) = &raw.max_failures {
            self.at_most(m, "max_failures", super::sections::MAX_FAILURES)?;
        }
        Ok(Strategy::Rolling {
            batch,
            max_failures,
        })
    }

    pub(super) fn canary(
        &self,
        s: &Spanned<RawStrategy>,
        sources: Sources,
    ) -> Result<Strategy, ConfigError> {
        let steps = s.get_ref().steps.as_ref().ok_or_else(|| {
            self.err(
                s,
                "a canary needs `steps`, as in steps = [\"1\", \"pause 60s\", \"25%\", \"pause\", \"100%\"]",
            )
        })?;
        // The message names the step; the rules (order, 100% last) are the
        // list's, so the array is the place to point at.
        let steps = canary::parse_steps(steps.get_ref()).map_err(|m| self.err(steps, m))?;
        Ok(Strategy::Canary {
            steps,
            thresholds: self.thresholds(s, sources)?,
        })
    }

    /// `max_latency_ms`, which needs probes or the app's own latency.
    fn max_latency_ms(
        &self,
        raw: &RawStrategy,
        sources: Sources,
    ) -> Result<Option<u64>, ConfigError> {
        let max_latency_ms = match &raw.max_latency_ms {
            None => None,
            Some(m) if !sources.health && !sources.app_latency => {
                return Err(self.err(
                    m,
                    "max_latency_ms needs [health] (the probes' latency) or metrics.latency (the app's own): without either there is no latency to judge",
                ));
            }
            Some(m) => Some(u64::try_from(*m.get_ref()).map_err(|_| {
                self.err(
                    m,
                    "max_latency_ms must be a whole number of milliseconds above 0",
                )
            })?),
        };
        if let Some(m) = &raw.max_latency_ms {
            self.at_most(m, "max_latency_ms", super::sections::MAX_LATENCY_MS)?;
        }
        Ok(max_latency_ms)
    }

    /// Limits on error lines and error rate need the data they count.
    fn needs_logs_and_metrics(
        &self,
        raw: &RawStrategy,
        sources: Sources,
    ) -> Result<(), ConfigError> {
        // Lines are counted only when there are logs to read and a pattern
        // that says which are errors; without, the limit could never be met
        // or, worse, would be met by counting nothing.
        if let Some(m) = &raw.max_error_lines_per_min {
            let missing = match (sources.logs, sources.error_pattern) {
                (false, _) => Some("[logs] with `files` or `command`"),
                (true, false) => Some("logs.error_pattern (which lines are errors)"),
                (true, true) => None,
            };
            if let Some(missing) = missing {
                return Err(self.err(
                    m,
                    format!("max_error_lines_per_min needs {missing}: without it there are no error lines to count"),
                ));
            }
        }
        if let Some(m) = &raw.max_error_rate
            && !sources.metrics
        {
            return Err(self.err(
                m,
                "max_error_rate needs [metrics] with `prometheus`: the error rate comes from the app's own request counters",
            ));
        }
        Ok(())
    }

    pub(super) fn thresholds(
        &self,
        s: &Spanned<RawStrategy>,
        sources: Sources,
    ) -> Result<Thresholds, ConfigError> {
        let raw = s.get_ref();
        let number = |v: &Option<Spanned<RawNumber>>| v.as_ref().map(|v| v.get_ref().get());
        let defaults = Thresholds::default();
        // Without [health] there are no probes, and a pass rate that is on
        // with no data would leave every pause inconclusive.
        let min_health_pass_rate = match (&raw.min_health_pass_rate, sources.health) {
            (Some(m), false) => {
                return Err(self.err(
                    m,
                    "min_health_pass_rate needs a [health] section: without it there are no probes to count",
                ));
            }
            (Some(m), true) => Some(m.get_ref().get()),
            (None, true) => defaults.min_health_pass_rate,
            (None, false) => None,
        };
        let max_latency_ms = self.max_latency_ms(raw, sources)?;
        self.needs_logs_and_metrics(raw, sources)?;
        let min_requests = match &raw.min_requests {
            None => defaults.min_requests,
            Some(m) => u64::try_from(*m.get_ref())
                .map_err(|_| self.err(m, "min_requests must be 0 or more"))?,
        };
        if let Some(m) = &raw.min_requests {
            self.at_most(m, "min_requests", super::sections::MAX_MIN_REQUESTS)?;
        }
        let thresholds = Thresholds {
            max_error_rate: number(&raw.max_error_rate),
            max_latency_ms,
            max_relative: number(&raw.max_relative),
            min_health_pass_rate,
            max_error_lines_per_min: number(&raw.max_error_lines_per_min),
            min_requests,
            // A source that is set up and stays silent is missing data, so
            // that no check quietly stops applying (see canary::Expects).
            expects: Expects {
                requests: sources.metrics,
                error_lines: sources.logs && sources.error_pattern,
                app_latency: sources.app_latency,
            },
            ..defaults
        };
        // Its messages start with the key.
        thresholds.validate().map_err(|m| self.err(s, m))?;
        Ok(thresholds)
    }

    pub(super) fn blue_green(&self, s: &Spanned<RawStrategy>) -> Result<Strategy, ConfigError> {
        let raw = s.get_ref();
        let switch = raw.switch.as_ref().ok_or_else(|| {
            self.err(
                s,
                "a blue-green strategy needs `switch`: the command that moves traffic to the slot in $SHIPDECK_SLOT (port $SHIPDECK_SLOT_PORT)",
            )
        })?;
        let ports = raw.ports.as_ref().map(|p| self.ports(p)).transpose()?;
        Ok(Strategy::BlueGreen(BlueGreen {
            switch: self.command("switch", switch)?,
            stop: raw
                .stop
                .as_ref()
                .map(|c| self.command("stop", c))
                .transpose()?,
            finish_after: raw.finish_after.map(|d| d.0),
            ports,
        }))
    }

    /// A command the strategy runs: blank would run nothing and look fine.
    pub(super) fn command(&self, key: &str, c: &Spanned<String>) -> Result<String, ConfigError> {
        if c.get_ref().trim().is_empty() {
            return Err(self.err(c, format!("`{key}` must be a command, not empty")));
        }
        Ok(c.get_ref().clone())
    }

    /// `ports = [BLUE, GREEN]`.
    pub(super) fn ports(
        &self,
        ports: &Spanned<Vec<Spanned<i64>>>,
    ) -> Result<[u16; 2], ConfigError> {
        let [blue, green] = ports.get_ref().as_slice() else {
            return Err(self.err(
                ports,
                "ports takes two ports, blue then green, as in ports = [8081, 8082]",
            ));
        };
        let blue = self.port(blue, *blue.get_ref())?;
        let green = self.port(green, *green.get_ref())?;
        if blue == green {
            return Err(self.err(
                ports,
                format!("ports = [{blue}, {green}]: the blue and green slots need different ports"),
            ));
        }
        Ok([blue, green])
    }

    /// Every blue/green host needs its own port for each slot, from its vars
    /// or from the strategy's `ports`.
    pub(super) fn check_slot_ports(
        &self,
        bg: &BlueGreen,
        raw: &Spanned<RawHost>,
        host: &Host,
    ) -> Result<(), ConfigError> {
        let mut ports = [0; 2];
        for (port, slot) in ports.iter_mut().zip([Slot::Blue, Slot::Green]) {
            *port = slot_port(bg, host, slot)
                .map_err(|m| self.err(raw, m))?
                .ok_or_else(|| self.err(raw, missing_slot_port(raw.get_ref(), host, slot)))?;
        }
        if ports[0] == ports[1] {
            return Err(self.err(
                raw,
                format!(
                    "host {:?}: the blue and green slots both get port {}; each slot needs its own",
                    host.name, ports[0]
                ),
            ));
        }
        Ok(())
    }
}
