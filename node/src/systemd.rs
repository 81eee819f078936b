//! Telling systemd how the node is doing (`Type=notify`): ready once it
//! serves, a watchdog ping while it is healthy, stopping when it stops.
//! The protocol is one datagram per message to `$NOTIFY_SOCKET`; written
//! here rather than taken from a crate: it is a dozen lines, and does
//! nothing at all when the node does not run under systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=…") to
/// the service manager, if the node runs under one. A failure is logged
/// once per call and otherwise ignored: systemd's notices are advice, the
/// node serves without them.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        // "@name" is a socket in Linux's abstract namespace.
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        } else {
            socket.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "could not notify systemd");
    }
}

/// How often systemd expects a watchdog ping (`WatchdogSec=`), if it does:
/// pinged at half that, as sd_watchdog_enabled(3) advises.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    // WATCHDOG_PID names the process meant; absent means this one.
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram socket standing in for systemd's receives exactly the
    /// state sent, at a path and in the abstract namespace.
    #[test]
    fn notifies_the_socket_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        // SAFETY: this test alone reads or writes NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        notify("READY=1");
        let mut buf = [0u8; 64];
        let n = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("maillage-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_systemd = UnixDatagram::bind_addr(&addr).unwrap();
        unsafe { std::env::set_var("NOTIFY_SOCKET", format!("@{name}")) };
        notify("WATCHDOG=1");
        let n = abstract_systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    }
}
