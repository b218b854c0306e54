//! Network namespaces as RAII guards, `ip` invocations, plugging a
//! namespace into a switch's bridge, and running code inside a namespace
//! on a dedicated thread.

use std::{
    fs::File,
    net::Ipv4Addr,
    process::{Command, Output},
};

use nix::sched::{CloneFlags, setns};

/// Runs `ip` with `args`.
///
/// # Panics
/// When `ip` fails, with its stderr.
#[expect(clippy::must_use_candidate, reason = "mostly called for its effect")]
pub fn ip(args: &[&str]) -> Output {
    let output = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Plugs `netns` into the bridge `br0` of `switch`: a veth pair whose end
/// `port` joins the bridge and whose other end is `netns`'s `eth0`, with
/// `addr/15`; both up.
///
/// # Panics
/// When a device cannot be created (`port` must be a free interface name
/// of at most 15 bytes in `switch`).
pub fn plug_into_switch(switch: &NetNs, port: &str, netns: &NetNs, addr: Ipv4Addr) {
    switch.ip(&[
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        netns.name(),
    ]);
    switch.ip(&["link", "set", port, "master", "br0", "up"]);
    netns.ip(&["addr", "add", &format!("{addr}/15"), "dev", "eth0"]);
    netns.ip(&["link", "set", "eth0", "up"]);
}

/// A named network namespace (`/run/netns/<name>`), deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace with its loopback up.
    ///
    /// # Panics
    /// When `ip netns add` fails (e.g. the name exists).
    #[must_use]
    pub fn new(name: &str) -> Self {
        ip(&["netns", "add", name]);
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the namespace's bind mount, for `setns`.
    #[must_use]
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs `ip -n <ns> args…`.
    ///
    /// # Panics
    /// When `ip` fails, with its stderr.
    #[expect(clippy::must_use_candidate, reason = "mostly called for its effect")]
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and
    /// returns its result. The calling thread's namespace is untouched.
    ///
    /// # Panics
    /// When the namespace cannot be entered or `f` panics.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in(&self.path(), f)
    }
}

/// Runs `f` on a fresh thread that has entered the network namespace at
/// `path` (a `/run/netns/…` bind mount), and returns its result.
///
/// # Panics
/// When the namespace cannot be entered or `f` panics.
pub fn run_in<T: Send + 'static>(path: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let result = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&result, Ok(o) if o.status.success()) {
            eprintln!("warning: could not delete netns {}: {result:?}", self.name);
        }
    }
}
