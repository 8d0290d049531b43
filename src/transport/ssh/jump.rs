//! Bastions (`ProxyJump`): one kept session per bastion serves every host
//! behind it. Each host's own session runs over a `direct-tcpip` channel of
//! the bastion's session; libssh2 wants a socket for a session, so each
//! channel is bridged to one end of a local socket pair.
//!
//! A libssh2 session must not block in one channel while another channel
//! waits, so the bastion's session runs non-blocking on a thread of its own,
//! which pumps every channel and sleeps in `poll` when none can move.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, Weak};

use super::connect::tcp_connect;
use super::*;

/// How far a channel may run ahead of its reader, each way.
const PIPE_BUFFER: usize = 256 * 1024;
/// The longest `poll` sleeps when nothing is due: bounds how late a
/// keepalive or a channel libssh2 has already buffered is seen.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// libssh2's "would block".
const ERR_EAGAIN: i32 = -37;

/// Open bastions, by their route; a bastion lives as long as a session uses it.
static OPEN: Mutex<Vec<(String, Weak<Bastion>)>> = Mutex::new(Vec::new());

struct Request {
    host: String,
    port: u16,
    reply: Sender<Result<UnixStream, String>>,
}

/// A kept session to one bastion.
pub struct Bastion {
    label: String,
    requests: Mutex<Sender<Request>>,
    /// Written to wake the pump's `poll` when a request comes.
    waker: UnixStream,
    alive: Arc<AtomicBool>,
}

impl Bastion {
    /// A stream to `host:port` as the bastion reaches it.
    pub fn open(&self, host: &str, port: u16, timeout: Duration) -> Result<UnixStream, String> {
        let (reply, answer) = mpsc::channel();
        let request = Request {
            host: host.to_owned(),
            port,
            reply,
        };
        let sent = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(request);
        if sent.is_err() {
            return Err(format!("the session to bastion {} is closed", self.label));
        }
        let _ = (&self.waker).write(&[1]);
        match answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                // A bastion whose connection went silent never says so: the
                // next host to connect opens a new one instead of waiting here too.
                self.alive.store(false, Ordering::Relaxed);
                Err(format!(
                    "bastion {} did not open a channel to {host}:{port} within {timeout:?}",
                    self.label
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("the session to bastion {} broke", self.label))
            }
        }
    }
}

/// The bastion at the end of `chain` (each reached through the ones before
/// it), kept open or opened now.
pub fn bastion(
    chain: &[SshTarget],
    settings: &SshSettings,
) -> Result<Arc<Bastion>, TransportError> {
    // One lock over the whole chain: hosts connecting together share one
    // new bastion session instead of each opening its own.
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.retain(|(_, b)| b.upgrade().is_some_and(|b| b.alive.load(Ordering::Relaxed)));
    bastion_locked(&mut open, chain, settings)
}

fn route(chain: &[SshTarget]) -> String {
    let hops: Vec<String> = chain.iter().map(ToString::to_string).collect();
    hops.join(" > ")
}

fn bastion_locked(
    open: &mut Vec<(String, Weak<Bastion>)>,
    chain: &[SshTarget],
    settings: &SshSettings,
) -> Result<Arc<Bastion>, TransportError> {
    let Some((hop, before)) = chain.split_last() else {
        return Err(TransportError::Connect {
            host: String::new(),
            reason: "no bastion given".into(),
        });
    };
    let key = route(chain);
    if let Some(b) = open
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, b)| b.upgrade())
    {
        return Ok(b);
    }
    let label = format!("bastion {hop}");
    let timeout = hop.connect_timeout.unwrap_or(settings.connect_timeout);
    let (transport, fd, parent) = if before.is_empty() {
        let tcp = tcp_connect(&hop.host, hop.port, timeout).map_err(|reason| {
            TransportError::Connect {
                host: label.clone(),
                reason,
            }
        })?;
        let _ = tcp.set_nodelay(true);
        let fd = tcp.as_raw_fd();
        (
            SshTransport::establish(&label, hop, settings, tcp, timeout)?,
            fd,
            None,
        )
    } else {
        let parent = bastion_locked(open, before, settings)?;
        let stream = parent
            .open(&hop.host, hop.port, timeout)
            .map_err(|reason| TransportError::Connect {
                host: label.clone(),
                reason,
            })?;
        let fd = stream.as_raw_fd();
        let t = SshTransport::establish(&label, hop, settings, stream, timeout)?;
        (t, fd, Some(parent))
    };
    let bastion = start(hop, transport.session, fd, parent)?;
    open.push((key, Arc::downgrade(&bastion)));
    tracing::debug!(bastion = %hop, "bastion session open");
    Ok(bastion)
}

/// Hand an authenticated session to a pump thread of its own.
fn start(
    hop: &SshTarget,
    session: Session,
    fd: RawFd,
    parent: Option<Arc<Bastion>>,
) -> Result<Arc<Bastion>, TransportError> {
    let label = format!("bastion {hop}");
    let io = |e: io::Error| TransportError::Connect {
        host: label.clone(),
        reason: format!("cannot start its session's thread: {e}"),
    };
    let (waker, wake_end) = UnixStream::pair().map_err(io)?;
    wake_end.set_nonblocking(true).map_err(io)?;
    let (tx, rx) = mpsc::channel();
    let alive = Arc::new(AtomicBool::new(true));
    let bastion = Arc::new(Bastion {
        label: hop.to_string(),
        requests: Mutex::new(tx),
        waker,
        alive: alive.clone(),
    });
    let keepalive = hop.keepalive.unwrap_or(KEEPALIVE);
    session.set_keepalive(true, keepalive.as_secs().min(u32::MAX as u64) as u32);
    let pump = Pump {
        session,
        fd,
        wake: wake_end,
        requests: rx,
        pending: Vec::new(),
        pipes: Vec::new(),
        label: hop.to_string(),
        _parent: parent,
    };
    std::thread::Builder::new()
        .name(format!("bastion {hop}"))
        .spawn(move || {
            pump.run(keepalive);
            alive.store(false, Ordering::Relaxed);
        })
        .map_err(io)?;
    Ok(bastion)
}

/// One channel and the local socket it is bridged to.
struct Pipe {
    channel: Channel,
    local: UnixStream,
    to_remote: Vec<u8>,
    to_local: Vec<u8>,
    local_eof: bool,
    remote_eof: bool,
}

struct Pump {
    session: Session,
    fd: RawFd,
    wake: UnixStream,
    requests: Receiver<Request>,
    pending: Vec<Request>,
    pipes: Vec<Pipe>,
    label: String,
    /// The bastion this one is reached through, kept open while it is.
    _parent: Option<Arc<Bastion>>,
}

/// What one turn over a pipe came to.
enum Turn {
    Moved,
    Idle,
    Done,
}

impl Pump {
    fn run(mut self, keepalive: Duration) {
        self.session.set_blocking(false);
        let mut closed = false;
        loop {
            loop {
                match self.requests.try_recv() {
                    Ok(r) => self.pending.push(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed && self.pipes.is_empty() && self.pending.is_empty() {
                return;
            }
            let mut moved = self.open_pending();
            let mut broken = false;
            let mut i = 0;
            while i < self.pipes.len() {
                match pump_pipe(&self.session, &mut self.pipes[i]) {
                    Ok(Turn::Moved) => moved = true,
                    Ok(Turn::Idle) => {}
                    Ok(Turn::Done) => {
                        let mut pipe = self.pipes.swap_remove(i);
                        let _ = pipe.channel.close();
                        continue;
                    }
                    Err(e) if is_disconnect(ssh_code(&e)) => broken = true,
                    Err(e) => {
                        tracing::debug!(bastion = %self.label, error = %e, "channel dropped");
                        self.pipes.swap_remove(i);
                        continue;
                    }
                }
                i += 1;
            }
            if broken {
                tracing::warn!(bastion = %self.label, "bastion session lost");
                return;
            }
            if !keepalive.is_zero()
                && let Err(e) = self.session.keepalive_send()
                && ssh_code(&e) != ERR_EAGAIN
            {
                tracing::warn!(bastion = %self.label, error = %e, "bastion keepalive failed");
                return;
            }
            if !moved {
                self.wait();
            }
        }
    }

    /// Open the first waiting channel (libssh2 opens one at a time).
    fn open_pending(&mut self) -> bool {
        let Some(r) = self.pending.first() else {
            return false;
        };
        match self.session.channel_direct_tcpip(&r.host, r.port, None) {
            Err(e) if ssh_code(&e) == ERR_EAGAIN => false,
            Err(e) => {
                let r = self.pending.remove(0);
                let _ = r.reply.send(Err(format!(
                    "bastion {} cannot reach {}:{}: {}",
                    self.label,
                    r.host,
                    r.port,
                    e.message()
                )));
                true
            }
            Ok(channel) => {
                let r = self.pending.remove(0);
                let pair = UnixStream::pair().and_then(|(ours, theirs)| {
                    ours.set_nonblocking(true)?;
                    Ok((ours, theirs))
                });
                match pair {
                    Ok((ours, theirs)) => {
                        if r.reply.send(Ok(theirs)).is_ok() {
                            self.pipes.push(Pipe {
                                channel,
                                local: ours,
                                to_remote: Vec::new(),
                                to_local: Vec::new(),
                                local_eof: false,
                                remote_eof: false,
                            });
                        }
                    }
                    Err(e) => {
                        let _ = r.reply.send(Err(format!("cannot make a socket pair: {e}")));
                    }
                }
                true
            }
        }
    }

    /// Sleep until the bastion's socket, a local socket or a request can move.
    fn wait(&mut self) {
        let mut fds = Vec::with_capacity(self.pipes.len() + 2);
        let mut bastion_events = libc::POLLIN;
        if matches!(
            self.session.block_directions(),
            ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
        ) {
            bastion_events |= libc::POLLOUT;
        }
        fds.push(pollfd(self.fd, bastion_events));
        fds.push(pollfd(self.wake.as_raw_fd(), libc::POLLIN));
        for p in &self.pipes {
            let mut events = 0;
            if !p.local_eof && p.to_remote.len() < PIPE_BUFFER {
                events |= libc::POLLIN;
            }
            if !p.to_local.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(p.local.as_raw_fd(), events));
        }
        let wait = if self.pending.is_empty() {
            IDLE_WAIT
        } else {
            Duration::from_millis(5)
        };
        // SAFETY: `fds` is a valid array of pollfd for the length given.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32,
            );
        }
        let mut drain = [0u8; 64];
        while matches!((&self.wake).read(&mut drain), Ok(n) if n > 0) {}
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted
}

/// Move what can move between one channel and its local socket, without
/// blocking. An `Err` is the bastion session's own.
fn pump_pipe(session: &Session, p: &mut Pipe) -> Result<Turn, ssh2::Error> {
    // `Channel`'s io errors drop libssh2's code; the session keeps it.
    let session_broke =
        || ssh2::Error::last_session_error(session).filter(|e| is_disconnect(ssh_code(e)));
    let mut moved = false;
    let mut buf = [0u8; 32 * 1024];
    while !p.local_eof && p.to_remote.len() < PIPE_BUFFER {
        match p.local.read(&mut buf) {
            Ok(0) => p.local_eof = true,
            Ok(n) => {
                p.to_remote.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Err(e) if would_block(&e) => break,
            Err(_) => p.local_eof = true,
        }
    }
    while !p.to_remote.is_empty() {
        match p.channel.write(&p.to_remote) {
            Ok(0) => break,
            Ok(n) => {
                p.to_remote.drain(..n);
                moved = true;
            }
            Err(e) if would_block(&e) => break,
            Err(_) => return session_broke().map_or(Ok(Turn::Done), Err),
        }
    }
    if p.local_eof && p.to_remote.is_empty() {
        // A session never half-closes its socket: the end of it is the end
        // of the session, and nothing more will be read on this side.
        match p.channel.send_eof() {
            Ok(()) => return Ok(Turn::Done),
            Err(e) if ssh_code(&e) == ERR_EAGAIN => {}
            Err(e) if is_disconnect(ssh_code(&e)) => return Err(e),
            Err(_) => return Ok(Turn::Done),
        }
    }
    while !p.remote_eof && p.to_local.len() < PIPE_BUFFER {
        match p.channel.read(&mut buf) {
            Ok(0) => {
                if p.channel.eof() {
                    p.remote_eof = true;
                }
                break;
            }
            Ok(n) => {
                p.to_local.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Err(e) if would_block(&e) => break,
            Err(_) => {
                if let Some(e) = session_broke() {
                    return Err(e);
                }
                p.remote_eof = true;
            }
        }
    }
    while !p.to_local.is_empty() {
        match p.local.write(&p.to_local) {
            Ok(n) => {
                p.to_local.drain(..n);
                moved = true;
            }
            Err(e) if would_block(&e) => break,
            // The session using this channel is gone.
            Err(_) => return Ok(Turn::Done),
        }
    }
    if p.remote_eof && p.to_local.is_empty() {
        // The host behind closed the connection: the session on this end
        // reads its end of file and is dropped.
        let _ = p.local.shutdown(std::net::Shutdown::Both);
        return Ok(Turn::Done);
    }
    Ok(if moved { Turn::Moved } else { Turn::Idle })
}
