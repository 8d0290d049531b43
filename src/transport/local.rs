//! The `local` transport: a directory on this machine stands in for a host.
//! Commands run as local `sh` processes, uploads are file copies, HTTP probes
//! connect straight to the port. The demo and many tests use it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{HttpResponse, Output, Transport, TransportError, http_request, parse_http_response};

/// How often a quiet follow checks whether it should stop.
const STREAM_WAKE: std::time::Duration = std::time::Duration::from_millis(500);

pub struct LocalTransport {
    name: String,
    dir: PathBuf,
}

impl LocalTransport {
    pub fn new(name: &str, dir: &Path) -> Self {
        LocalTransport {
            name: name.to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// `sh -c script` in its own process group, so a timeout or a stop can
    /// end everything the script started.
    fn spawn_sh(&self, script: &str, stderr: Stdio) -> Result<std::process::Child, TransportError> {
        self.spawn_sh_with(script, Stdio::null(), stderr)
    }

    fn spawn_sh_with(
        &self,
        script: &str,
        stdin: Stdio,
        stderr: Stdio,
    ) -> Result<std::process::Child, TransportError> {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(start_dir(&self.dir))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| self.io(format!("cannot start sh: {e}")))
    }

    fn io(&self, reason: impl std::fmt::Display) -> TransportError {
        TransportError::Io {
            host: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The directory a local host's commands start in: its deploy_to when it
/// exists, else its nearest existing parent (a new host has none yet).
fn start_dir(dir: &Path) -> PathBuf {
    let mut d = dir;
    while !d.is_dir() {
        match d.parent() {
            Some(p) => d = p,
            None => return PathBuf::from("/"),
        }
    }
    d.to_path_buf()
}

impl LocalTransport {
    /// `exec` with `input` on the script's stdin (then closed): a notify
    /// hook reads its event as JSON there.
    pub fn exec_with_input(
        &mut self,
        script: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        let mut child = self.spawn_sh_with(script, Stdio::piped(), Stdio::piped())?;
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.to_vec();
            // On its own thread: a script that never reads must not block
            // the wait, and one that exits early only breaks the pipe.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        self.finish(script, child, timeout)
    }

    /// Wait for a started script, reading its output, up to `timeout`.
    fn finish(
        &self,
        script: &str,
        mut child: std::process::Child,
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // Read both pipes on threads so a chatty stderr cannot block stdout;
        // the wait happens on a third so the timeout can interrupt it.
        let out_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stdout.read_to_end(&mut v);
            v
        });
        let err_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stderr.read_to_end(&mut v);
            v
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(timeout) {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(self.io(format!("waiting for sh: {e}"))),
            Err(_) => {
                // The whole process group: a hook's children must not outlive it.
                crate::signal::group(pid, crate::signal::SIGKILL);
                return Err(TransportError::Timeout {
                    host: self.name.clone(),
                    timeout,
                    what: script
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(80)
                        .collect(),
                });
            }
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(Output {
            status: code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

impl Transport for LocalTransport {
    fn exec(&mut self, script: &str, timeout: Duration) -> Result<Output, TransportError> {
        let child = self.spawn_sh(script, Stdio::piped())?;
        self.finish(script, child, timeout)
    }

    fn stream(
        &mut self,
        script: &str,
        on_line: &mut dyn FnMut(&str) -> bool,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<i32>, TransportError> {
        let mut child = self.spawn_sh(script, Stdio::null())?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout is piped");
        // The pipe read blocks, so lines come through a reader thread and the
        // wait for them wakes up every `STREAM_WAKE` to ask `keep_going`.
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(1024);
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stop = || {
            crate::signal::group(pid, crate::signal::SIGTERM);
        };
        loop {
            match rx.recv_timeout(STREAM_WAKE) {
                Ok(line) => {
                    let text = String::from_utf8_lossy(&line);
                    if !on_line(text.trim_end_matches(['\n', '\r'])) || !keep_going() {
                        stop();
                        let _ = child.wait();
                        return Ok(None);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !keep_going() {
                        stop();
                        let _ = child.wait();
                        return Ok(None);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child
            .wait()
            .map_err(|e| self.io(format!("waiting for sh: {e}")))?;
        Ok(status.code())
    }

    fn upload(
        &mut self,
        local: &Path,
        remote: &str,
        _timeout: Duration,
    ) -> Result<(), TransportError> {
        std::fs::copy(local, remote)
            .map(drop)
            .map_err(|e| self.io(format!("copying {} to {remote}: {e}", local.display())))
    }

    fn http_get(
        &mut self,
        host: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| self.io(format!("{host}:{port}: {e}")))?
            .next()
            .ok_or_else(|| self.io(format!("{host}:{port}: no address")))?;
        let mut s = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| self.io(format!("{host}:{port}: {e}")))?;
        s.set_read_timeout(Some(timeout)).map_err(|e| self.io(e))?;
        s.set_write_timeout(Some(timeout)).map_err(|e| self.io(e))?;
        s.write_all(http_request(host, port, path).as_bytes())
            .map_err(|e| self.io(format!("{host}:{port}: {e}")))?;
        let mut buf = Vec::new();
        let _ = s.take(super::HTTP_CAP as u64).read_to_end(&mut buf);
        parse_http_response(&self.name, &buf)
    }
}
