//! A `shoald` process started inside a node's namespaces, killed on drop.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sched::{CloneFlags, setns, unshare},
    sys::{
        prctl::set_pdeathsig,
        signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask},
    },
    unistd::{Pid, sethostname, setpgid},
};

/// A running daemon. Dropping it sends SIGTERM, then SIGKILL after 10 s.
#[derive(Debug)]
pub struct DaemonProcess {
    child: Option<Child>,
}

impl DaemonProcess {
    /// Starts `program args…` inside the network namespace at `netns_path`,
    /// in a new UTS namespace with `hostname`, output appended to `log`.
    /// The mount namespace is the caller's, so bpffs pins are shared with the
    /// host (which `ip netns exec` would hide by remounting `/sys`). The
    /// daemon gets its own process group and an empty signal mask: a Ctrl-C
    /// in the terminal reaches the harness, which stops daemons in order.
    ///
    /// # Panics
    /// When the process cannot be spawned.
    #[must_use]
    pub fn spawn(
        program: &Path,
        args: &[String],
        netns_path: &str,
        hostname: &str,
        log: &Path,
    ) -> Self {
        let netns = File::open(netns_path).unwrap_or_else(|e| panic!("opening {netns_path}: {e}"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("opening log");
        let err = out.try_clone().expect("cloning log handle");
        let hostname = hostname.to_owned();
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("NO_COLOR", "1");
        // SAFETY: the closure only makes async-signal-safe system calls
        // (setns, unshare, sethostname, setpgid, prctl, sigprocmask) between
        // fork and exec.
        unsafe {
            command.pre_exec(move || {
                setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
                // Stop (and clean up) when the harness dies without its guards running.
                set_pdeathsig(Signal::SIGTERM)?;
                sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
                setns(&netns, CloneFlags::CLONE_NEWNET)?;
                unshare(CloneFlags::CLONE_NEWUTS)?;
                sethostname(&hostname)?;
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        Self { child: Some(child) }
    }

    /// Whether the process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Sends `signal` and waits up to `timeout` for the exit; SIGKILL after.
    /// Returns whether it exited on its own within the timeout.
    ///
    /// # Panics
    /// When the PID does not fit an `i32` (never on Linux).
    pub fn stop(&mut self, signal: Signal, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = kill(pid, signal);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.stop(Signal::SIGTERM, Duration::from_secs(10));
    }
}
