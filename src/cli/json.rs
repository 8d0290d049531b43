//! `--json` and `--events`: every object printed carries `"schema"` and
//! `"kind"`, and says every field it has, `null` when it has no value
//! (docs/json.md is the contract; `tests/cli_json.rs` holds it to it).

use std::io::Write;

use serde_json::{Map, Value, json};

use crate::engine::canary::Verdict;
use crate::engine::{EngineError, Event, StepStatus};

/// Bumped when a field changes meaning or goes away; new fields do not bump it.
pub const SCHEMA: u64 = crate::engine::JSON_SCHEMA;

/// How a command prints what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    /// One pretty-printed object.
    Json,
    /// One compact object per line (NDJSON), flushed as it is written.
    Events,
}

impl Mode {
    pub fn is_json(self) -> bool {
        self != Mode::Text
    }
}

/// `{"schema": 1, "kind": kind, …body's fields}`. A body that is not an
/// object goes under `"value"`.
pub fn object(kind: &str, body: impl serde::Serialize) -> Value {
    let mut map = Map::new();
    map.insert("schema".into(), json!(SCHEMA));
    map.insert("kind".into(), json!(kind));
    match serde_json::to_value(body) {
        Ok(Value::Object(fields)) => map.extend(fields),
        Ok(other) => {
            map.insert("value".into(), other);
        }
        Err(e) => {
            map.insert("value".into(), Value::Null);
            map.insert("serialize_error".into(), json!(e.to_string()));
        }
    }
    Value::Object(map)
}

/// Print one object as `mode` wants it. A closed stdout is not an error
/// worth more than the exit code already chosen.
pub fn emit(mode: Mode, value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = match mode {
        Mode::Events => serde_json::to_writer(&mut out, value),
        _ => serde_json::to_writer_pretty(&mut out, value),
    };
    let _ = writeln!(out);
    let _ = out.flush();
}

pub fn print(mode: Mode, kind: &str, body: impl serde::Serialize) {
    emit(mode, &object(kind, body));
}

/// An error as the JSON modes print it; the exit code stays the error's own.
pub fn error(e: &EngineError) -> Value {
    let kind = match e {
        EngineError::Usage(_) => "usage",
        EngineError::Failed(_) => "failed",
        EngineError::Locked(_) => "locked",
        EngineError::Refused(_) => "refused",
        EngineError::Migration(_) => "migration",
        EngineError::Window(_) => "window",
    };
    error_value(kind, e.exit_code(), &e.to_string())
}

pub fn error_value(kind: &str, code: i32, message: &str) -> Value {
    object(
        "error",
        json!({ "error": { "type": kind, "exit_code": code, "message": message } }),
    )
}

/// Put `null` under each of `keys` the object leaves out (records written
/// on hosts leave empty fields out to stay short).
pub fn with_nulls(mut value: Value, keys: &[&str]) -> Value {
    if let Value::Object(map) = &mut value {
        for k in keys {
            map.entry(*k).or_insert(Value::Null);
        }
    }
    value
}

/// A history record as `history --json` lists it: the line the host keeps,
/// with its left-out fields said (`switched` is false unless written).
pub fn history_record(record: &crate::model::HistoryRecord) -> Value {
    let mut v = with_nulls(
        serde_json::to_value(record).unwrap_or(Value::Null),
        &["release", "sha256", "from", "message", "migration"],
    );
    if let Value::Object(map) = &mut v {
        map.entry("switched").or_insert(Value::Bool(false));
    }
    v
}

/// One engine event as an `"kind": "event"` object; hosts by name.
pub fn event(ev: &Event, hosts: &[String]) -> Value {
    let name = |i: usize| hosts.get(i).cloned().unwrap_or_else(|| format!("host {i}"));
    let names = |v: &[usize]| v.iter().map(|&i| name(i)).collect::<Vec<_>>();
    let body = match ev {
        Event::ChangeStarted {
            change,
            env,
            kind,
            release,
            hosts,
        } => json!({ "event": "started", "change": change, "env": env,
            "action": kind.as_str(), "release": release, "hosts": hosts }),
        Event::Planned(plan) => json!({ "event": "planned", "plan": plan }),
        Event::BatchStarted { index, of, hosts } => {
            json!({ "event": "batch", "index": index, "of": of, "hosts": names(hosts) })
        }
        Event::HostStep { host, step, status } => step_event(&name(*host), *step, status),
        Event::Note { host, message } => {
            json!({ "event": "note", "host": host.map(name), "message": message })
        }
        Event::Paused {
            batch,
            of,
            canary,
            wait,
            why,
        } => json!({ "event": "paused", "batch": batch, "of": of, "canary": names(canary),
            "wait_ms": wait.map(|d| d.as_millis() as u64), "why": why }),
        Event::Analysis { verdict, lines } => analysis_event(verdict, lines),
        Event::Continued { by, control } => {
            json!({ "event": "continued", "by": by, "control": control.as_str() })
        }
        Event::ChangeFinished {
            change,
            outcome,
            summary,
        } => json!({ "event": "finished", "change": change, "outcome": outcome,
            "summary": summary }),
    };
    let mut value = object("event", body);
    if let Value::Object(map) = &mut value {
        map.insert("time".into(), json!(crate::engine::now_rfc3339()));
    }
    value
}

fn step_event(host: &str, step: crate::engine::Step, status: &StepStatus) -> Value {
    let (word, elapsed, detail, error) = match status {
        StepStatus::Started => ("started", None, None, None),
        StepStatus::Done { elapsed, detail } => ("done", Some(*elapsed), detail.clone(), None),
        StepStatus::Skipped { why } => ("skipped", None, Some(why.clone()), None),
        StepStatus::Failed { elapsed, error } => ("failed", Some(*elapsed), None, Some(error)),
    };
    json!({ "event": "step", "host": host, "step": step, "status": word,
        "elapsed_ms": elapsed.map(|d| d.as_millis() as u64), "detail": detail, "error": error })
}

fn analysis_event(verdict: &Verdict, lines: &[String]) -> Value {
    let (word, metric, value, threshold, host) = match verdict {
        Verdict::Pass { .. } => ("pass", None, None, None, None),
        Verdict::Breach {
            metric,
            value,
            threshold,
            host,
            ..
        } => (
            "breach",
            Some(metric.name()),
            Some(*value),
            Some(*threshold),
            host.clone(),
        ),
        Verdict::Inconclusive { .. } => ("inconclusive", None, None, None, None),
    };
    json!({ "event": "analysis", "verdict": word, "summary": verdict.to_string(),
        "metric": metric, "value": value, "threshold": threshold, "host": host,
        "lines": lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_starts_with_schema_and_kind() {
        let v = object("status", json!({ "hosts": [] }));
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"schema":1,"kind":"status","hosts":[]}"#);
        let v = object("releases", json!([1, 2]));
        assert_eq!(v["value"], json!([1, 2]));
    }

    #[test]
    fn an_error_keeps_its_exit_code() {
        let v = error(&EngineError::Locked("held by bob".into()));
        assert_eq!(v["kind"], "error");
        assert_eq!(v["error"]["type"], "locked");
        assert_eq!(v["error"]["exit_code"], 3);
        assert_eq!(v["error"]["message"], "held by bob");
    }

    #[test]
    fn a_step_says_every_field() {
        let ev = Event::HostStep {
            host: 1,
            step: crate::engine::Step::Upload,
            status: StepStatus::Started,
        };
        let v = event(&ev, &["a".into(), "b".into()]);
        assert_eq!(v["host"], "b");
        assert_eq!(v["step"], "upload");
        assert_eq!(v["status"], "started");
        for k in ["elapsed_ms", "detail", "error"] {
            assert!(v.get(k).is_some_and(Value::is_null), "{k}: {v}");
        }
    }
}
