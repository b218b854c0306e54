//! The tasks' DNS (DESIGN.md §4, "DNS"): a resolver in each overlay task's
//! network namespace at `127.0.0.11:53`, over UDP and TCP, as Docker's
//! embedded DNS server.
//!
//! It answers from the managers' [`Directory`], and only with what the
//! asking task's networks hold:
//!
//! - `<service>` and its aliases: the service's VIP on that network, or the
//!   addresses of its running tasks when it has no VIP there (`dnsrr`);
//! - `tasks.<service>` (and `tasks.<alias>`): the addresses of the
//!   service's running tasks on that network;
//! - a swarm name the task's networks do not share, and any single-label
//!   name: `NXDOMAIN`;
//! - anything else: forwarded, as it came, to the node's own resolvers
//!   (from the node's `/etc/resolv.conf`; the forwarding sockets live in the
//!   node's namespace, so even a loopback resolver such as systemd's works);
//!   `SERVFAIL` when none answers.
//!
//! Swarm answers are `A` records with the configured TTL (other types of a
//! swarm name get an empty answer), their order rotated per query so clients
//! that take the first address spread over `dnsrr` tasks. The sockets are
//! made by a thread that joins the task's namespace (a socket stays in the
//! namespace it was made in) and served from the agent's runtime; a
//! [`TaskResolver`] stops serving when dropped.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::fd::AsRawFd,
    path::Path,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, ResponseCode},
    rr::{RData, Record, RecordType, rdata::A},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::watch,
    task::{JoinHandle, JoinSet},
};
use tracing::debug;

use crate::desired::Directory;

/// Where a task's resolver listens, as Docker's.
pub const RESOLVER_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// The DNS port.
const DNS_PORT: u16 = 53;
/// The most upstream resolvers tried, as the C library's `MAXNS`.
const MAX_UPSTREAMS: usize = 3;
/// How long one upstream resolver may take to answer: short enough that a
/// client retrying after 5 s (the C library's default) still gets our
/// `SERVFAIL` from the first try.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a client's TCP connection may sit idle.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// A UDP answer's size limit without EDNS (RFC 1035).
const UDP_CLASSIC_LIMIT: usize = 512;
/// A UDP answer's size limit with EDNS (the DNS flag day's 1232 bytes).
const UDP_EDNS_LIMIT: u16 = 1232;
/// The largest request read from UDP.
const MAX_REQUEST: usize = 4096;
/// The most UDP queries (and, apart, TCP connections) a task's resolver
/// handles at once; beyond, queries are dropped (clients retry), so a task
/// cannot make the agent hold sockets without bound.
const MAX_IN_FLIGHT: usize = 256;

/// The swarm's names per network: lower-case name → (VNI → addresses).
type Index = HashMap<String, BTreeMap<u32, Vec<Ipv4Addr>>>;

/// The node's DNS: the swarm's names as the managers announce them, the
/// answers' TTL and the node's upstream resolvers; shared by every task's
/// resolver.
#[derive(Debug)]
pub struct Dns {
    ttl: u32,
    upstreams: Vec<SocketAddr>,
    index: RwLock<Arc<Index>>,
    rotation: AtomicUsize,
}

impl Dns {
    /// Answers with `ttl` seconds and forwards to `upstreams`.
    #[must_use]
    pub fn new(ttl: u32, upstreams: Vec<SocketAddr>) -> Self {
        Self {
            ttl,
            upstreams,
            index: RwLock::new(Arc::new(Index::new())),
            rotation: AtomicUsize::new(0),
        }
    }

    /// Answers from `directory` from now on.
    pub fn update(&self, directory: &Directory) {
        let index = Arc::new(index(directory));
        match self.index.write() {
            Ok(mut current) => *current = index,
            Err(poisoned) => *poisoned.into_inner() = index,
        }
    }

    fn current(&self) -> Arc<Index> {
        match self.index.read() {
            Ok(index) => Arc::clone(&index),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Follows `directory` until `shutdown` (or its sender goes).
    pub async fn follow(
        self: Arc<Self>,
        mut directory: watch::Receiver<Directory>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            self.update(&directory.borrow_and_update());
            tokio::select! {
                changed = directory.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Starts serving the task whose namespace is at `netns` and whose
    /// networks are `vnis` (in the task's order: a name on several of them
    /// resolves on the first). Must run on the agent's runtime.
    pub fn serve(
        self: &Arc<Self>,
        netns: &Path,
        vnis: Vec<u32>,
    ) -> Result<TaskResolver, std::io::Error> {
        let (udp, tcp) = bind_in(netns)?;
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let vnis: Arc<[u32]> = vnis.into();
        Ok(TaskResolver {
            udp: tokio::spawn(serve_udp(Arc::clone(self), udp, Arc::clone(&vnis))),
            tcp: tokio::spawn(serve_tcp(Arc::clone(self), tcp, vnis)),
        })
    }

    /// The answer to `request` (a DNS message) from a task on `vnis`;
    /// `None` for what is not worth an answer. Over UDP, the answer fits
    /// the client's size (truncated otherwise, so it retries over TCP).
    async fn answer(&self, vnis: &[u32], request: &[u8], udp: bool) -> Option<Vec<u8>> {
        let Ok(message) = Message::from_vec(request) else {
            let id = u16::from_be_bytes([*request.first()?, *request.get(1)?]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        };
        if message.metadata.message_type != MessageType::Query {
            return None;
        }
        let response = match self.local(vnis, &message) {
            Some(response) => response,
            None => match self.forward(request, udp).await {
                Some(bytes) => return Some(bytes),
                None => reply_to(&message, ResponseCode::ServFail),
            },
        };
        let bytes = response.to_vec().ok()?;
        let limit = if message.edns.is_some() {
            usize::from(message.max_payload().clamp(512, UDP_EDNS_LIMIT))
        } else {
            UDP_CLASSIC_LIMIT
        };
        if udp && bytes.len() > limit {
            return response.truncate().to_vec().ok();
        }
        Some(bytes)
    }

    /// The answer from the swarm's names, or `None`: forward it.
    fn local(&self, vnis: &[u32], message: &Message) -> Option<Message> {
        if message.metadata.op_code != OpCode::Query || message.queries.len() != 1 {
            return Some(reply_to(message, ResponseCode::NotImp));
        }
        let query = &message.queries[0];
        let ascii = query.name().to_ascii().to_ascii_lowercase();
        let name = ascii.trim_end_matches('.');
        let index = self.current();
        let Some(networks) = index.get(name) else {
            return (!name.contains('.')).then(|| reply_to(message, ResponseCode::NXDomain));
        };
        let Some(addresses) = vnis
            .iter()
            .filter_map(|vni| networks.get(vni))
            .find(|addresses| !addresses.is_empty())
        else {
            return Some(reply_to(message, ResponseCode::NXDomain));
        };
        let mut response = reply_to(message, ResponseCode::NoError);
        response.metadata.authoritative = true;
        if query.query_type() == RecordType::A {
            let start = self.rotation.fetch_add(1, Ordering::Relaxed) % addresses.len();
            for addr in addresses[start..].iter().chain(&addresses[..start]) {
                response.add_answer(Record::from_rdata(
                    query.name().clone(),
                    self.ttl,
                    RData::A(A(*addr)),
                ));
            }
        }
        Some(response)
    }

    /// `request` sent as it is to the upstream resolvers in turn; the
    /// first answer.
    async fn forward(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        for upstream in self.upstreams.iter().take(MAX_UPSTREAMS) {
            let attempt = if udp {
                tokio::time::timeout(UPSTREAM_TIMEOUT, forward_udp(*upstream, request)).await
            } else {
                tokio::time::timeout(UPSTREAM_TIMEOUT, forward_tcp(*upstream, request)).await
            };
            match attempt {
                Ok(Ok(answer)) => return Some(answer),
                Ok(Err(error)) => debug!(%upstream, %error, "upstream resolver failed"),
                Err(_) => debug!(%upstream, "upstream resolver timed out"),
            }
        }
        None
    }
}

/// A response to `request` with `code` and its question.
fn reply_to(request: &Message, code: ResponseCode) -> Message {
    let mut response = Message::error_msg(request.metadata.id, request.metadata.op_code, code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_EDNS_LIMIT);
        response.set_edns(edns);
    }
    response
}

/// The names of `directory`, per network.
fn index(directory: &Directory) -> Index {
    // (service ID, VNI) → (service name, running task addresses).
    let mut tasks: BTreeMap<(&str, u32), (&str, Vec<Ipv4Addr>)> = BTreeMap::new();
    for endpoint in directory.endpoints.values() {
        let entry = tasks
            .entry((&endpoint.service_id, endpoint.vni))
            .or_insert_with(|| (&endpoint.service_name, Vec::new()));
        if endpoint.running {
            entry.1.push(endpoint.addr);
        }
    }
    let vips: BTreeMap<(&str, u32), _> = directory
        .vips
        .values()
        .map(|vip| ((vip.service_id.as_str(), vip.vni), vip))
        .collect();
    let mut index = Index::new();
    let mut add = |name: &str, vni: u32, addresses: &[Ipv4Addr]| {
        let entry = index
            .entry(name.to_ascii_lowercase())
            .or_default()
            .entry(vni)
            .or_default();
        entry.extend_from_slice(addresses);
        entry.sort_unstable();
        entry.dedup();
    };
    for (&(service_id, vni), (name, running)) in &tasks {
        add(&format!("tasks.{name}"), vni, running);
        match vips.get(&(service_id, vni)) {
            Some(vip) => {
                for alias in &vip.aliases {
                    add(&format!("tasks.{alias}"), vni, running);
                }
            }
            None => add(name, vni, running),
        }
    }
    for ((service_id, vni), vip) in &vips {
        for name in std::iter::once(&vip.service_name).chain(&vip.aliases) {
            add(name, *vni, &[vip.vip]);
        }
        if !tasks.contains_key(&(service_id, *vni)) {
            add(&format!("tasks.{}", vip.service_name), *vni, &[]);
        }
    }
    index
}

/// The `nameserver`s of a `resolv.conf`, on port 53; never our own
/// address (that would loop).
#[must_use]
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then(|| words.next())?
        })
        .filter_map(|addr| addr.split('%').next()?.parse::<IpAddr>().ok())
        .filter(|ip| *ip != IpAddr::V4(RESOLVER_ADDR))
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .collect()
}

/// The node's upstream resolvers: those of its `/etc/resolv.conf`, none
/// when it has none.
#[must_use]
pub fn node_upstreams() -> Vec<SocketAddr> {
    fs::read_to_string("/etc/resolv.conf")
        .map(|text| upstreams_from_resolv_conf(&text))
        .unwrap_or_default()
}

/// One task's resolver; dropping it stops it.
#[derive(Debug)]
pub struct TaskResolver {
    udp: JoinHandle<()>,
    tcp: JoinHandle<()>,
}

impl Drop for TaskResolver {
    fn drop(&mut self) {
        self.udp.abort();
        self.tcp.abort();
    }
}

/// The resolver's sockets, made in the namespace at `netns` by a thread
/// that joins it.
fn bind_in(netns: &Path) -> Result<(std::net::UdpSocket, std::net::TcpListener), std::io::Error> {
    let netns = fs::File::open(netns)?;
    std::thread::spawn(move || {
        // SAFETY: setns takes a valid namespace fd; it moves only this
        // thread, which ends after making the sockets.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let addr = SocketAddr::from((RESOLVER_ADDR, DNS_PORT));
        let udp = std::net::UdpSocket::bind(addr)?;
        udp.set_nonblocking(true)?;
        let tcp = std::net::TcpListener::bind(addr)?;
        tcp.set_nonblocking(true)?;
        Ok((udp, tcp))
    })
    .join()
    .map_err(|_| std::io::Error::other("the resolver's netns thread panicked"))?
}

async fn serve_udp(dns: Arc<Dns>, socket: Arc<UdpSocket>, vnis: Arc<[u32]>) {
    let mut queries = JoinSet::new();
    let mut buffer = vec![0; MAX_REQUEST];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            Some(_) = queries.join_next() => continue,
        };
        let (len, peer) = match received {
            Ok(received) => received,
            Err(error) => {
                debug!(%error, "task resolver: receiving");
                continue;
            }
        };
        if queries.len() >= MAX_IN_FLIGHT {
            continue;
        }
        let request = buffer[..len].to_vec();
        let (dns, socket, vnis) = (Arc::clone(&dns), Arc::clone(&socket), Arc::clone(&vnis));
        queries.spawn(async move {
            if let Some(answer) = dns.answer(&vnis, &request, true).await {
                let _ = socket.send_to(&answer, peer).await;
            }
        });
    }
}

async fn serve_tcp(dns: Arc<Dns>, listener: TcpListener, vnis: Arc<[u32]>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        match accepted {
            Ok((stream, _)) if connections.len() < MAX_IN_FLIGHT => {
                connections.spawn(serve_connection(
                    Arc::clone(&dns),
                    stream,
                    Arc::clone(&vnis),
                ));
            }
            Ok(_) => {} // too many: closed at once
            Err(error) => {
                debug!(%error, "task resolver: accepting");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers length-prefixed queries on one TCP connection until the client
/// closes it or leaves it idle.
async fn serve_connection(dns: Arc<Dns>, mut stream: TcpStream, vnis: Arc<[u32]>) {
    while let Ok(Ok(request)) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
        let Some(answer) = dns.answer(&vnis, &request, false).await else {
            return;
        };
        if write_framed(&mut stream, &answer).await.is_err() {
            return;
        }
    }
}

async fn read_framed(stream: &mut TcpStream) -> Result<Vec<u8>, std::io::Error> {
    let len = stream.read_u16().await?;
    let mut message = vec![0; usize::from(len)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> Result<(), std::io::Error> {
    let len = u16::try_from(message.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

async fn forward_udp(upstream: SocketAddr, request: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(request).await?;
    let mut buffer = vec![0; usize::from(u16::MAX)];
    loop {
        let len = socket.recv(&mut buffer).await?;
        // Only the answer to this query (same ID) counts.
        if len >= 2 && buffer[..2] == request[..2.min(request.len())] {
            buffer.truncate(len);
            return Ok(buffer);
        }
    }
}

async fn forward_tcp(upstream: SocketAddr, request: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_framed(&mut stream, request).await?;
    read_framed(&mut stream).await
}

#[cfg(test)]
mod tests {
    use hickory_proto::{op::Query, rr::Name};
    use shoal_api::service::{OverlayEndpoint, ServiceVip};

    use super::*;

    fn endpoint(service: &str, vni: u32, addr: [u8; 4], running: bool) -> OverlayEndpoint {
        OverlayEndpoint {
            vni,
            addr: addr.into(),
            node_id: "n1".into(),
            node_addr: Ipv4Addr::new(198, 18, 0, 1),
            task_id: format!("{service}-{addr:?}"),
            service_id: format!("id-{service}"),
            service_name: service.into(),
            running,
        }
    }

    fn vip(service: &str, vni: u32, addr: [u8; 4], aliases: &[&str]) -> ServiceVip {
        ServiceVip {
            service_id: format!("id-{service}"),
            service_name: service.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            vni,
            vip: addr.into(),
            ports: Vec::new(),
        }
    }

    fn directory() -> Directory {
        let mut directory = Directory::default();
        for e in [
            endpoint("web", 4096, [10, 0, 0, 3], true),
            endpoint("web", 4096, [10, 0, 0, 4], true),
            endpoint("web", 4096, [10, 0, 0, 5], false),
            endpoint("dnsweb", 4096, [10, 0, 0, 7], true),
            endpoint("dnsweb", 4096, [10, 0, 0, 8], true),
            endpoint("other", 4097, [10, 1, 0, 3], true),
        ] {
            directory.endpoints.insert(e.key(), e);
        }
        for v in [
            vip("web", 4096, [10, 0, 0, 2], &["www"]),
            vip("other", 4097, [10, 1, 0, 2], &[]),
        ] {
            directory.vips.insert(v.key(), v);
        }
        directory
    }

    fn query(name: &str, record_type: RecordType) -> Vec<u8> {
        let mut message = Message::new(7, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(
            Name::from_ascii(name).expect("a name"),
            record_type,
        ));
        message.to_vec().expect("encodes")
    }

    fn ask(dns: &Dns, vnis: &[u32], name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
        ask_type(dns, vnis, name, RecordType::A)
    }

    fn ask_type(
        dns: &Dns,
        vnis: &[u32],
        name: &str,
        record_type: RecordType,
    ) -> (ResponseCode, Vec<Ipv4Addr>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let answer = runtime
            .block_on(dns.answer(vnis, &query(name, record_type), true))
            .expect("an answer");
        let message = Message::from_vec(&answer).expect("decodes");
        assert_eq!(message.metadata.id, 7);
        let mut addresses: Vec<Ipv4Addr> = message
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => {
                    assert_eq!(r.ttl, 10);
                    Some(a.0)
                }
                _ => None,
            })
            .collect();
        addresses.sort_unstable();
        (message.metadata.response_code, addresses)
    }

    #[test]
    fn swarm_names_resolve_on_the_tasks_networks_only() {
        let dns = Dns::new(10, Vec::new());
        dns.update(&directory());
        let front = [4096];
        let ok = ResponseCode::NoError;
        let nx = ResponseCode::NXDomain;
        assert_eq!(
            ask(&dns, &front, "web"),
            (ok, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(
            ask(&dns, &front, "WWW."),
            (ok, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        let running_web = vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)];
        assert_eq!(ask(&dns, &front, "tasks.web"), (ok, running_web.clone()));
        assert_eq!(ask(&dns, &front, "tasks.www"), (ok, running_web));
        assert_eq!(
            ask(&dns, &front, "dnsweb"),
            (
                ok,
                vec![Ipv4Addr::new(10, 0, 0, 7), Ipv4Addr::new(10, 0, 0, 8)]
            )
        );
        assert_eq!(ask(&dns, &front, "other"), (nx, vec![]));
        assert_eq!(ask(&dns, &front, "tasks.other"), (nx, vec![]));
        assert_eq!(ask(&dns, &front, "nosuch"), (nx, vec![]));
        assert_eq!(
            ask_type(&dns, &front, "web", RecordType::AAAA),
            (ok, vec![])
        );
        assert_eq!(
            ask(&dns, &[4097, 4096], "other"),
            (ok, vec![Ipv4Addr::new(10, 1, 0, 2)])
        );
        // Nowhere to forward to: SERVFAIL, at once.
        assert_eq!(
            ask(&dns, &front, "example.com"),
            (ResponseCode::ServFail, vec![])
        );
    }

    #[test]
    fn answers_follow_the_directory() {
        let dns = Dns::new(10, Vec::new());
        let mut directory = directory();
        dns.update(&directory);
        directory
            .endpoints
            .retain(|_, e| e.addr != Ipv4Addr::new(10, 0, 0, 4));
        dns.update(&directory);
        assert_eq!(
            ask(&dns, &[4096], "tasks.web"),
            (ResponseCode::NoError, vec![Ipv4Addr::new(10, 0, 0, 3)])
        );
    }

    #[test]
    fn udp_answers_too_big_are_truncated_for_a_tcp_retry() {
        let mut directory = Directory::default();
        for last in 0..60 {
            let e = endpoint("big", 4096, [10, 0, 1, last], true);
            directory.endpoints.insert(e.key(), e);
        }
        let dns = Dns::new(10, Vec::new());
        dns.update(&directory);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let request = query("tasks.big", RecordType::A);
        let udp = runtime
            .block_on(dns.answer(&[4096], &request, true))
            .expect("an answer");
        let udp = Message::from_vec(&udp).expect("decodes");
        assert!(udp.metadata.truncation);
        assert!(udp.answers.is_empty());
        let tcp = runtime
            .block_on(dns.answer(&[4096], &request, false))
            .expect("an answer");
        let tcp = Message::from_vec(&tcp).expect("decodes");
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 60);
    }

    #[test]
    fn garbage_gets_formerr_and_nothing_for_nothing() {
        let dns = Dns::new(10, Vec::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let answer = runtime
            .block_on(dns.answer(&[], &[0x12, 0x34, 0xff], true))
            .expect("an answer");
        let message = Message::from_vec(&answer).expect("decodes");
        assert_eq!(message.metadata.id, 0x1234);
        assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
        assert!(runtime.block_on(dns.answer(&[], &[1], true)).is_none());
    }

    #[test]
    fn other_names_are_forwarded_over_udp_and_tcp() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            // A fake upstream on one port, UDP and TCP: it answers every
            // query with 192.0.2.1 and TTL 300.
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
            let port = udp.local_addr().expect("addr").port();
            let tcp = TcpListener::bind(("127.0.0.1", port)).await.expect("tcp");
            let upstream_answer = |request: &[u8]| {
                let request = Message::from_vec(request).expect("a query");
                let mut response = reply_to(&request, ResponseCode::NoError);
                response.add_answer(Record::from_rdata(
                    request.queries[0].name().clone(),
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                ));
                response.to_vec().expect("encodes")
            };
            tokio::spawn(async move {
                let mut buffer = vec![0; MAX_REQUEST];
                while let Ok((len, peer)) = udp.recv_from(&mut buffer).await {
                    // A stray datagram with another ID first: ignored.
                    let _ = udp.send_to(&[0xde, 0xad, 0, 0], peer).await;
                    let _ = udp.send_to(&upstream_answer(&buffer[..len]), peer).await;
                }
            });
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = tcp.accept().await {
                    let request = read_framed(&mut stream).await.expect("a query");
                    write_framed(&mut stream, &upstream_answer(&request))
                        .await
                        .expect("answered");
                }
            });
            // An unreachable upstream first: skipped for the next one.
            let dns = Dns::new(
                10,
                vec![
                    "127.0.0.1:1".parse().expect("addr"),
                    SocketAddr::from(([127, 0, 0, 1], port)),
                ],
            );
            dns.update(&directory());
            for udp in [true, false] {
                let answer = dns
                    .answer(&[4096], &query("example.com.", RecordType::A), udp)
                    .await
                    .expect("an answer");
                let message = Message::from_vec(&answer).expect("decodes");
                assert_eq!(message.metadata.id, 7);
                assert_eq!(message.answers.len(), 1, "udp {udp}: {message:?}");
                assert_eq!(message.answers[0].ttl, 300);
            }
            // Swarm names never leave the node.
            let answer = dns
                .answer(&[4096], &query("tasks.web", RecordType::A), true)
                .await
                .expect("an answer");
            let message = Message::from_vec(&answer).expect("decodes");
            assert_eq!(message.answers.len(), 2);
            assert_eq!(message.answers[0].ttl, 10);
        });
    }

    #[test]
    fn upstreams_come_from_resolv_conf() {
        let text = "# generated\nsearch example.com\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\n\
                    nameserver 127.0.0.11\nnameserver bogus\noptions ndots:2\n";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            vec![
                "10.0.0.53:53".parse::<SocketAddr>().expect("v4"),
                "[fe80::1]:53".parse().expect("v6"),
            ]
        );
    }
}
