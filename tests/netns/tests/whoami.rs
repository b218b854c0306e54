//! The demo app: `whoami` in one node's namespace answers another node with
//! its hostname, its addresses and the client address it saw.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, TcpStream},
    time::Duration,
};

use shoal_netns_tests::{
    World, eventually, process::DaemonProcess, require_privileges, step, world::bin_dir,
};

/// Two GETs on one keep-alive connection to `server:8080`, from the calling
/// namespace; returns both bodies.
fn two_requests(server: Ipv4Addr) -> Result<[String; 2], String> {
    let stream = TcpStream::connect_timeout(&(server, 8080).into(), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let mut bodies = [String::new(), String::new()];
    for body in &mut bodies {
        writer
            .write_all(b"GET /hello HTTP/1.1\r\nHost: web\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad length {line:?}"))?;
            }
        }
        let mut bytes = vec![0; length];
        reader.read_exact(&mut bytes).map_err(|e| e.to_string())?;
        *body = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    }
    Ok(bodies)
}

#[test]
fn whoami_reports_its_host_and_the_client_address() {
    require_privileges!();
    let world = World::new("whoami", 2);
    let log = world.node(1).log_path().with_file_name("whoami.log");
    let _server = DaemonProcess::spawn(
        &bin_dir().join("whoami"),
        &["--port".to_owned(), "8080".to_owned()],
        &world.node(1).netns().path(),
        "web-1",
        &log,
    );
    step("GET twice on one keep-alive connection from node-2");
    let server = world.node(1).addr();
    let bodies = eventually("whoami to answer", Duration::from_secs(10), || {
        world.node(2).netns().run(move || two_requests(server))
    });
    for body in &bodies {
        assert!(body.contains("Hostname: web-1\n"), "{body}");
        assert!(body.contains("IP: 198.18.0.1\n"), "{body}");
        assert!(
            body.contains("RemoteAddr: 198.18.0.2:"),
            "the client's own address: {body}"
        );
        assert!(body.contains("GET /hello HTTP/1.1"), "{body}");
    }
}
