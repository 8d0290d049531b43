//! Signals during a headless change.

use std::io::Write;

use crate::engine::CancelToken;

/// Ctrl-C, SIGTERM (what CI runners send on cancel) and SIGHUP (a closed
/// terminal) stop a change between steps (switched hosts go back); a second
/// signal quits at once. The handlers are in place before this returns, so a
/// signal during the change is never the default one that kills mid-step.
pub fn cancel_on_ctrl_c(token: CancelToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let streams = {
        let _in_runtime = rt.enter();
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        )
    };
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = streams else {
        return;
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            // The exit status a shell gives a process killed by the signal.
            let mut next = async || {
                tokio::select! {
                    _ = int.recv() => ("Ctrl-C", 130),
                    _ = term.recv() => ("SIGTERM", 143),
                    _ = hup.recv() => ("SIGHUP", 129),
                }
            };
            let (name, _) = next().await;
            token.cancel();
            // After a SIGHUP stderr may be gone: saying so must not stop the cancel.
            let _ = writeln!(
                std::io::stderr(),
                "\n{name}: cancelling: the change stops after the current step and switched hosts go back (a second Ctrl-C or signal quits at once; locks stay held)"
            );
            let (_, code) = next().await;
            std::process::exit(code);
        });
    });
}
