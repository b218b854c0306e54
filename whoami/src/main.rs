//! `whoami`, the demo app of the seeds (as traefik/whoami): an HTTP server
//! that answers every request with its hostname, its IP addresses and the
//! client address it saw, so tests and operators can tell which backend
//! answered and whether the client's source IP survived the path.
//!
//! Plain std networking, one thread per connection, no dependencies beyond
//! nix: it links statically and runs in a busybox image. `whoami --get
//! IP[:PORT]` is its client, for probes from inside a task (it adds the
//! peer address its socket reports, `Peer: IP:PORT`, which a VIP
//! translated at the socket shows as the VIP), and `whoami
//! --resolve NAME [--server IP] [--tcp]` asks a DNS server (the task's
//! resolver, `127.0.0.11`, unless told) for `NAME`'s A records and prints
//! the response code, the TTL and the addresses (the static C library
//! cannot resolve names, so neither can busybox's tools).
//!
//! Probes and load for tests and benchmarks: `--udp-echo PORT` echoes UDP
//! datagrams; `--udp-probe IP:PORT --ip-size N` sends one datagram of `N`
//! bytes of IP packet with DF set and waits 2 s for its echo (a path MTU
//! check); `--sink PORT` accepts TCP connections and discards what they
//! send; `--blast IP:PORT --seconds N` writes to a sink as fast as it can
//! and prints the throughput; `--connect-rate IP:PORT --seconds N
//! [--threads T]` does connect, `GET /`, close in a loop and prints
//! connections per second.

use std::{
    fmt::Write as _,
    io::Read as _,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

/// What to do: serve, or fetch once as a client.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Serve on this port (`--port N`, else `$PORT`, else 80).
    Serve(u16),
    /// `--get IP[:PORT]`: one request to that address, the answer on
    /// stdout (a client for tests and probes in images without one: the
    /// static busybox's wget cannot run there).
    Get(SocketAddr),
    /// `--resolve NAME [--server IP] [--tcp]`: one A query.
    Resolve {
        /// The name asked for.
        name: String,
        /// The DNS server (port 53).
        server: IpAddr,
        /// Over TCP instead of UDP.
        tcp: bool,
    },
    /// `--udp-echo PORT`: send every UDP datagram back to its sender.
    UdpEcho(u16),
    /// `--udp-probe IP:PORT --ip-size N`: one DF datagram making an IP
    /// packet of `N` bytes, then its echo within 2 s.
    UdpProbe {
        /// The echo server.
        to: SocketAddr,
        /// The IP packet's total size (20 bytes of IP and 8 of UDP header
        /// included).
        ip_size: usize,
    },
    /// `--sink PORT`: accept TCP connections, discard what they send.
    Sink(u16),
    /// `--blast IP:PORT --seconds N`: write to a sink for `N` seconds.
    Blast(SocketAddr, u64),
    /// `--connect-rate IP:PORT --seconds N [--threads T]`: connect,
    /// request, close in a loop on `T` threads (1 unless told).
    ConnectRate {
        /// The HTTP server (a whoami).
        to: SocketAddr,
        /// How long.
        seconds: u64,
        /// Parallel loops.
        threads: usize,
    },
}

const USAGE: &str = "usage: whoami [--port N] | whoami --get IP[:PORT] | whoami --resolve NAME [--server IP] [--tcp]
       | whoami --udp-echo PORT                      echo UDP datagrams
       | whoami --udp-probe IP:PORT --ip-size N      one DF datagram of N bytes of IP packet; fails on EMSGSIZE or no echo in 2 s
       | whoami --sink PORT                          accept TCP, discard
       | whoami --blast IP:PORT --seconds N          write to a sink; prints bytes and Gbit/s
       | whoami --connect-rate IP:PORT --seconds N [--threads T]   connect+GET+close loop; prints connections/s";

/// The IPv4 and UDP headers' size: a datagram's payload is the IP size
/// less this.
const IP_UDP_HEADERS: usize = 28;

/// The value after `flag`, parsed.
fn value<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
    what: &str,
) -> Result<T, String> {
    let text = args.next().ok_or_else(|| format!("{flag} takes {what}"))?;
    text.parse()
        .map_err(|_| format!("{flag} takes {what}, not {text:?}"))
}

/// The task resolver's address, as Docker's.
const TASK_RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11));

fn mode(args: impl IntoIterator<Item = String>, env_port: Option<String>) -> Result<Mode, String> {
    let mut args = args.into_iter();
    let mut port = env_port;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next(),
            "--get" => {
                let target = args.next().ok_or(USAGE)?;
                let addr = target
                    .parse::<SocketAddr>()
                    .or_else(|_| {
                        target
                            .parse::<std::net::IpAddr>()
                            .map(|ip| SocketAddr::new(ip, 80))
                    })
                    .map_err(|_| format!("--get takes IP[:PORT], not {target:?}"))?;
                return Ok(Mode::Get(addr));
            }
            "--resolve" => {
                let name = args.next().ok_or(USAGE)?;
                let (mut server, mut tcp) = (TASK_RESOLVER, false);
                while let Some(arg) = args.next() {
                    match arg.as_str() {
                        "--server" => {
                            let ip = args.next().ok_or(USAGE)?;
                            server = ip
                                .parse()
                                .map_err(|_| format!("--server takes an IP, not {ip:?}"))?;
                        }
                        "--tcp" => tcp = true,
                        other => return Err(format!("unknown argument {other:?}; {USAGE}")),
                    }
                }
                return Ok(Mode::Resolve { name, server, tcp });
            }
            "--udp-echo" => return Ok(Mode::UdpEcho(value(&mut args, &arg, "a port")?)),
            "--sink" => return Ok(Mode::Sink(value(&mut args, &arg, "a port")?)),
            "--udp-probe" => {
                let to = value(&mut args, &arg, "IP:PORT")?;
                let mut ip_size = None;
                while let Some(arg) = args.next() {
                    match arg.as_str() {
                        "--ip-size" => ip_size = Some(value(&mut args, &arg, "a size")?),
                        other => return Err(format!("unknown argument {other:?}; {USAGE}")),
                    }
                }
                let ip_size = ip_size
                    .filter(|n| *n >= IP_UDP_HEADERS)
                    .ok_or("--udp-probe needs --ip-size N, N at least 28")?;
                return Ok(Mode::UdpProbe { to, ip_size });
            }
            "--blast" | "--connect-rate" => {
                let to = value(&mut args, &arg, "IP:PORT")?;
                let (mut seconds, mut threads) = (None, 1);
                while let Some(flag) = args.next() {
                    match flag.as_str() {
                        "--seconds" => seconds = Some(value(&mut args, &flag, "a number")?),
                        "--threads" if arg == "--connect-rate" => {
                            threads = value(&mut args, &flag, "a number")?;
                        }
                        other => return Err(format!("unknown argument {other:?}; {USAGE}")),
                    }
                }
                let seconds = seconds
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{arg} needs --seconds N, N > 0"))?;
                return Ok(if arg == "--blast" {
                    Mode::Blast(to, seconds)
                } else {
                    Mode::ConnectRate {
                        to,
                        seconds,
                        threads: threads.max(1),
                    }
                });
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    port.map_or(Ok(Mode::Serve(80)), |p| {
        p.parse()
            .map(Mode::Serve)
            .map_err(|_| format!("invalid port {p:?}"))
    })
}

/// One `GET /` to `addr`; the response body, if the status is 200, and
/// a last line `Peer: IP:PORT` with what `getpeername()` says of the
/// connection.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let peer = stream
        .peer_addr()
        .map_err(|e| format!("getpeername: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer)
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(format!("{}\nPeer: {peer}\n", body.trim_end()))
    } else {
        Err(head.lines().next().unwrap_or_default().to_owned())
    }
}

/// The response codes by number (RFC 1035, 4.1.1).
const RCODES: [&str; 6] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
];

/// A DNS query for `name`'s A records with `id`, recursion desired.
fn a_query(name: &str, id: u16) -> Result<Vec<u8>, String> {
    let mut query = id.to_be_bytes().to_vec();
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..64).contains(l))
            .ok_or_else(|| format!("not a DNS name: {name:?}"))?;
        query.push(len);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    Ok(query)
}

/// Reads the response to query `id`: `"<RCODE> ttl=<lowest TTL> <A>…"`.
fn parse_a_response(response: &[u8], id: u16) -> Result<String, String> {
    let short = || "a short DNS response".to_owned();
    let byte = |at: usize| response.get(at).copied().ok_or_else(short);
    let word = |at: usize| Ok::<_, String>(u16::from_be_bytes([byte(at)?, byte(at + 1)?]));
    if word(0)? != id {
        return Err("a response to another query".into());
    }
    let rcode = usize::from(byte(3)? & 0x0f);
    let mut out = RCODES
        .get(rcode)
        .map_or_else(|| format!("RCODE{rcode}"), |c| (*c).to_owned());
    if byte(2)? & 0x02 != 0 {
        out.push_str(" truncated");
    }
    let (questions, answers) = (word(4)?, word(6)?);
    // Skips a name (labels, ending at a zero or a compression pointer).
    let skip_name = |mut at: usize| -> Result<usize, String> {
        loop {
            let len = byte(at)?;
            if len == 0 {
                return Ok(at + 1);
            }
            if len & 0xc0 == 0xc0 {
                return Ok(at + 2);
            }
            at += 1 + usize::from(len);
        }
    };
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(at)? + 4;
    }
    let mut ttl = None::<u32>;
    let mut addresses = Vec::new();
    for _ in 0..answers {
        at = skip_name(at)?;
        let (record_type, len) = (word(at)?, usize::from(word(at + 8)?));
        let record_ttl = u32::from(word(at + 4)?) << 16 | u32::from(word(at + 6)?);
        let data = response.get(at + 10..at + 10 + len).ok_or_else(short)?;
        if let (1, Ok(octets)) = (record_type, <[u8; 4]>::try_from(data)) {
            addresses.push(Ipv4Addr::from(octets));
            ttl = Some(ttl.map_or(record_ttl, |t| t.min(record_ttl)));
        }
        at += 10 + len;
    }
    if let Some(ttl) = ttl {
        let _ = write!(out, " ttl={ttl}");
    }
    for addr in addresses {
        let _ = write!(out, " {addr}");
    }
    Ok(out)
}

/// One A query for `name` to `server`, over UDP (one retry) or TCP.
fn resolve(name: &str, server: IpAddr, tcp: bool) -> Result<String, String> {
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
    let query = a_query(name, id)?;
    let server = SocketAddr::new(server, 53);
    let timeout = Some(Duration::from_secs(3));
    let response = if tcp {
        let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(3))
            .map_err(|e| format!("connecting to {server}: {e}"))?;
        stream
            .set_read_timeout(timeout)
            .map_err(|e| e.to_string())?;
        let len = u16::try_from(query.len()).map_err(|e| e.to_string())?;
        stream
            .write_all(&[&len.to_be_bytes()[..], &query].concat())
            .map_err(|e| e.to_string())?;
        let mut len = [0; 2];
        stream
            .read_exact(&mut len)
            .map_err(|e| format!("reading from {server}: {e}"))?;
        let mut response = vec![0; usize::from(u16::from_be_bytes(len))];
        stream
            .read_exact(&mut response)
            .map_err(|e| format!("reading from {server}: {e}"))?;
        response
    } else {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(timeout)
            .map_err(|e| e.to_string())?;
        let mut buffer = vec![0; 65535];
        let mut received = Err(format!("no answer from {server}"));
        for _ in 0..2 {
            socket
                .send_to(&query, server)
                .map_err(|e| format!("sending to {server}: {e}"))?;
            if let Ok((len, _)) = socket.recv_from(&mut buffer) {
                received = Ok(buffer[..len].to_vec());
                break;
            }
        }
        received?
    };
    parse_a_response(&response, id)
}

/// Echoes every datagram on `port` to its sender, forever.
fn udp_echo(port: u16) -> Result<String, String> {
    let socket =
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).map_err(|e| format!("port {port}: {e}"))?;
    eprintln!("whoami: echoing UDP on port {port}");
    let mut buffer = vec![0; 65535];
    loop {
        let (len, from) = socket.recv_from(&mut buffer).map_err(|e| e.to_string())?;
        if let Err(e) = socket.send_to(&buffer[..len], from) {
            eprintln!("whoami: echo to {from}: {e}");
        }
    }
}

/// Sets `IP_MTU_DISCOVER` to `IP_PMTUDISC_DO`: DF on every datagram, and a
/// send larger than the path MTU fails with EMSGSIZE instead of being
/// fragmented.
fn set_dont_fragment(socket: &UdpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let value: nix::libc::c_int = nix::libc::IP_PMTUDISC_DO;
    // SAFETY: a valid socket descriptor, and a pointer to a c_int of the
    // length given, which the kernel only reads.
    let rc = unsafe {
        nix::libc::setsockopt(
            socket.as_raw_fd(),
            nix::libc::IPPROTO_IP,
            nix::libc::IP_MTU_DISCOVER,
            (&raw const value).cast(),
            nix::libc::socklen_t::try_from(size_of::<nix::libc::c_int>()).unwrap_or(4),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One DF datagram making an IP packet of `ip_size` bytes to `to`, then
/// its echo within 2 s.
fn udp_probe(to: SocketAddr, ip_size: usize) -> Result<String, String> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
    set_dont_fragment(&socket).map_err(|e| format!("setting DF: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let payload: Vec<u8> = (0..ip_size - IP_UDP_HEADERS)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    socket.send_to(&payload, to).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::EMSGSIZE) {
            format!(
                "an IP packet of {ip_size} bytes with DF does not fit the path MTU to {to}: {e}"
            )
        } else {
            format!("sending {ip_size} bytes to {to}: {e}")
        }
    })?;
    let mut buffer = vec![0; 65535];
    let (len, from) = socket.recv_from(&mut buffer).map_err(|e| {
        format!("no echo of {ip_size} bytes of IP packet from {to} within 2 s: {e}")
    })?;
    if buffer[..len] == payload[..] {
        Ok(format!(
            "echoed: {ip_size} bytes of IP packet with DF, {from}"
        ))
    } else {
        Err(format!("a different echo from {from}: {len} bytes"))
    }
}

/// Accepts TCP connections on `port` and discards what they send.
fn sink(port: u16) -> Result<String, String> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .map_err(|e| format!("port {port}: {e}"))?;
    eprintln!("whoami: sinking TCP on port {port}");
    for mut stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut buffer = vec![0; 1 << 18];
            while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
        });
    }
    Err("the listener failed".into())
}

/// Writes to the sink at `to` as fast as it can for `seconds`:
/// `"bytes=B seconds=S gbit_per_s=G"`.
fn blast(to: SocketAddr, seconds: u64) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))
        .map_err(|e| format!("connecting to {to}: {e}"))?;
    let buffer = vec![0x5a; 1 << 17];
    let start = std::time::Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        stream
            .write_all(&buffer)
            .map_err(|e| format!("writing to {to}: {e}"))?;
        bytes += buffer.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
    let gbits = bytes as f64 * 8.0 / elapsed / 1e9;
    Ok(format!(
        "bytes={bytes} seconds={elapsed:.3} gbit_per_s={gbits:.3}"
    ))
}

/// Connect, `GET /`, read to the end, close, in a loop on `threads`
/// threads for `seconds`: `"connections=C errors=E seconds=S per_second=R"`.
fn connect_rate(to: SocketAddr, seconds: u64, threads: usize) -> String {
    let start = std::time::Instant::now();
    let until = start + Duration::from_secs(seconds);
    let loops: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut done, mut errors) = (0u64, 0u64);
                while std::time::Instant::now() < until {
                    if get(to).is_ok() {
                        done += 1;
                    } else {
                        errors += 1;
                    }
                }
                (done, errors)
            })
        })
        .collect();
    let (done, errors) = loops
        .into_iter()
        .filter_map(|t| t.join().ok())
        .fold((0, 0), |(d, e), (d1, e1)| (d + d1, e + e1));
    let elapsed = start.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
    let rate = done as f64 / elapsed;
    format!("connections={done} errors={errors} seconds={elapsed:.3} per_second={rate:.1}")
}

/// The host's non-loopback addresses.
fn addresses() -> Vec<String> {
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| {
                    let addr = a.address?;
                    let ip = addr
                        .as_sockaddr_in()
                        .map(|s| s.ip().to_string())
                        .or_else(|| addr.as_sockaddr_in6().map(|s| s.ip().to_string()))?;
                    (a.interface_name != "lo").then_some(ip)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The answer body for a request `request_line` from `peer`.
fn body(hostname: &str, addresses: &[String], peer: SocketAddr, request_line: &str) -> String {
    let mut out = format!("Hostname: {hostname}\n");
    for ip in addresses {
        let _ = writeln!(out, "IP: {ip}");
    }
    let _ = write!(out, "RemoteAddr: {peer}\n{request_line}\n");
    out
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // The dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
    let peer = stream.peer_addr()?;
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut keep_alive = request_line.contains("HTTP/1.1");
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if lower.starts_with("connection:") {
                keep_alive = lower.contains("keep-alive");
            }
        }
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = body(&hostname, &addresses(), peer, request_line.trim_end());
        // One write per answer: `write!` to the socket would send each
        // formatted piece as its own segment, and Nagle's algorithm with
        // the client's delayed ACK would hold the last one ~40 ms on a
        // kept-alive connection.
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{text}",
            text.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        writer.write_all(answer.as_bytes())?;
        writer.flush()?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Prints an outcome: the answer on stdout, or the error on stderr and a
/// failure.
fn report(outcome: Result<String, String>) -> std::process::ExitCode {
    match outcome {
        Ok(answer) => {
            println!("{answer}");
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("whoami: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let port = match mode(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(Mode::Serve(port)) => port,
        Ok(Mode::Get(addr)) => {
            return match get(addr) {
                Ok(body) => {
                    print!("{body}");
                    std::process::ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("whoami: {message}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Ok(Mode::Resolve { name, server, tcp }) => {
            return match resolve(&name, server, tcp) {
                Ok(answer) => {
                    println!("{answer}");
                    std::process::ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("whoami: {message}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Ok(Mode::UdpEcho(port)) => return report(udp_echo(port)),
        Ok(Mode::UdpProbe { to, ip_size }) => return report(udp_probe(to, ip_size)),
        Ok(Mode::Sink(port)) => return report(sink(port)),
        Ok(Mode::Blast(to, seconds)) => return report(blast(to, seconds)),
        Ok(Mode::ConnectRate {
            to,
            seconds,
            threads,
        }) => return report(Ok(connect_rate(to, seconds, threads))),
        Err(message) => {
            eprintln!("whoami: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let listener =
        match TcpListener::bind(("::", port)).or_else(|_| TcpListener::bind(("0.0.0.0", port))) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("whoami: listening on port {port}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
    eprintln!("whoami: listening on port {port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("whoami: {e}");
            }
        });
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_choose_serve_or_get() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(mode(args(&[]), None), Ok(Mode::Serve(80)));
        assert_eq!(mode(args(&[]), Some("8080".into())), Ok(Mode::Serve(8080)));
        assert_eq!(
            mode(args(&["--port", "81"]), Some("8080".into())),
            Ok(Mode::Serve(81))
        );
        assert_eq!(
            mode(args(&["--get", "10.0.0.3"]), None),
            Ok(Mode::Get("10.0.0.3:80".parse().expect("addr")))
        );
        assert_eq!(
            mode(args(&["--get", "10.0.0.3:8080"]), None),
            Ok(Mode::Get("10.0.0.3:8080".parse().expect("addr")))
        );
        assert!(mode(args(&["--get", "web"]), None).is_err());
        assert_eq!(
            mode(args(&["--resolve", "tasks.web"]), None),
            Ok(Mode::Resolve {
                name: "tasks.web".into(),
                server: TASK_RESOLVER,
                tcp: false
            })
        );
        assert_eq!(
            mode(
                args(&["--resolve", "web", "--server", "10.0.0.1", "--tcp"]),
                None
            ),
            Ok(Mode::Resolve {
                name: "web".into(),
                server: "10.0.0.1".parse().expect("ip"),
                tcp: true
            })
        );
        assert!(mode(args(&["--bogus"]), None).is_err());
        assert_eq!(mode(args(&["--udp-echo", "7"]), None), Ok(Mode::UdpEcho(7)));
        assert_eq!(
            mode(
                args(&["--udp-probe", "10.0.0.3:7", "--ip-size", "1450"]),
                None
            ),
            Ok(Mode::UdpProbe {
                to: "10.0.0.3:7".parse().expect("addr"),
                ip_size: 1450
            })
        );
        assert!(mode(args(&["--udp-probe", "10.0.0.3:7"]), None).is_err());
        assert!(
            mode(
                args(&["--udp-probe", "10.0.0.3:7", "--ip-size", "27"]),
                None
            )
            .is_err()
        );
        assert_eq!(mode(args(&["--sink", "5001"]), None), Ok(Mode::Sink(5001)));
        assert_eq!(
            mode(args(&["--blast", "10.0.0.3:5001", "--seconds", "3"]), None),
            Ok(Mode::Blast("10.0.0.3:5001".parse().expect("addr"), 3))
        );
        assert!(mode(args(&["--blast", "10.0.0.3:5001", "--threads", "2"]), None).is_err());
        assert_eq!(
            mode(
                args(&[
                    "--connect-rate",
                    "10.0.0.2:80",
                    "--seconds",
                    "2",
                    "--threads",
                    "4"
                ]),
                None
            ),
            Ok(Mode::ConnectRate {
                to: "10.0.0.2:80".parse().expect("addr"),
                seconds: 2,
                threads: 4
            })
        );
    }

    #[test]
    fn a_df_probe_gets_its_echo_and_an_oversized_one_fails() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("socket");
        let port = server.local_addr().expect("addr").port();
        drop(server);
        std::thread::spawn(move || udp_echo(port));
        let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let answer = eventually_ok(|| udp_probe(to, 1400));
        assert!(answer.starts_with("echoed: 1400 bytes"), "{answer}");
        // Loopback's MTU is 65536: a larger IP packet cannot be sent.
        let error = udp_probe(to, 65536 + 1).expect_err("too big");
        assert!(error.contains("bytes"), "{error}");
    }

    /// `f`'s first success within a second (the server thread starts).
    fn eventually_ok(mut f: impl FnMut() -> Result<String, String>) -> String {
        let mut last = Err(String::new());
        for _ in 0..10 {
            last = f();
            if last.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last.expect("a success within a second")
    }

    #[test]
    fn blast_and_connect_rate_measure_local_servers() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        std::thread::spawn(move || sink(port));
        let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let answer = eventually_ok(|| blast(to, 1));
        assert!(answer.starts_with("bytes="), "{answer}");
        assert!(answer.contains("gbit_per_s="), "{answer}");
        let server = TcpListener::bind("127.0.0.1:0").expect("listener");
        let to = server.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in server.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        let answer = connect_rate(to, 1, 2);
        let connections: u64 = answer
            .split_whitespace()
            .find_map(|f| f.strip_prefix("connections="))
            .and_then(|n| n.parse().ok())
            .expect("a count");
        assert!(connections > 0, "{answer}");
        assert!(answer.contains("errors=0"), "{answer}");
    }

    #[test]
    fn get_reads_a_served_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            serve(stream).expect("serve");
        });
        let body = get(addr).expect("an answer");
        server.join().expect("server");
        assert!(body.contains("RemoteAddr: 127.0.0.1:"), "{body}");
        assert!(body.contains("GET / HTTP/1.0"), "{body}");
    }

    #[test]
    fn dns_queries_and_answers_round_trip() {
        let query = a_query("tasks.web", 0x4242).expect("a query");
        assert_eq!(&query[..4], &[0x42, 0x42, 0x01, 0x00]);
        assert_eq!(&query[12..], b"\x05tasks\x03web\x00\x00\x01\x00\x01");
        // The answer: the header (NOERROR, 1 question, 2 answers), the
        // question, then two A records named by a pointer to it.
        let mut response = vec![0x42, 0x42, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        response.extend_from_slice(&query[12..]);
        for (ttl, last) in [(10u8, 3u8), (7, 4)] {
            response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, ttl, 0, 4, 10, 0, 0, last]);
        }
        assert_eq!(
            parse_a_response(&response, 0x4242),
            Ok("NOERROR ttl=7 10.0.0.3 10.0.0.4".into())
        );
        let mut nxdomain = response[..12].to_vec();
        nxdomain[3] = 0x83;
        nxdomain[5] = 0;
        nxdomain[7] = 0;
        assert_eq!(parse_a_response(&nxdomain, 0x4242), Ok("NXDOMAIN".into()));
        assert!(parse_a_response(&response, 1).is_err());
        assert!(parse_a_response(&response[..20], 0x4242).is_err());
        assert!(a_query("a..b", 1).is_err());
    }

    #[test]
    fn body_names_host_addresses_and_client() {
        let text = body(
            "task-1",
            &["10.0.0.5".into()],
            "198.18.0.9:41000".parse().expect("addr"),
            "GET / HTTP/1.1",
        );
        assert_eq!(
            text,
            "Hostname: task-1\nIP: 10.0.0.5\nRemoteAddr: 198.18.0.9:41000\nGET / HTTP/1.1\n"
        );
    }
}
