//! End-to-end: `shoald` refuses to start where it could not run tasks, and
//! says what to do. Under `ip netns exec`, which remounts `/sys` in a mount
//! namespace of its own, no cgroup hierarchy is visible: every task would
//! fail in runc ("no cgroup mount found in mountinfo").

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use shoal_netns_tests::{eventually, netns::NetNs, require_privileges, world::bin_dir};

/// A child that is killed (by PID) if the test ends while it runs.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn shoald_under_ip_netns_exec_refuses_to_start_without_cgroups() {
    require_privileges!();
    let prefix = format!("shoal-prereq-{}", std::process::id());
    let netns = NetNs::new(&prefix);
    let dir = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .expect("creating the test's directory");
    let socket = dir.path().join("shoald.sock");
    let mut shoald = Guard(
        Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .arg(bin_dir().join("shoald"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--socket")
            .arg(&socket)
            .args(["--advertise-addr", "198.18.0.1", "--underlay-iface", "lo"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting shoald under ip netns exec"),
    );
    let status = eventually("shoald to refuse to start", Duration::from_secs(20), || {
        shoald
            .0
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "still running".to_owned())
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(shoald.0.stderr.as_mut().expect("piped stderr"), &mut stderr)
        .expect("reading shoald's stderr");
    assert!(!status.success(), "shoald exited with {status}: {stderr}");
    assert!(
        stderr.contains("no cgroup hierarchy is visible")
            && stderr.contains("nsenter --net=/run/netns/NAME"),
        "the refusal says why and what to do: {stderr}"
    );
    assert!(!socket.exists(), "nothing served");
}
