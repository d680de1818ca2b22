//! systemd: socket activation and readiness notification (`Type=notify`).
//!
//! - **Socket activation.** When systemd (or `systemd-socket-activate`) passes the daemon
//!   a listening socket (`LISTEN_FDS=1`, `LISTEN_PID` = this process), the daemon serves on
//!   it instead of binding `--address`, and leaves its file alone at stop: the socket
//!   belongs to the socket unit, which keeps listening while the daemon restarts, so
//!   clients queue instead of being refused. Connections that arrive while the daemon
//!   recovers wait in the socket's backlog and are served once recovery is done.
//! - **Notification.** With `NOTIFY_SOCKET` set, the daemon sends `READY=1` with
//!   `STATUS=` (the snapshot count) once recovery is done and the socket accepts, and
//!   `STOPPING=1` when a stop signal arrives. Without it, nothing is sent.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// The listening unix socket systemd passed, if it passed one; an error when it passed
/// something the daemon cannot serve on (several sockets, or one that is not a unix
/// socket), which names what it got.
pub fn inherited_listener() -> Result<Option<(UnixListener, PathBuf)>, String> {
    let mut fds = sd_notify::listen_fds()
        .map_err(|e| format!("socket activation (LISTEN_FDS, LISTEN_PID): {e}"))?;
    let fd = match (fds.len(), fds.next()) {
        (0, _) | (_, None) => return Ok(None),
        (1, Some(fd)) => fd,
        (n, Some(_)) => {
            return Err(format!(
                "socket activation passed {n} sockets; overlaysnapd serves exactly one \
                 unix socket (one ListenStream= in its socket unit)"
            ))
        }
    };
    // SAFETY: sd_listen_fds(3): the descriptors from 3 on are the passed sockets, owned by
    // this process from here; nothing else in it takes fd 3 as a socket.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    let path = listener
        .local_addr()
        .map_err(|e| format!("socket activation passed fd {fd}, not a unix socket: {e}"))?
        .as_pathname()
        .map(PathBuf::from)
        .ok_or_else(|| format!("socket activation passed fd {fd}, a unix socket without a path"))?;
    Ok(Some((listener, path)))
}

/// Tells systemd the daemon is ready, with `status`; a failure is logged, not fatal.
pub fn notify_ready(status: &str) {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Tells systemd the daemon is stopping; a failure is logged, not fatal.
pub fn notify_stopping() {
    notify(&[sd_notify::NotifyState::Stopping]);
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "notifying systemd (NOTIFY_SOCKET)");
    }
}
