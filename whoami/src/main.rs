//! `whoami`, the demo app of the seeds (as traefik/whoami): an HTTP server
//! that answers every request with its hostname, its IP addresses and the
//! client address it saw, so tests and operators can tell which backend
//! answered and whether the client's source IP survived the path.
//!
//! Plain std networking, one thread per connection, no dependencies beyond
//! nix: it links statically and runs in a busybox image. `whoami --get
//! IP[:PORT]` is its client, for probes from inside a task.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
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
}

const USAGE: &str = "usage: whoami [--port N] | whoami --get IP[:PORT]";

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

/// One `GET /` to `addr`; the response body, if the status is 200.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer)
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(body.to_owned())
    } else {
        Err(head.lines().next().unwrap_or_default().to_owned())
    }
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
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{text}",
            text.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )?;
        writer.flush()?;
        if !keep_alive {
            return Ok(());
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
        assert!(mode(args(&["--bogus"]), None).is_err());
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
