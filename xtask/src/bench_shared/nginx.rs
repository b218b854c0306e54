//! The benchmarks' backend: Debian's nginx with 2 workers answering
//! every request with `200` and a one-line body, `<client> <server>` (the
//! client address it saw, so a bench can tell whether the source address
//! was kept, and the address it was reached at, so it can tell which
//! backends answered). The same config everywhere: in a lab namespace
//! ([`start_in`]) and in the image shoal's tasks run ([`image`],
//! [`import`]), built from the host's `/usr/sbin/nginx` and the libraries
//! `ldd` names. nginx only ever runs in namespaces a bench made.

use std::{
    net::SocketAddrV4,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use shoal_netns_tests::{World, client::Host};

use super::{Background, checked};
use crate::{
    demo_image::{BUSYBOX, Entry, read, target_dir, write_tarball},
    interrupt,
};

/// Debian's nginx.
const NGINX: &str = "/usr/sbin/nginx";
/// The image's reference on the nodes.
pub const IMAGE: &str = "nginx:latest";
/// The port nginx listens on.
pub const PORT: u16 = 80;
/// Where the image keeps the config, and nginx's prefix there (its pid
/// file and temporary directories, relative to it in the config).
const IMAGE_CONFIG: &str = "etc/nginx/nginx.conf";
const IMAGE_PREFIX: &str = "var/lib/nginx";
/// The image's users: nginx's workers run as `nobody:nogroup`, as on the
/// host.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
/// How long a path may take to answer its first request.
const FIRST_ANSWER: Duration = Duration::from_secs(30);
/// Requests sent one by one after the first answer, to show who answers.
const PROBES: usize = 6;

/// nginx's config: 2 workers, no logs, keep-alive connections kept for
/// the whole run (nginx closes one after 1000 requests by default), the
/// answer; paths relative to the prefix (`-p`).
fn config() -> String {
    format!(
        "worker_processes 2;
daemon off;
user nobody nogroup;
pid nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    server {{
        listen {PORT};
        location / {{
            return 200 \"$remote_addr $server_addr\\n\";
        }}
    }}
}}
"
    )
}

/// nginx's arguments: its prefix and config, errors to stderr (not the
/// log file Debian compiled in).
fn arguments(prefix: &str, config: &str) -> [String; 6] {
    [
        "-p".into(),
        prefix.into(),
        "-c".into(),
        config.into(),
        "-e".into(),
        "stderr".into(),
    ]
}

/// Starts nginx in `host`'s namespace, its prefix and config in `dir`
/// (made here); stopped when the returned guard drops.
pub fn start_in(host: &Host, dir: &Path) -> Result<Background> {
    if !Path::new(NGINX).is_file() {
        bail!("{NGINX} is missing: run cargo xtask setup");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_file = dir.join("nginx.conf");
    std::fs::write(&config_file, config()).context("writing nginx's config")?;
    let log = std::fs::File::create(dir.join("nginx.log")).context("nginx's log")?;
    let child = host
        .command(NGINX)
        .args(arguments(
            &format!("{}/", dir.display()),
            &config_file.display().to_string(),
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting nginx")?;
    Ok(Background(child))
}

/// Builds the image's root filesystem tarball (`shoal/nginx-image.tar`
/// in the target directory): nginx and every library `ldd` names at the
/// same paths, the config, the users, the prefix and `/tmp`, and
/// busybox's `sh` and `ip` (the harness reads a task's address with
/// `runc exec … ip`).
pub fn image() -> Result<PathBuf> {
    let listed = checked(Command::new("ldd").arg(NGINX)).with_context(|| {
        format!("listing the libraries of {NGINX} (cargo xtask setup installs nginx)")
    })?;
    let libraries = shared_libraries(&listed);
    if libraries.is_empty() || listed.contains("not found") {
        bail!("ldd could not name every library of {NGINX}: {listed}");
    }
    let mut bodies = vec![
        (NGINX.to_owned(), read(Path::new(NGINX))?),
        (BUSYBOX.to_owned(), read(Path::new(BUSYBOX))?),
    ];
    for library in libraries {
        let body = read(Path::new(&library))?;
        bodies.push((library, body));
    }
    let config = config();
    let mut entries = vec![
        Entry::Dir {
            path: IMAGE_PREFIX.to_owned(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "tmp".to_owned(),
            mode: 0o1777,
        },
        Entry::File {
            path: IMAGE_CONFIG.to_owned(),
            mode: 0o644,
            body: config.as_bytes(),
        },
        Entry::File {
            path: "etc/passwd".to_owned(),
            mode: 0o644,
            body: PASSWD.as_bytes(),
        },
        Entry::File {
            path: "etc/group".to_owned(),
            mode: 0o644,
            body: GROUP.as_bytes(),
        },
    ];
    entries.extend(bodies.iter().map(|(path, body)| Entry::File {
        path: path.trim_start_matches('/').to_owned(),
        mode: 0o755,
        body,
    }));
    entries.extend(["sh", "ip"].map(|applet| Entry::Symlink {
        path: format!("bin/{applet}"),
        target: "busybox".to_owned(),
    }));
    let path = target_dir().join("shoal/nginx-image.tar");
    write_tarball(&path, &entries)?;
    Ok(path)
}

/// Imports the image ([`image`]'s tarball) as [`IMAGE`] on every node of
/// `world`, its command nginx with the image's prefix and config, a
/// `PATH` for `runc exec`.
pub fn import(world: &World, tarball: &Path) {
    let [p, prefix, c, config, e, stderr] =
        arguments(&format!("/{IMAGE_PREFIX}/"), &format!("/{IMAGE_CONFIG}"));
    let command =
        format!(r#"CMD ["{NGINX}", "{p}", "{prefix}", "{c}", "{config}", "{e}", "{stderr}"]"#);
    let path = "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    for node in world.nodes() {
        node.import_image(tarball, &[&command, path], IMAGE);
    }
}

/// One `GET /` from the namespace at `netns` to `target`: nginx's body.
pub fn get_from(netns: &str, target: SocketAddrV4) -> Result<String, String> {
    shoal_netns_tests::netns::run_in(netns, move || {
        shoal_netns_tests::client::http_get(target, Duration::from_secs(2))
    })
}

/// Waits for a first answer of `get` (one `GET /` to nginx, from the
/// client), then asks [`PROBES`] more: the client addresses the backends
/// saw and the addresses they were reached at, as a line for the table.
pub fn probe(get: &dyn Fn() -> Result<String, String>) -> Result<String, String> {
    let deadline = Instant::now() + FIRST_ANSWER;
    let mut answers = vec![loop {
        match get() {
            Ok(answer) => break answer,
            Err(error) if Instant::now() > deadline || interrupt::interrupted() => {
                return Err(format!("no answer within {FIRST_ANSWER:?}: {error}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }];
    answers.extend((0..PROBES).filter_map(|_| get().ok()));
    Ok(who_answered(&answers))
}

/// `client <addresses> from <n> backends (<addresses>) in <m> answers`,
/// from nginx's `<client> <server>` answers.
fn who_answered(answers: &[String]) -> String {
    let (mut clients, mut servers) = (Vec::new(), Vec::new());
    for answer in answers {
        let mut words = answer.split_whitespace();
        for (seen, word) in [(&mut clients, words.next()), (&mut servers, words.next())] {
            let word = word.unwrap_or("?").to_owned();
            if !seen.contains(&word) {
                seen.push(word);
            }
        }
    }
    format!(
        "client {} from {} backend{} ({}) in {} answers",
        clients.join(" "),
        servers.len(),
        if servers.len() == 1 { "" } else { "s" },
        servers.join(" "),
        answers.len()
    )
}

/// The libraries an `ldd` listing names by absolute path: `name => path
/// (address)` lines and the loader's own `path (address)` (the vDSO has
/// no file).
fn shared_libraries(ldd: &str) -> Vec<String> {
    ldd.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = line.split_once("=>").map_or(line, |(_, path)| path.trim());
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{config, shared_libraries, who_answered};

    #[test]
    fn answers_tell_the_client_address_and_the_backends() {
        let answers = [
            "198.18.1.1 10.0.0.5\n",
            "198.18.1.1 10.0.0.6\n",
            "198.18.1.1 10.0.0.5\n",
        ]
        .map(String::from);
        assert_eq!(
            who_answered(&answers),
            "client 198.18.1.1 from 2 backends (10.0.0.5 10.0.0.6) in 3 answers"
        );
    }

    #[test]
    fn ldd_listings_give_the_library_paths() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd5a7e5000)
\tlibcrypt.so.1 => /lib/x86_64-linux-gnu/libcrypt.so.1 (0x00007fd2f2133000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fd2f181e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fd2f22d6000)
";
        assert_eq!(
            shared_libraries(ldd),
            [
                "/lib/x86_64-linux-gnu/libcrypt.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert!(shared_libraries("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn the_config_answers_with_both_addresses_on_two_workers() {
        let config = config();
        assert!(config.contains("worker_processes 2;"));
        assert!(config.contains("return 200 \"$remote_addr $server_addr\\n\";"));
        assert!(config.contains("listen 80;"));
    }
}
