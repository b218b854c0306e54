//! `whoami`, the demo app of the seeds (as traefik/whoami): an HTTP server
//! that answers every request with its hostname, its IP addresses and the
//! client address it saw, so tests and operators can tell which backend
//! answered and whether the client's source IP survived the path.
//!
//! Plain std networking, one thread per connection, no dependencies beyond
//! nix: it links statically and runs in a busybox image.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

/// Where to listen: `--port N`, else `$PORT`, else 80.
fn port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = std::env::var("PORT").ok();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next(),
            "-h" | "--help" => {
                println!("usage: whoami [--port N]   (default $PORT or 80)");
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: whoami [--port N]"
                ));
            }
        }
    }
    port.map_or(Ok(80), |p| {
        p.parse().map_err(|_| format!("invalid port {p:?}"))
    })
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
    let port = match port() {
        Ok(port) => port,
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
