//! Hosts outside the nodes: a namespace plugged into a switch's bridge
//! with an underlay address, for the demo's client and the benchmarks'
//! clients, proxies and plain backends. Like a world's nodes they live in
//! `198.18.0.0/15` and go with their guard; traffic to and from them stays
//! between namespaces.

use std::{
    ffi::OsStr,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream},
    process::Command,
    time::Duration,
};

use crate::{
    World,
    netns::{NetNs, plug_into_switch},
};

/// A namespace with an `eth0` in a switch's bridge `br0`; the namespace
/// (and with it the veth pair) is deleted on drop.
#[derive(Debug)]
pub struct Host {
    netns: NetNs,
    addr: Ipv4Addr,
}

impl Host {
    /// Creates namespace `name` with an `eth0` whose peer, `port`, is in
    /// the bridge `br0` of `switch`; `eth0` gets `addr/15` and is up.
    ///
    /// # Panics
    /// When a namespace or device cannot be created (`port` must be a
    /// free interface name of at most 15 bytes in `switch`).
    #[must_use]
    pub fn attach(switch: &NetNs, name: &str, port: &str, addr: Ipv4Addr) -> Self {
        let netns = NetNs::new(name);
        plug_into_switch(switch, port, &netns, addr);
        Self { netns, addr }
    }

    /// The host's namespace.
    #[must_use]
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// The host's address on `eth0`.
    #[must_use]
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// `ip netns exec <namespace> program`: a command to run inside.
    #[must_use]
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.netns.name()])
            .arg(program);
        command
    }

    /// One `GET /` (HTTP/1.0) from inside the namespace to `to`, each step
    /// within `timeout`: the body of a 200 answer, else what went wrong.
    pub fn http_get(&self, to: SocketAddrV4, timeout: Duration) -> Result<String, String> {
        self.netns.run(move || http_get(to, timeout))
    }
}

/// One `GET /` (HTTP/1.0) from the calling thread's namespace to `to`,
/// each step within `timeout`: the body of a 200 answer, else what went
/// wrong.
///
/// # Errors
/// When the connection, the exchange or the answer fails.
pub fn http_get(to: SocketAddrV4, timeout: Duration) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(to), timeout)
        .map_err(|e| format!("connecting to {to}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {to}\r\n\r\n")
        .map_err(|e| format!("sending to {to}: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("reading from {to}: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer from {to}: {answer:?}"))?;
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(body.to_owned())
    } else {
        Err(format!(
            "{to} answered {}",
            head.lines().next().unwrap_or_default()
        ))
    }
}

/// The value of `key` (`Hostname`, `RemoteAddr`, …) in a whoami answer.
#[must_use]
pub fn whoami_field<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer.lines().find_map(|line| {
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

impl World {
    /// Plugs a host into the world's switch: namespace `<world>-<tag>`,
    /// switch port `h-<tag>` (`tag`: a few ASCII letters or digits).
    ///
    /// # Panics
    /// When the host cannot be created.
    #[must_use]
    pub fn attach_host(&self, tag: &str, addr: Ipv4Addr) -> Host {
        let prefix = self
            .switch()
            .name()
            .strip_suffix("-sw")
            .expect("a world's switch is <prefix>-sw");
        let port: String = format!("h-{tag}").chars().take(15).collect();
        Host::attach(self.switch(), &format!("{prefix}-{tag}"), &port, addr)
    }
}

#[cfg(test)]
mod tests {
    use super::whoami_field;

    #[test]
    fn reads_whoami_fields() {
        let answer = "Hostname: web.1.abc\nIP: 127.0.0.1\nIP: 10.0.0.3\nRemoteAddr: 198.18.1.1:40000\nGET / HTTP/1.0\n";
        assert_eq!(whoami_field(answer, "Hostname"), Some("web.1.abc"));
        assert_eq!(whoami_field(answer, "RemoteAddr"), Some("198.18.1.1:40000"));
        assert_eq!(whoami_field(answer, "Missing"), None);
    }
}
