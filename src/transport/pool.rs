//! Kept-open connections, one per host, shared by every step of a change so a
//! rollback never waits for a new handshake.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{BreaksSession, Transport, TransportError, local::LocalTransport, ssh};
use crate::model::{Host, Target};

/// One host and its (lazily opened) connection.
pub struct HostHandle {
    pub host: Host,
    conn: Mutex<Option<Box<dyn Transport>>>,
    settings: ssh::SshSettings,
}

impl HostHandle {
    pub fn new(host: Host, settings: ssh::SshSettings) -> Self {
        HostHandle {
            host,
            conn: Mutex::new(None),
            settings,
        }
    }

    /// Run `f` on this host's connection, opening it first if needed. A
    /// transport error that leaves the session unusable drops it, so the next
    /// call reconnects instead of failing forever.
    pub fn with<R, E: From<TransportError> + BreaksSession>(
        &self,
        f: impl FnOnce(&mut dyn Transport) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(self.open()?);
        }
        let conn = slot.as_mut().expect("connection was just opened");
        let result = f(conn.as_mut());
        if let Err(e) = &result
            && e.breaks_session()
        {
            *slot = None;
        }
        result
    }

    /// Open the connection now, if it is not open yet.
    pub fn connect(&self) -> Result<(), TransportError> {
        self.with(|_| Ok::<(), TransportError>(()))
    }

    /// Keep the connection ready for the next command: open it if it is not
    /// open, or check that the open one still answers and reopen it if not.
    /// A connection busy with a command is in use, so alive: it is left alone.
    pub fn keep_ready(&self, timeout: std::time::Duration) -> Result<(), TransportError> {
        let mut slot = match self.conn.try_lock() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        if let Some(conn) = slot.as_mut()
            && conn.check_alive(timeout).is_ok()
        {
            return Ok(());
        }
        *slot = None;
        *slot = Some(self.open()?);
        Ok(())
    }

    /// Forget the connection (the next call reconnects).
    pub fn disconnect(&self) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn open(&self) -> Result<Box<dyn Transport>, TransportError> {
        match &self.host.target {
            Target::Local { dir } => Ok(Box::new(LocalTransport::new(&self.host.name, dir))),
            Target::Ssh(target) => Ok(Box::new(ssh::SshTransport::connect(
                &self.host.name,
                target,
                &self.settings,
            )?)),
        }
    }
}

/// The hosts of one environment (or of several), worked in parallel up to a cap.
pub struct Fleet {
    pub hosts: Vec<HostHandle>,
    parallel: usize,
}

impl Fleet {
    pub fn new(hosts: Vec<Host>, settings: &ssh::SshSettings) -> Self {
        Fleet {
            parallel: settings.parallel.max(1),
            hosts: hosts
                .into_iter()
                .map(|h| HostHandle::new(h, settings.clone()))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Run `f` for each of `indices` on at most `parallel` threads at once;
    /// results come back in the order of `indices`.
    pub fn each<R: Send>(
        &self,
        indices: &[usize],
        f: impl Fn(usize, &HostHandle) -> R + Sync,
    ) -> Vec<R> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<R>>> = indices.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.parallel.min(indices.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let slot = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&host) = indices.get(slot) else {
                            break;
                        };
                        let r = f(host, &self.hosts[host]);
                        *results[slot].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .expect("every slot is filled before the scope ends")
            })
            .collect()
    }

    /// `each` over every host.
    pub fn all<R: Send>(&self, f: impl Fn(usize, &HostHandle) -> R + Sync) -> Vec<R> {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        self.each(&all, f)
    }
}
