//! `cargo xtask demo-image`: the root filesystem tarball of the image the
//! demo and the tests run (DESIGN.md §6), `target/shoal/demo-image.tar`:
//! Debian's static busybox with its applet links in `/bin`, the workspace's
//! `whoami` linked statically at `/usr/local/bin/whoami`, `/etc/passwd` and
//! `/etc/group` with root and nobody, and a sticky `/tmp`. Import it with
//! `shoal image import --change 'CMD ["/usr/local/bin/whoami"]' <tarball>
//! whoami:latest` (the test harness's `Node::import_demo_image` does).
//!
//! Its tarball writer ([`write_tarball`], from [`Entry`]s) also writes the
//! benchmarks' nginx image (`bench_shared::nginx`).

use std::{
    fs::File,
    io::{BufWriter, Read as _, Write as _},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cargo, run_command, workspace_root};

/// Debian's `busybox-static` installs it here.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked in `/bin` (all in Debian's static busybox).
const APPLETS: &[&str] = &[
    "[",
    "ash",
    "awk",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "free",
    "grep",
    "gunzip",
    "gzip",
    "head",
    "hostname",
    "id",
    "ifconfig",
    "ip",
    "kill",
    "killall",
    "less",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mount",
    "mv",
    "nc",
    "netstat",
    "nproc",
    "nslookup",
    "pidof",
    "ping",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "rm",
    "rmdir",
    "route",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "tail",
    "tar",
    "tee",
    "test",
    "timeout",
    "top",
    "touch",
    "tr",
    "true",
    "umount",
    "uname",
    "uniq",
    "uptime",
    "usleep",
    "vi",
    "wc",
    "wget",
    "which",
    "xargs",
    "yes",
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\n";

/// The cargo target directory (`$CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Where the tarball is written; the netns harness looks for it there.
pub fn tarball_path() -> PathBuf {
    target_dir().join("shoal/demo-image.tar")
}

/// Builds the tarball; returns its path.
pub fn run() -> Result<PathBuf> {
    let whoami = build_static_whoami()?;
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} not found: install busybox-static (`cargo xtask setup` does)");
    }
    let listed = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("running {BUSYBOX} --list"))?;
    let listed = String::from_utf8_lossy(&listed.stdout);
    let missing: Vec<&str> = APPLETS
        .iter()
        .filter(|a| !listed.lines().any(|l| l == **a))
        .copied()
        .collect();
    if !missing.is_empty() {
        bail!("{BUSYBOX} lacks the applets {missing:?}");
    }
    let path = tarball_path();
    println!("==> building the demo image {}", path.display());
    let (busybox, whoami) = (read(Path::new(BUSYBOX))?, read(&whoami)?);
    write_tarball(&path, &demo_rootfs(&busybox, &whoami))?;
    Ok(path)
}

/// One entry of a root filesystem tarball (owned by root, mtime 0).
#[derive(Debug, Clone)]
pub enum Entry<'a> {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        body: &'a [u8],
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl Entry<'_> {
    fn path(&self) -> &str {
        match self {
            Self::Dir { path, .. } | Self::File { path, .. } | Self::Symlink { path, .. } => path,
        }
    }
}

/// Writes `entries` as a tarball at `path` (through a temporary file
/// renamed into place, so a reader never sees half of one).
pub fn write_tarball(path: &Path, entries: &[Entry<'_>]) -> Result<()> {
    let dir = path.parent().context("the tarball has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tar.tmp");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut writer = write_rootfs(BufWriter::new(file), entries)
        .with_context(|| format!("writing {}", tmp.display()))?;
    writer
        .flush()
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(writer);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The demo image's entries: the directories, busybox and its applet
/// links, whoami, the users.
fn demo_rootfs<'a>(busybox: &'a [u8], whoami: &'a [u8]) -> Vec<Entry<'a>> {
    let dirs = [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr/local/bin", 0o755),
    ]
    .map(|(path, mode)| Entry::Dir {
        path: path.to_owned(),
        mode,
    });
    let files = [
        ("bin/busybox", 0o755, busybox),
        ("usr/local/bin/whoami", 0o755, whoami),
        ("etc/passwd", 0o644, PASSWD.as_bytes()),
        ("etc/group", 0o644, GROUP.as_bytes()),
    ]
    .map(|(path, mode, body)| Entry::File {
        path: path.to_owned(),
        mode,
        body,
    });
    let links = APPLETS.iter().map(|applet| Entry::Symlink {
        path: format!("bin/{applet}"),
        target: "busybox".to_owned(),
    });
    dirs.into_iter().chain(files).chain(links).collect()
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// Builds `whoami` linked statically (`+crt-static`: glibc's static-pie),
/// for the host in its own target subdirectory so the workspace's normal
/// build is untouched; returns the binary.
fn build_static_whoami() -> Result<PathBuf> {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    println!("==> building whoami (static, {triple})");
    run_command(
        cargo()
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args([
                "build",
                "--release",
                "-p",
                "shoal-whoami",
                "--target",
                &triple,
            ]),
    )?;
    let binary = target_dir().join(&triple).join("release/whoami");
    if has_interpreter(&read(&binary)?)? {
        bail!("{} is dynamically linked", binary.display());
    }
    Ok(binary)
}

/// Whether the 64-bit little-endian ELF `image` names a program
/// interpreter (`PT_INTERP`), that is, needs a dynamic loader.
fn has_interpreter(image: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let field = |offset: usize, len: usize| {
        image
            .get(offset..offset + len)
            .context("truncated ELF file")
    };
    if field(0, 6)? != b"\x7fELF\x02\x01" {
        bail!("not a 64-bit little-endian ELF file");
    }
    let u16_at = |offset| -> Result<usize> {
        Ok(usize::from(u16::from_le_bytes(
            field(offset, 2)?.try_into()?,
        )))
    };
    let phoff = usize::try_from(u64::from_le_bytes(field(0x20, 8)?.try_into()?))?;
    let (phentsize, phnum) = (u16_at(0x36)?, u16_at(0x38)?);
    for index in 0..phnum {
        let kind = u32::from_le_bytes(field(phoff + index * phentsize, 4)?.try_into()?);
        if kind == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes `entries` as a tar stream, each after its parent directories
/// (those not listed come first, mode 755); returns the writer.
fn write_rootfs<W: std::io::Write>(writer: W, entries: &[Entry<'_>]) -> Result<W> {
    let mut tar = tar::Builder::new(writer);
    let header = |kind: tar::EntryType, mode: u32, size: usize| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    };
    let mut written = std::collections::BTreeSet::new();
    for entry in entries {
        let path = entry.path();
        let parents = path
            .match_indices('/')
            .map(|(end, _)| &path[..end])
            .filter(|parent| !written.contains(*parent))
            .collect::<Vec<_>>();
        for parent in parents {
            tar.append_data(
                &mut header(tar::EntryType::Directory, 0o755, 0),
                parent,
                std::io::empty(),
            )?;
            written.insert(parent.to_owned());
        }
        match entry {
            Entry::Dir { mode, .. } => tar.append_data(
                &mut header(tar::EntryType::Directory, *mode, 0),
                path,
                std::io::empty(),
            )?,
            Entry::File { mode, body, .. } => tar.append_data(
                &mut header(tar::EntryType::Regular, *mode, body.len()),
                path,
                *body,
            )?,
            Entry::Symlink { target, .. } => {
                tar.append_link(&mut header(tar::EntryType::Symlink, 0o777, 0), path, target)?;
            }
        }
        written.insert(path.to_owned());
    }
    Ok(tar.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootfs_has_busybox_links_whoami_and_users() {
        let tar = write_rootfs(Vec::new(), &demo_rootfs(b"busybox!", b"whoami!")).expect("rootfs");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut seen = std::collections::BTreeMap::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let link = entry
                .link_name()
                .expect("link")
                .map(|l| l.display().to_string());
            let mode = entry.header().mode().expect("mode");
            let mut body = String::new();
            entry.read_to_string(&mut body).expect("body");
            seen.insert(path, (mode, link, body));
        }
        for applet in ["sh", "ls", "cat", "wget", "nc", "ip", "test", "["] {
            assert_eq!(seen[&format!("bin/{applet}")].1.as_deref(), Some("busybox"));
        }
        assert_eq!(seen["bin/busybox"].2, "busybox!");
        assert_eq!(
            seen["usr/local/bin/whoami"],
            (0o755, None, "whoami!".into())
        );
        assert_eq!(seen["tmp"].0, 0o1777);
        assert_eq!(seen["usr/local"].0, 0o755, "unlisted parents are made");
        assert!(seen["etc/passwd"].2.contains("nobody:x:65534:65534:"));
        assert!(seen["etc/group"].2.contains("nobody:x:65534:"));
    }

    #[test]
    fn parents_come_before_their_entries_once() {
        let entries = [
            Entry::File {
                path: "lib/x86_64-linux-gnu/libc.so.6".into(),
                mode: 0o644,
                body: b"libc",
            },
            Entry::File {
                path: "lib/x86_64-linux-gnu/libz.so.1".into(),
                mode: 0o644,
                body: b"libz",
            },
            Entry::Dir {
                path: "tmp".into(),
                mode: 0o1777,
            },
        ];
        let tar = write_rootfs(Vec::new(), &entries).expect("rootfs");
        let mut archive = tar::Archive::new(tar.as_slice());
        let paths: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            paths,
            [
                "lib",
                "lib/x86_64-linux-gnu",
                "lib/x86_64-linux-gnu/libc.so.6",
                "lib/x86_64-linux-gnu/libz.so.1",
                "tmp"
            ]
        );
    }

    /// A 64-bit ELF header followed by program headers of `kinds`.
    fn elf(kinds: &[u32]) -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        let count = u16::try_from(kinds.len()).expect("few headers");
        elf[0x38..0x3a].copy_from_slice(&count.to_le_bytes());
        for kind in kinds {
            let mut header = [0u8; 56];
            header[..4].copy_from_slice(&kind.to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf
    }

    #[test]
    fn dynamic_executables_are_told_apart() {
        assert!(has_interpreter(&elf(&[6, 3, 1])).expect("ELF"));
        assert!(!has_interpreter(&elf(&[6, 1, 1])).expect("ELF"));
        let myself = read(&std::env::current_exe().expect("exe")).expect("read");
        assert!(
            has_interpreter(&myself).expect("ELF"),
            "test binaries are dynamic"
        );
        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
        let mut truncated = elf(&[1, 3]);
        truncated.truncate(100);
        assert!(has_interpreter(&truncated).is_err());
    }
}
