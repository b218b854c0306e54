//! The variants without shoal, on the lab: straight to one backend, and
//! round robin to the three by iptables, nftables and haproxy.

use std::{
    fmt::Write as _,
    net::SocketAddrV4,
    process::{Command, Stdio},
};

use anyhow::{Context, Result};

use super::{
    BACKEND_PORT, BACKENDS, HAPROXY, IPTABLES_ROUTER, NFT_ROUTER, PUBLISHED,
    lab::{Lab, checked, forwarding, have},
    report::Row,
    wrk::measure,
};
use crate::bench_shared::{Background, round_robin_dnat};

impl Lab {
    pub(super) fn direct(&self) -> Row {
        let target = SocketAddrV4::new(BACKENDS[0], BACKEND_PORT);
        measure(
            "direct",
            format!("to one backend, {target}"),
            &self.client,
            target,
        )
    }

    pub(super) fn iptables(&self) -> Row {
        let name = "iptables";
        let path = "DNAT nth round robin + MASQUERADE in a router ns".to_owned();
        if !have("iptables") {
            return Row::failed(name, path, "iptables is missing (cargo xtask setup)".into());
        }
        let version = checked(Command::new("iptables").arg("-V"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let path = format!("{path} ({version})");
        match self.iptables_rules() {
            Ok(()) => measure(
                name,
                path,
                &self.client,
                SocketAddrV4::new(IPTABLES_ROUTER, PUBLISHED),
            ),
            Err(error) => Row::failed(name, path, format!("{error:#}")),
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

    pub(super) fn nftables(&self) -> Row {
        let name = "nftables";
        let path = "DNAT numgen inc mod 3 + masquerade in a router ns".to_owned();
        if !have("nft") {
            return Row::failed(name, path, "nft is missing (cargo xtask setup)".into());
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
            Ok(()) => measure(
                name,
                path,
                &self.client,
                SocketAddrV4::new(NFT_ROUTER, PUBLISHED),
            ),
            Err(error) => Row::failed(name, path, format!("{error:#}")),
        }
    }

    pub(super) fn haproxy(&self) -> Row {
        let name = "haproxy";
        let path = "TCP mode, round robin, in its own ns".to_owned();
        if !have("haproxy") {
            return Row::failed(name, path, "haproxy is missing (cargo xtask setup)".into());
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
            Err(error) => return Row::failed(name, path, format!("{error:#}")),
        };
        let mut row = measure(
            name,
            path,
            &self.client,
            SocketAddrV4::new(HAPROXY, PUBLISHED),
        );
        if row.keep_alive.is_err() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            if !log.trim().is_empty() {
                row.note = format!("haproxy said: {}", log.trim());
            }
        }
        row
    }
}
