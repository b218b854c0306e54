//! The node's data plane: the one owner of shoal's eBPF programs, links and
//! maps (blixt's loader, cilium's agent).
//!
//! Everything is pinned under `<bpffs>/shoal/<node-id>/`:
//! `link_<program>` and `prog_<program>` for each program, and every map by
//! name. Links are pinned, so programs stay attached and keep counting while
//! shoald is down (a crash, `kill -9`, an upgrade). On start:
//!
//! - pins from this very object on the same interface: **reused** as they
//!   are, nothing reloaded ([`DataplaneStart::Reused`]);
//! - pins from another build: maps reused, the new programs swapped into the
//!   existing links atomically with `BPF_LINK_UPDATE` ([`DataplaneStart::Upgraded`]);
//! - nothing pinned: load, attach, pin ([`DataplaneStart::Fresh`]).
//!
//! [`Dataplane::shutdown`] removes the pins (detaching the programs) unless
//! asked to keep them.
//!
//! The overlay programs (`tc_endpoint_ingress`, `tc_vxlan_ingress`) are loaded
//! with the rest and pinned as `prog_<program>`, but attached per interface
//! ([`attach_overlay`]) by the agent's overlay module as tasks and the VXLAN
//! device come and go; that module is the only writer of their maps
//! ([`OverlayMaps`], opened from the pins), and so are the socket
//! programs (`sock_lb_*`), attached per task cgroup ([`attach_socket_lb`])
//! by the executor through the overlay. `Dataplane` reads what every hook
//! counted ([`Counters`]) for the status.

mod bpffs;
mod counters;
pub mod maglev;
mod map_source;
mod mesh;
mod object;
mod overlay;
mod record;
mod sock_lb;

use std::{
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::MapError,
    pin::PinError,
    programs::{
        ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, LinkError, PinnedLink},
        tc::SchedClassifierLink,
        xdp::XdpLink,
    },
};
use aya_log::EbpfLogger;
pub use bpffs::ensure_bpffs_mounted;
pub use counters::Counters;
pub use mesh::{MeshHook, MeshMaps, PortTarget, PublishedPort};
pub use object::{EBPF_OBJECT, object_digest};
pub use overlay::{
    Endpoint, EndpointLocation, Flow, FlowDirection, Interface, MAX_VNI, OverlayMaps, Underlay,
};
use record::AttachRecord;
use shoal_api::status::{DataplaneStart, DataplaneStatus, ProgramStatus};
use shoal_ebpf_common::{PINNED_LAYOUTS, program_names};
pub use sock_lb::{ReverseEntry, SocketLbMaps, attach_socket_lb, detach_socket_lb};
use tracing::{info, warn};
use tracing_log::LogTracer;

/// Directory under the bpffs mount that holds one sub-directory per node.
pub const PIN_SUBDIR: &str = "shoal";

/// How to attach the XDP program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// Native (driver) mode, falling back to generic when the driver
    /// refuses (the agent picks generic for a veth underlay).
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

/// Where and how to run the data plane.
#[derive(Clone, Debug)]
pub struct DataplaneConfig {
    /// This node's identifier; names the pin directory.
    pub node_id: String,
    /// Mount point of bpffs, normally `/sys/fs/bpf`; mounted if it is not.
    pub bpffs: PathBuf,
    /// The underlay interface, in shoald's network namespace.
    pub underlay_iface: String,
    /// XDP attach mode.
    pub xdp_mode: XdpAttachMode,
    /// File in the node's data dir recording what was attached where.
    pub record_file: PathBuf,
}

impl DataplaneConfig {
    /// `<bpffs>/shoal/<node-id>`.
    #[must_use]
    pub fn pin_dir(&self) -> PathBuf {
        self.bpffs.join(PIN_SUBDIR).join(&self.node_id)
    }
}

/// Errors of the data plane, with the object they concern.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The binary was built before `cargo xtask build-ebpf` produced the object.
    #[error(
        "this shoald was built without its eBPF object: run `cargo xtask build-ebpf`, then rebuild"
    )]
    ObjectMissing,
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The underlay interface does not exist in this network namespace.
    #[error("underlay interface {iface:?} not found in this network namespace")]
    NoInterface {
        /// The interface name.
        iface: String,
    },
    /// Loading the object (maps, relocations) failed.
    #[error("loading the eBPF object: {0}")]
    Load(#[from] EbpfError),
    /// A program could not be loaded, attached or replaced.
    #[error("program {program}: {source}")]
    Program {
        /// Program name.
        program: &'static str,
        /// The error.
        source: ProgramError,
    },
    /// A map is missing or has the wrong type.
    #[error("map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The error.
        source: MapError,
    },
    /// Pinning a program or link failed.
    #[error("pinning {path}: {source}")]
    Pin {
        /// Pin path.
        path: PathBuf,
        /// The error.
        source: PinError,
    },
    /// A pinned link could not be opened or inspected.
    #[error("link {path}: {source}")]
    Link {
        /// Pin path.
        path: PathBuf,
        /// The error.
        source: LinkError,
    },
    /// The object's log ring buffer could not be opened.
    #[error("eBPF log buffer: {0}")]
    Log(#[from] aya_log::Error),
    /// An overlay endpoint or interface the programs could not use.
    #[error("invalid overlay map entry: {reason}")]
    InvalidOverlayEntry {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Logs written by the programs with `aya-log`, forwarded into `tracing`.
pub type EbpfLogs = EbpfLogger<LogTracer>;

/// One program attached through a pinned link.
#[derive(Debug)]
struct Attachment {
    program: &'static str,
    attach: String,
    link: FdLink,
    link_pin: PathBuf,
    program_id: u32,
    link_id: u32,
}

/// The running data plane of one node.
pub struct Dataplane {
    config: DataplaneConfig,
    start: DataplaneStart,
    counters: Counters,
    attachments: Vec<Attachment>,
    logs: Option<EbpfLogs>,
}

/// Attached XDP mode as recorded and shown.
fn xdp_mode_name(mode: XdpMode) -> &'static str {
    match mode {
        XdpMode::Skb => "generic",
        XdpMode::Hardware => "offload",
        XdpMode::Driver | XdpMode::Default => "native",
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DataplaneError + 'a {
    move |source| DataplaneError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Index of `iface` in the current network namespace.
pub fn ifindex(iface: &str) -> Result<u32, DataplaneError> {
    let name = CString::new(iface).map_err(|_| DataplaneError::NoInterface {
        iface: iface.to_owned(),
    })?;
    // SAFETY: `name` is a valid NUL-terminated string for the call's duration.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(DataplaneError::NoInterface {
            iface: iface.to_owned(),
        }),
        index => Ok(index),
    }
}

impl Dataplane {
    /// Brings the data plane up: reuses, upgrades or creates the pins (see the
    /// module docs).
    pub fn start(config: DataplaneConfig) -> Result<Self, DataplaneError> {
        ensure_bpffs_mounted(&config.bpffs)?;
        let pin_dir = config.pin_dir();
        std::fs::create_dir_all(&pin_dir).map_err(io_err("creating", &pin_dir))?;
        let ifindex = ifindex(&config.underlay_iface)?;
        let digest = object_digest();
        let record = AttachRecord::read(&config.record_file)?;
        let same_place = record
            .as_ref()
            .is_some_and(|r| r.iface == config.underlay_iface && r.ifindex == ifindex);

        if same_place && record.as_ref().is_some_and(|r| r.object_sha256 == digest) {
            let xdp_mode = record.as_ref().map_or("native", |r| r.xdp_mode.as_str());
            match Self::reuse(&config, xdp_mode) {
                Ok(dataplane) => {
                    info!(pin_dir = %pin_dir.display(), "data plane reused from pins");
                    return Ok(dataplane);
                }
                Err(error) => warn!(%error, "pins unusable, loading the programs again"),
            }
        }
        let recorded_xdp_mode = if same_place {
            record.map(|r| r.xdp_mode())
        } else {
            // Links on another interface (or a recreated one) are stale.
            remove_link_pins(&pin_dir)?;
            None
        };
        Self::load(config, ifindex, &digest, recorded_xdp_mode)
    }

    /// Opens the pinned links and maps of a running data plane.
    fn reuse(config: &DataplaneConfig, xdp_mode: &str) -> Result<Self, DataplaneError> {
        let pin_dir = config.pin_dir();
        let mut attachments = Vec::new();
        for (program, attach) in attach_points(&config.underlay_iface, xdp_mode) {
            let link_pin = link_pin_path(&pin_dir, program);
            let link: FdLink = PinnedLink::from_pin(&link_pin)
                .map_err(|source| DataplaneError::Link {
                    path: link_pin.clone(),
                    source,
                })?
                .into();
            attachments.push(Attachment::new(program, attach, link, link_pin)?);
        }
        let counters = Counters::from_pins(&pin_dir)?;
        for program in program_names::OVERLAY {
            open_pinned_program(&pin_dir, program)?;
        }
        sock_lb::check_pinned_programs(&pin_dir)?;
        let logs = attachments
            .first()
            .map(|a| EbpfLogger::init_from_id_with_logger(a.program_id, LogTracer::new()))
            .transpose()?;
        Ok(Self {
            config: config.clone(),
            start: DataplaneStart::Reused,
            counters,
            attachments,
            logs,
        })
    }

    /// Loads the object, reusing pinned maps, and attaches every program:
    /// into its existing pinned link when there is one, else fresh.
    fn load(
        config: DataplaneConfig,
        ifindex: u32,
        digest: &str,
        recorded_xdp_mode: Option<XdpMode>,
    ) -> Result<Self, DataplaneError> {
        let pin_dir = config.pin_dir();
        remove_stale_map_pins(&pin_dir)?;
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&pin_dir)
            .load(EBPF_OBJECT)?;
        let logs = EbpfLogger::init_with_logger(&mut ebpf, LogTracer::new())?;
        let mut upgraded = false;

        let xdp_link = link_pin_path(&pin_dir, program_names::XDP_UNDERLAY);
        let (link, mode, replaced) = attach_xdp(&mut ebpf, &config, &xdp_link, recorded_xdp_mode)?;
        upgraded |= replaced;
        let xdp_mode = xdp_mode_name(mode);
        let tc_link = link_pin_path(&pin_dir, program_names::TC_UNDERLAY_EGRESS);
        let (tc, replaced) = attach_tc(
            &mut ebpf,
            &config,
            program_names::TC_UNDERLAY_EGRESS,
            TcAttachType::Egress,
            &tc_link,
        )?;
        upgraded |= replaced;
        let tc_ingress_link = link_pin_path(&pin_dir, program_names::TC_UNDERLAY_INGRESS);
        let (tc_ingress, replaced) = attach_tc(
            &mut ebpf,
            &config,
            program_names::TC_UNDERLAY_INGRESS,
            TcAttachType::Ingress,
            &tc_ingress_link,
        )?;
        upgraded |= replaced;

        let mut attachments = Vec::new();
        for ((program, attach), (link, link_pin)) in attach_points(&config.underlay_iface, xdp_mode)
            .into_iter()
            .zip([
                (link, xdp_link),
                (tc, tc_link),
                (tc_ingress, tc_ingress_link),
            ])
        {
            pin_program(&mut ebpf, program, &pin_dir)?;
            attachments.push(Attachment::new(program, attach, link, link_pin)?);
        }
        for program in program_names::OVERLAY {
            let classifier: &mut SchedClassifier = program_mut(&mut ebpf, program)?;
            classifier.load().map_err(program_error(program))?;
            pin_program(&mut ebpf, program, &pin_dir)?;
        }
        sock_lb::load_programs(&mut ebpf, &pin_dir)?;
        let counters = Counters::from_ebpf(&mut ebpf)?;
        AttachRecord {
            object_sha256: digest.to_owned(),
            iface: config.underlay_iface.clone(),
            ifindex,
            xdp_mode: xdp_mode.to_owned(),
        }
        .write(&config.record_file)?;
        let start = if upgraded {
            DataplaneStart::Upgraded
        } else {
            DataplaneStart::Fresh
        };
        info!(pin_dir = %pin_dir.display(), ?start, xdp_mode, "data plane loaded");
        Ok(Self {
            config,
            start,
            counters,
            attachments,
            logs: Some(logs),
        })
    }

    /// The counters of every hook and the attachments, for the node's
    /// status.
    pub fn status(&self) -> Result<DataplaneStatus, DataplaneError> {
        let counters = self.counters.read()?;
        Ok(DataplaneStatus {
            pin_dir: self.config.pin_dir().display().to_string(),
            start: self.start,
            programs: self
                .attachments
                .iter()
                .map(|a| ProgramStatus {
                    name: a.program.to_owned(),
                    attach: a.attach.clone(),
                    program_id: a.program_id,
                    link_id: a.link_id,
                })
                .collect(),
            counters,
        })
    }

    /// Hands out the programs' log stream once, for a task that forwards it
    /// (see [`forward_ebpf_logs`]).
    pub fn take_logs(&mut self) -> Option<EbpfLogs> {
        self.logs.take()
    }

    /// Stops the data plane. With `keep_pins` the programs stay attached and
    /// the next start reuses them; otherwise every pin is removed, which
    /// detaches the programs and frees the maps.
    pub fn shutdown(self, keep_pins: bool) -> Result<(), DataplaneError> {
        let pin_dir = self.config.pin_dir();
        if keep_pins {
            info!(pin_dir = %pin_dir.display(), "data plane left attached (pins kept)");
            return Ok(());
        }
        for attachment in self.attachments {
            remove_pin(&attachment.link_pin)?;
            drop(attachment.link);
        }
        bpffs::remove_pin_dir(&pin_dir)?;
        AttachRecord::remove(&self.config.record_file)?;
        info!(pin_dir = %pin_dir.display(), "data plane detached and pins removed");
        Ok(())
    }
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("pin_dir", &self.config.pin_dir())
            .field("start", &self.start)
            .field("attachments", &self.attachments)
            .finish_non_exhaustive()
    }
}

impl Attachment {
    fn new(
        program: &'static str,
        attach: String,
        link: FdLink,
        link_pin: PathBuf,
    ) -> Result<Self, DataplaneError> {
        let link_info = link.info().map_err(|source| DataplaneError::Link {
            path: link_pin.clone(),
            source,
        })?;
        Ok(Self {
            program,
            attach,
            program_id: link_info.program_id(),
            link_id: link_info.id(),
            link,
            link_pin,
        })
    }
}

/// Loads the embedded object with its maps pinned in (or reused from)
/// `pin_dir`, without loading or attaching any program. The data plane
/// builds on this; packet-fixture tests run its programs with
/// `BPF_PROG_TEST_RUN`.
pub fn load_object(pin_dir: &Path) -> Result<Ebpf, DataplaneError> {
    if EBPF_OBJECT.is_empty() {
        return Err(DataplaneError::ObjectMissing);
    }
    remove_stale_map_pins(pin_dir)?;
    Ok(EbpfLoader::new()
        .default_map_pin_directory(pin_dir)
        .load(EBPF_OBJECT)?)
}

/// Removes the map pins in `pin_dir` whose layout (key and value size,
/// entries) is not this object's ([`PINNED_LAYOUTS`]), so that loading
/// creates them afresh instead of reusing a map of another build's size
/// (aya reuses a pin by name without comparing). Their entries are lost;
/// every other map keeps its entries.
fn remove_stale_map_pins(pin_dir: &Path) -> Result<(), DataplaneError> {
    for layout in PINNED_LAYOUTS {
        let path = pin_dir.join(layout.name);
        if !path.exists() {
            continue;
        }
        let found = aya::maps::MapData::from_pin(&path)
            .and_then(|map| map.info())
            .map(|info| (info.key_size(), info.value_size(), info.max_entries()));
        let wanted = (layout.key_size, layout.value_size, layout.max_entries);
        match found {
            Ok(found) if found == wanted => continue,
            Ok(found) => warn!(
                map = layout.name,
                ?found,
                ?wanted,
                "pinned map has another layout: recreating it"
            ),
            Err(error) => warn!(map = layout.name, %error, "pinned map unusable: recreating it"),
        }
        std::fs::remove_file(&path).map_err(io_err("removing", &path))?;
    }
    Ok(())
}

/// The programs in attach order, with how status describes their hook.
fn attach_points(iface: &str, xdp_mode: &str) -> [(&'static str, String); 3] {
    [
        (
            program_names::XDP_UNDERLAY,
            format!("xdp/{iface} ({xdp_mode})"),
        ),
        (
            program_names::TC_UNDERLAY_EGRESS,
            format!("tcx-egress/{iface}"),
        ),
        (
            program_names::TC_UNDERLAY_INGRESS,
            format!("tcx-ingress/{iface}"),
        ),
    ]
}

fn link_pin_path(pin_dir: &Path, program: &str) -> PathBuf {
    pin_dir.join(format!("link_{program}"))
}

fn program_error(program: &'static str) -> impl FnOnce(ProgramError) -> DataplaneError {
    move |source| DataplaneError::Program { program, source }
}

/// Opens a pinned link left by an earlier run, if there is one.
fn existing_link(path: &Path) -> Option<FdLink> {
    PinnedLink::from_pin(path).ok().map(FdLink::from)
}

/// Pins a freshly created link at `path`.
fn pin_link(link: FdLink, path: &Path) -> Result<FdLink, DataplaneError> {
    link.pin(path)
        .map(FdLink::from)
        .map_err(|source| DataplaneError::Pin {
            path: path.to_path_buf(),
            source,
        })
}

/// Attaches the XDP program: into the pinned link of an earlier run when
/// there is one (returns `replaced = true`), else fresh in the configured
/// mode. Returns the link, its mode and whether an old program was replaced.
fn attach_xdp(
    ebpf: &mut Ebpf,
    config: &DataplaneConfig,
    link_pin: &Path,
    recorded_mode: Option<XdpMode>,
) -> Result<(FdLink, XdpMode, bool), DataplaneError> {
    let name = program_names::XDP_UNDERLAY;
    let program: &mut Xdp = program_mut(ebpf, name)?;
    program.load().map_err(program_error(name))?;
    if let Some(old) = existing_link(link_pin) {
        let old = XdpLink::try_from(old).map_err(|source| DataplaneError::Link {
            path: link_pin.to_path_buf(),
            source,
        })?;
        let id = program.attach_to_link(old).map_err(program_error(name))?;
        let link = program.take_link(id).map_err(program_error(name))?;
        let link = FdLink::try_from(link).map_err(program_error_from_link(name))?;
        return Ok((link, recorded_mode.unwrap_or(XdpMode::Driver), true));
    }
    let modes: &[XdpMode] = match config.xdp_mode {
        XdpAttachMode::Auto => &[XdpMode::Driver, XdpMode::Skb],
        XdpAttachMode::Native => &[XdpMode::Driver],
        XdpAttachMode::Generic => &[XdpMode::Skb],
    };
    let mut last_error = None;
    for &mode in modes {
        match program.attach(&config.underlay_iface, mode) {
            Ok(id) => {
                let link = program.take_link(id).map_err(program_error(name))?;
                let link = FdLink::try_from(link).map_err(program_error_from_link(name))?;
                return Ok((pin_link(link, link_pin)?, mode, false));
            }
            Err(error) => {
                warn!(%error, mode = xdp_mode_name(mode), "XDP attach failed");
                last_error = Some(error);
            }
        }
    }
    Err(DataplaneError::Program {
        program: name,
        source: last_error.unwrap_or(ProgramError::NotAttached),
    })
}

/// Attaches an underlay tc program (TCX) like [`attach_xdp`].
fn attach_tc(
    ebpf: &mut Ebpf,
    config: &DataplaneConfig,
    name: &'static str,
    attach_type: TcAttachType,
    link_pin: &Path,
) -> Result<(FdLink, bool), DataplaneError> {
    let program: &mut SchedClassifier = program_mut(ebpf, name)?;
    program.load().map_err(program_error(name))?;
    if let Some(old) = existing_link(link_pin) {
        let old = SchedClassifierLink::try_from(old).map_err(|source| DataplaneError::Link {
            path: link_pin.to_path_buf(),
            source,
        })?;
        let id = program.attach_to_link(old).map_err(program_error(name))?;
        let link = program.take_link(id).map_err(program_error(name))?;
        return Ok((
            FdLink::try_from(link).map_err(program_error_from_link(name))?,
            true,
        ));
    }
    let id = program
        .attach(&config.underlay_iface, attach_type)
        .map_err(program_error(name))?;
    let link = program.take_link(id).map_err(program_error(name))?;
    let link = FdLink::try_from(link).map_err(program_error_from_link(name))?;
    Ok((pin_link(link, link_pin)?, false))
}

/// Attaches the pinned overlay `program` (one of
/// [`program_names::OVERLAY`]) to the tc ingress (TCX) of `iface` and pins
/// the link at `link_pin`, so it outlives the agent; does nothing when a
/// link is pinned there already (an agent restart). The link goes with the
/// interface; [`detach_overlay`] removes the pin.
pub fn attach_overlay(
    pin_dir: &Path,
    program: &'static str,
    iface: &str,
    link_pin: &Path,
) -> Result<(), DataplaneError> {
    if existing_link(link_pin).is_some() {
        return Ok(());
    }
    let mut classifier = open_pinned_program(pin_dir, program)?;
    let id = classifier
        .attach(iface, TcAttachType::Ingress)
        .map_err(program_error(program))?;
    let link = classifier.take_link(id).map_err(program_error(program))?;
    let link = FdLink::try_from(link).map_err(program_error_from_link(program))?;
    pin_link(link, link_pin).map(drop)
}

/// Removes an overlay link's pin (its interface is gone or going).
pub fn detach_overlay(link_pin: &Path) -> Result<(), DataplaneError> {
    remove_pin(link_pin)
}

/// A link that cannot become an `FdLink` was attached through netlink, which
/// cannot be pinned: this kernel supports link-based XDP and TCX, so it is
/// reported as an attach failure.
fn program_error_from_link(program: &'static str) -> impl FnOnce(LinkError) -> DataplaneError {
    move |_| DataplaneError::Program {
        program,
        source: ProgramError::NotAttached,
    }
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, DataplaneError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf.program_mut(name).ok_or(DataplaneError::Program {
        program: name,
        source: ProgramError::NotLoaded,
    })?;
    program.try_into().map_err(program_error(name))
}

/// Pins the loaded program as `prog_<name>` (replacing an older pin), so
/// operators find it with `bpftool prog show pinned …`.
fn pin_program(ebpf: &mut Ebpf, name: &'static str, pin_dir: &Path) -> Result<(), DataplaneError> {
    let path = program_pin_path(pin_dir, name);
    remove_pin(&path)?;
    let program = ebpf.program_mut(name).ok_or(DataplaneError::Program {
        program: name,
        source: ProgramError::NotLoaded,
    })?;
    program
        .pin(&path)
        .map_err(|source| DataplaneError::Pin { path, source })
}

/// Opens the program pinned as `prog_<name>` by [`pin_program`].
fn open_pinned_program(
    pin_dir: &Path,
    name: &'static str,
) -> Result<SchedClassifier, DataplaneError> {
    SchedClassifier::from_pin(program_pin_path(pin_dir, name)).map_err(program_error(name))
}

fn program_pin_path(pin_dir: &Path, program: &str) -> PathBuf {
    pin_dir.join(format!("prog_{program}"))
}

fn remove_pin(path: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(DataplaneError::Io {
            op: "removing pin",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn remove_link_pins(pin_dir: &Path) -> Result<(), DataplaneError> {
    for program in [
        program_names::XDP_UNDERLAY,
        program_names::TC_UNDERLAY_EGRESS,
    ] {
        remove_pin(&link_pin_path(pin_dir, program))?;
    }
    Ok(())
}

/// Forwards the programs' `aya-log` records into `tracing` until the task is
/// dropped. Spawn it on the daemon's runtime.
pub async fn forward_ebpf_logs(logs: EbpfLogs) -> io::Result<()> {
    // SAFETY: the logger owns its ring buffer's fd and keeps it open, unchanged,
    // for as long as it lives, and the `AsyncFd` owns the logger.
    let mut fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logs, tokio::io::Interest::READABLE)
    }?;
    loop {
        let mut guard = fd.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
