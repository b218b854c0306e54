//! The variants without shoal, on the lab: straight to one backend, and
//! round robin to the two by iptables, nftables and haproxy.

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddrV4},
    process::{Command, Stdio},
};

use anyhow::{Context, Result};

use super::{
    BACKENDS, CLOSES, HAPROXY, IPTABLES_ROUTER, NFT_ROUTER, PUBLISHED,
    lab::{Lab, forwarding},
};
use crate::bench_shared::{
    Background, Plan, checked, have,
    nginx::PORT as BACKEND_PORT,
    round_robin_dnat,
    runs::{HttpVariant, http},
    table::Row,
};

impl Lab {
    /// Measures `target` from the lab's client as `key`.
    fn measure(
        &self,
        plan: &Plan,
        key: &'static str,
        name: &str,
        path: String,
        target: Ipv4Addr,
        port: u16,
    ) -> Row {
        let drops = || self.drops();
        let variant = HttpVariant {
            key,
            name,
            path,
            client: self.client.netns().path(),
            target: SocketAddrV4::new(target, port),
            drops: &drops,
        };
        http(plan, &self.dir.0, &variant, &CLOSES)
    }

    pub(super) fn direct(&self, plan: &Plan) -> Row {
        let path = format!("to one backend, {}:{BACKEND_PORT}", BACKENDS[0]);
        self.measure(plan, "direct", "direct", path, BACKENDS[0], BACKEND_PORT)
    }

    pub(super) fn iptables(&self, plan: &Plan) -> Row {
        let (key, name) = ("iptables", "iptables DNAT hop");
        let path = "DNAT nth round robin + MASQUERADE in a router ns".to_owned();
        if !have("iptables") {
            return Row::failed(
                key,
                name,
                path,
                "iptables is missing (cargo xtask setup)",
                CLOSES.len(),
            );
        }
        let version = checked(Command::new("iptables").arg("-V"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let path = format!("{path} ({version})");
        match self.iptables_rules() {
            Ok(()) => self.measure(plan, key, name, path, IPTABLES_ROUTER, PUBLISHED),
            Err(error) => Row::failed(key, name, path, &format!("{error:#}"), CLOSES.len()),
        }
    }

    /// kube-proxy's pattern: rule `i` of `n` takes every `(n-i)`th of the
    /// connections left, the last takes the rest.
    fn iptables_rules(&self) -> Result<()> {
        forwarding(&self.iptables)?;
        let iptables = |args: &[String]| checked(self.iptables.command("iptables").args(args));
        let (router, published) = (IPTABLES_ROUTER.to_string(), PUBLISHED.to_string());
        let backends: Vec<String> = BACKENDS
            .iter()
            .map(|backend| format!("{backend}:{BACKEND_PORT}"))
            .collect();
        let matching = [
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            &router,
            "-p",
            "tcp",
            "--dport",
            &published,
        ];
        for rule in round_robin_dnat(&matching, &backends) {
            iptables(&rule)?;
        }
        let masquerade: Vec<String> = [
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-d",
            "198.18.2.0/24",
            "-p",
            "tcp",
            "--dport",
            &BACKEND_PORT.to_string(),
            "-j",
            "MASQUERADE",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        iptables(&masquerade).map(drop)
    }

    pub(super) fn nftables(&self, plan: &Plan) -> Row {
        let (key, name) = ("nftables", "nftables DNAT hop");
        let path = format!(
            "DNAT numgen inc mod {} + masquerade in a router ns",
            BACKENDS.len()
        );
        if !have("nft") {
            return Row::failed(
                key,
                name,
                path,
                "nft is missing (cargo xtask setup)",
                CLOSES.len(),
            );
        }
        let map = BACKENDS
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{i} : {b}"))
            .collect::<Vec<_>>()
            .join(", ");
        let ruleset = format!(
            "table ip shoalbench {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {NFT_ROUTER} tcp dport {PUBLISHED} dnat to numgen inc mod {} map {{ {map} }} : {BACKEND_PORT}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr 198.18.2.0/24 tcp dport {BACKEND_PORT} masquerade
  }}
}}
",
            BACKENDS.len()
        );
        let file = self.dir.0.join("nft.conf");
        let loaded = forwarding(&self.nft)
            .and_then(|()| std::fs::write(&file, ruleset).context("writing the nft ruleset"))
            .and_then(|()| checked(self.nft.command("nft").arg("-f").arg(&file)).map(drop));
        match loaded {
            Ok(()) => self.measure(plan, key, name, path, NFT_ROUTER, PUBLISHED),
            Err(error) => Row::failed(key, name, path, &format!("{error:#}"), CLOSES.len()),
        }
    }

    pub(super) fn haproxy(&self, plan: &Plan) -> Row {
        let (key, name) = ("haproxy", "haproxy");
        let path = "TCP mode, round robin, in its own ns".to_owned();
        if !have("haproxy") {
            return Row::failed(
                key,
                name,
                path,
                "haproxy is missing (cargo xtask setup)",
                CLOSES.len(),
            );
        }
        let version = checked(Command::new("haproxy").arg("-v"))
            .ok()
            .and_then(|v| v.split_whitespace().nth(2).map(str::to_owned))
            .unwrap_or_default();
        let path = format!("{path} (haproxy {version})");
        let mut config = format!(
            "global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend mesh
    bind {HAPROXY}:{PUBLISHED}
    default_backend backends
backend backends
    balance roundrobin
"
        );
        for (i, backend) in BACKENDS.iter().enumerate() {
            let _ = writeln!(config, "    server b{} {backend}:{BACKEND_PORT}", i + 1);
        }
        let (file, log) = (
            self.dir.0.join("haproxy.cfg"),
            self.dir.0.join("haproxy.log"),
        );
        let started = std::fs::write(&file, config)
            .context("writing haproxy's configuration")
            .and_then(|()| {
                let log = std::fs::File::create(&log).context("haproxy's log")?;
                let err = log.try_clone().context("haproxy's log")?;
                self.haproxy
                    .command("haproxy")
                    .arg("-db")
                    .arg("-f")
                    .arg(&file)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .spawn()
                    .context("starting haproxy")
            });
        let _haproxy = match started {
            Ok(child) => Background(child),
            Err(error) => return Row::failed(key, name, path, &format!("{error:#}"), CLOSES.len()),
        };
        let mut row = self.measure(plan, key, name, path, HAPROXY, PUBLISHED);
        if row.modes.iter().any(Result::is_err) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            if !log.trim().is_empty() {
                row.note = format!("haproxy said: {}", log.trim());
            }
        }
        row
    }
}
