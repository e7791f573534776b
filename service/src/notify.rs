//! systemd's notify protocol (`sd_notify(3)`), written out because it is one datagram:
//! `READY=1` once the agent is up, `WATCHDOG=1` while its loops are alive, `STATUS=…`
//! for `systemctl status`, `STOPPING=1` on shutdown. Without `$NOTIFY_SOCKET` (not under
//! systemd, or `Type=` other than notify) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use tracing::debug;

/// Where notifications go.
#[derive(Debug, Clone)]
enum Target {
    Path(PathBuf),
    /// Linux abstract socket (`@name` in `$NOTIFY_SOCKET`).
    Abstract(Vec<u8>),
}

/// A handle on systemd's notification socket.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (the watchdog is ours
    /// only if `$WATCHDOG_PID` is unset or is this process).
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::var_os("NOTIFY_SOCKET").map(|s| s.to_string_lossy().into_owned()),
            std::env::var("WATCHDOG_USEC").ok(),
            std::env::var("WATCHDOG_PID").ok(),
        )
    }

    fn from_vars(socket: Option<String>, usec: Option<String>, pid: Option<String>) -> Self {
        let target = socket
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix('@') {
                Some(name) => Target::Abstract(name.as_bytes().to_vec()),
                None => Target::Path(PathBuf::from(s)),
            });
        let ours = pid.is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(Duration::from_micros);
        Self { target, watchdog }
    }

    /// The watchdog timeout systemd set (`WatchdogSec=`), if any.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, msg: &str) {
        let Some(target) = &self.target else {
            return;
        };
        let result = UnixDatagram::unbound().and_then(|sock| match target {
            Target::Path(p) => sock.send_to(msg.as_bytes(), p).map(|_| ()),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(msg.as_bytes(), &addr).map(|_| ())
            }
        });
        if let Err(e) = result {
            debug!(error = %e, "cannot notify systemd");
        }
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// One line for `systemctl status` (newlines would end the field: replaced).
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={}", text.replace('\n', " ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket_and_the_watchdog_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::from_vars(
            Some(path.display().to_string()),
            Some("4000000".into()),
            None,
        );
        assert_eq!(n.watchdog_timeout(), Some(Duration::from_secs(4)));
        n.ready();
        n.status("1/1 vCenters\nconnected");
        n.watchdog();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..3 {
            let len = listener.recv(&mut buf).expect("recv");
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(
            got,
            ["READY=1", "STATUS=1/1 vCenters connected", "WATCHDOG=1"]
        );
        // Another process's watchdog is not ours; no socket means no-op.
        let other = Notifier::from_vars(Some("/x".into()), Some("1".into()), Some("1".into()));
        assert_eq!(other.watchdog_timeout(), None);
        Notifier::from_vars(None, None, None).ready();
    }
}
