//! The socket-level service load balancer's kernel side (DESIGN §5, data
//! path 4; the programs are `ebpf/programs/src/sock_lb.rs`): its four
//! `cgroup_sock_addr` programs, loaded and pinned with the rest as
//! `prog_<program>` and attached per task cgroup ([`attach_socket_lb`],
//! links pinned as `link_sock_<task>_<program>`, so they outlive the
//! agent), and typed access to its maps ([`SocketLbMaps`]: `SOCK_SERVICES`,
//! `SOCK_REVERSE`; they count their calls in `REASON_COUNTERS` like every
//! other hook, [`super::Counters`]). [`super::OverlayMaps`] writes
//! `SOCK_SERVICES` together with `OVERLAY_SERVICES`, so the socket and tc
//! paths always balance the same VIPs over the same Maglev tables.

use std::{
    collections::BTreeMap,
    fs::File,
    net::{Ipv4Addr, SocketAddrV4},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{HashMap, MapData},
    programs::{
        CgroupAttachMode, CgroupSockAddr, cgroup_sock_addr::CgroupSockAddrAttachType, links::FdLink,
    },
};
use shoal_ebpf_common::{SockReverseKey, map_names, program_names};

use super::{
    DataplaneError, existing_link, io_err,
    map_source::{MapSource, map_error},
    overlay::{found, removed},
    pin_link, pin_program, program_error, program_error_from_link, program_mut, program_pin_path,
    remove_pin,
};

/// Each socket program and the hook it attaches to.
const PROGRAMS: [(&str, CgroupSockAddrAttachType); 4] = [
    (
        program_names::SOCK_LB_CONNECT4,
        CgroupSockAddrAttachType::Connect4,
    ),
    (
        program_names::SOCK_LB_SENDMSG4,
        CgroupSockAddrAttachType::UDPSendMsg4,
    ),
    (
        program_names::SOCK_LB_RECVMSG4,
        CgroupSockAddrAttachType::UDPRecvMsg4,
    ),
    (
        program_names::SOCK_LB_GETPEERNAME4,
        CgroupSockAddrAttachType::GetPeerName4,
    ),
];

/// Loads the socket programs of a freshly loaded object and pins them.
pub(super) fn load_programs(ebpf: &mut Ebpf, pin_dir: &Path) -> Result<(), DataplaneError> {
    for (program, _) in PROGRAMS {
        let sock_addr: &mut CgroupSockAddr = program_mut(ebpf, program)?;
        sock_addr.load().map_err(program_error(program))?;
        pin_program(ebpf, program, pin_dir)?;
    }
    Ok(())
}

/// Opens the socket program pinned as `prog_<program>`.
fn open_pinned(
    pin_dir: &Path,
    program: &'static str,
    attach_type: CgroupSockAddrAttachType,
) -> Result<CgroupSockAddr, DataplaneError> {
    CgroupSockAddr::from_pin(program_pin_path(pin_dir, program), attach_type)
        .map_err(program_error(program))
}

/// Checks that every socket program is pinned (a data plane being reused).
pub(super) fn check_pinned_programs(pin_dir: &Path) -> Result<(), DataplaneError> {
    for (program, attach_type) in PROGRAMS {
        open_pinned(pin_dir, program, attach_type)?;
    }
    Ok(())
}

/// Where the link of `program` on the cgroup of task `task` is pinned.
fn link_pin(pin_dir: &Path, task: &str, program: &str) -> PathBuf {
    pin_dir.join(format!("link_sock_{task}_{program}"))
}

/// Attaches the four socket programs (pinned in `pin_dir`) to the cgroup
/// v2 directory `cgroup` of task `task` and pins each link, so they stay
/// while the agent restarts. Idempotent: a program whose link is pinned
/// already is left as it is (an adopted task). The links go with the
/// cgroup; [`detach_socket_lb`] removes the pins.
pub fn attach_socket_lb(pin_dir: &Path, task: &str, cgroup: &Path) -> Result<(), DataplaneError> {
    let directory = File::open(cgroup).map_err(io_err("opening", cgroup))?;
    for (program, attach_type) in PROGRAMS {
        let pin = link_pin(pin_dir, task, program);
        if existing_link(&pin).is_some() {
            continue;
        }
        let mut sock_addr = open_pinned(pin_dir, program, attach_type)?;
        // aya attaches through a link, which always leaves room for other
        // programs on the hook; `Single` passes no flags, as a link needs.
        let id = sock_addr
            .attach(&directory, CgroupAttachMode::Single)
            .map_err(program_error(program))?;
        let link = sock_addr.take_link(id).map_err(program_error(program))?;
        let link = FdLink::try_from(link).map_err(program_error_from_link(program))?;
        pin_link(link, &pin)?;
    }
    Ok(())
}

/// Removes the link pins of task `task`'s socket programs: the programs
/// leave its cgroup (if it still exists).
pub fn detach_socket_lb(pin_dir: &Path, task: &str) -> Result<(), DataplaneError> {
    for (program, _) in PROGRAMS {
        remove_pin(&link_pin(pin_dir, task, program))?;
    }
    Ok(())
}

/// One `SOCK_REVERSE` entry: a socket translated to `backend`, shown as
/// `vip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReverseEntry {
    /// The socket's cookie.
    pub cookie: u64,
    /// The backend the socket was sent to, with the port.
    pub backend: SocketAddrV4,
    /// The VIP it asked for, with the same port.
    pub vip: SocketAddrV4,
}

/// The socket load balancer's maps of one loaded or pinned object.
pub struct SocketLbMaps {
    services: HashMap<MapData, u32, u32>,
    reverse: HashMap<MapData, SockReverseKey, u32>,
}

impl std::fmt::Debug for SocketLbMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketLbMaps").finish_non_exhaustive()
    }
}

/// An address as the programs keep it: its octets in memory order.
fn address_be(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

impl SocketLbMaps {
    pub(super) fn open(source: &mut MapSource<'_>) -> Result<Self, DataplaneError> {
        Ok(Self {
            services: source.open(map_names::SOCK_SERVICES)?,
            reverse: source.open(map_names::SOCK_REVERSE)?,
        })
    }

    /// Makes `vip` a VIP for the socket hooks, balanced by the Maglev
    /// table of `slot` (checked by the caller).
    pub(super) fn upsert_service(
        &mut self,
        vip: Ipv4Addr,
        slot: u32,
    ) -> Result<(), DataplaneError> {
        self.services
            .insert(address_be(vip), slot, 0)
            .map_err(map_error(map_names::SOCK_SERVICES))
    }

    /// Stops translating `vip`; `false` if it was not there.
    pub(super) fn remove_service(&mut self, vip: Ipv4Addr) -> Result<bool, DataplaneError> {
        removed(
            self.services.remove(&address_be(vip)),
            map_names::SOCK_SERVICES,
        )
    }

    /// The slot `vip` is balanced by at the socket, if it is a VIP there.
    pub fn service(&self, vip: Ipv4Addr) -> Result<Option<u32>, DataplaneError> {
        found(
            self.services.get(&address_be(vip), 0),
            map_names::SOCK_SERVICES,
        )
    }

    /// Every VIP of `SOCK_SERVICES` and its slot.
    pub fn services(&self) -> Result<BTreeMap<Ipv4Addr, u32>, DataplaneError> {
        self.services
            .iter()
            .map(|entry| {
                entry
                    .map(|(vip_be, slot)| (Ipv4Addr::from(vip_be.to_ne_bytes()), slot))
                    .map_err(map_error(map_names::SOCK_SERVICES))
            })
            .collect()
    }

    /// Every socket translated to a backend that `SOCK_REVERSE` still
    /// remembers.
    pub fn reverse_entries(&self) -> Result<Vec<ReverseEntry>, DataplaneError> {
        self.reverse
            .iter()
            .map(|entry| {
                entry
                    .map(|(key, vip_be)| {
                        let port = u16::from_be(key.port_be);
                        ReverseEntry {
                            cookie: key.cookie,
                            backend: SocketAddrV4::new(
                                Ipv4Addr::from(key.backend_be.to_ne_bytes()),
                                port,
                            ),
                            vip: SocketAddrV4::new(Ipv4Addr::from(vip_be.to_ne_bytes()), port),
                        }
                    })
                    .map_err(map_error(map_names::SOCK_REVERSE))
            })
            .collect()
    }
}
