//! `runc` with the node's own state root (`runc --root <data>/runc`), and
//! the task shim that starts a container and outlives the agent.
//!
//! The shim (`shoald task-shim …`, run in its own session) is to a
//! container what containerd's shim is: it makes itself a child subreaper,
//! runs `runc run --detach` with the container's stdout and stderr on pipes
//! it copies to the task's log ([`super::logs`]), waits for the container's init process (which is
//! reparented to it) and writes its exit status to `exit.json`. So the agent
//! can crash and restart at any time: the container keeps running, and its
//! exit status is never lost.

use std::{
    fs,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::logs;

/// The `runc` binary (Debian's package puts it on the PATH).
const RUNC: &str = "runc";
/// How long the shim waits for a finished container's last log lines.
const LOG_DRAIN: Duration = Duration::from_secs(1);

/// How a container ended, as the shim recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status; 128 + N when killed by signal N; `None` when it
    /// never started.
    pub exit_code: Option<i64>,
    /// Why it did not start (runc's error), empty otherwise.
    pub error: String,
}

/// What runc failed at.
#[derive(Debug, thiserror::Error)]
#[error("runc {op}: {message}")]
pub struct RuncError {
    op: String,
    message: String,
}

/// The node's runc state root.
#[derive(Clone, Debug)]
pub struct Runc {
    root: PathBuf,
}

/// One container `runc list` knows.
#[derive(Clone, Debug, Deserialize)]
pub struct ContainerState {
    /// The container ID (the task ID).
    pub id: String,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// Its init process, 0 once stopped.
    pub pid: i64,
}

impl Runc {
    /// runc with state under `root`.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(RUNC);
        command.arg("--root").arg(&self.root);
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    async fn output(&self, op: &str, args: &[&str]) -> Result<Vec<u8>, RuncError> {
        let output = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(|e| RuncError {
                op: op.to_owned(),
                message: e.to_string(),
            })?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(RuncError {
                op: op.to_owned(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Every container under the root.
    pub async fn list(&self) -> Result<Vec<ContainerState>, RuncError> {
        let out = self.output("list", &["list", "--format", "json"]).await?;
        if out.iter().all(u8::is_ascii_whitespace) || out.starts_with(b"null") {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&out).map_err(|e| RuncError {
            op: "list".into(),
            message: e.to_string(),
        })
    }

    /// Sends `signal` (`TERM`, `KILL`, …) to the container's init.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), RuncError> {
        self.output("kill", &["kill", id, signal]).await.map(drop)
    }

    /// Removes the container, killing it first if it still runs.
    pub async fn delete(&self, id: &str) -> Result<(), RuncError> {
        match self.output("delete", &["delete", "--force", id]).await {
            Err(e) if e.message.contains("does not exist") => Ok(()),
            other => other.map(drop),
        }
    }

    /// Runs `args` in the container and returns whether it exited 0 within
    /// `timeout` (a check that runs longer is killed and fails).
    pub async fn exec_succeeds(&self, id: &str, args: &[String], timeout: Duration) -> bool {
        let mut command = self.command();
        command
            .args(["exec", id])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(mut child) = command.spawn() else {
            return false;
        };
        if let Ok(Ok(status)) = tokio::time::timeout(timeout, child.wait()).await {
            status.success()
        } else {
            let _ = child.kill().await;
            false
        }
    }

    /// Starts the container of `bundle` under a detached shim (this
    /// executable, re-run as `task-shim`); returns once the shim runs.
    pub fn start_with_shim(
        &self,
        shim_program: &Path,
        id: &str,
        bundle: &Path,
        log: &Path,
        exit_file: &Path,
    ) -> std::io::Result<()> {
        let mut command = std::process::Command::new(shim_program);
        command
            .arg("task-shim")
            .arg("--runc-root")
            .arg(&self.root)
            .arg("--bundle")
            .arg(bundle)
            .arg("--id")
            .arg(id)
            .arg("--log")
            .arg(log)
            .arg("--exit-file")
            .arg(exit_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own session: the shim survives the agent and its signals.
            .process_group(0);
        let mut child = command.spawn()?;
        // Reap the shim when it ends, so it leaves no zombie behind.
        std::thread::spawn(move || child.wait());
        Ok(())
    }
}

/// Reads the shim's record, if the container ended.
#[must_use]
pub fn read_exit(exit_file: &Path) -> Option<ExitRecord> {
    serde_json::from_slice(&fs::read(exit_file).ok()?).ok()
}

/// The arguments of `shoald task-shim`.
#[derive(Clone, Debug)]
pub struct ShimArgs {
    /// runc's state root.
    pub runc_root: PathBuf,
    /// The OCI bundle.
    pub bundle: PathBuf,
    /// The container ID.
    pub id: String,
    /// The file the container's stdout and stderr append to.
    pub log: PathBuf,
    /// Where to write the [`ExitRecord`].
    pub exit_file: PathBuf,
}

/// The shim's body: start the container, wait for it, record how it ended.
/// Returns the shim's own exit status.
#[must_use]
pub fn run_shim(args: &ShimArgs) -> i32 {
    // SAFETY: setsid and prctl take no pointers; failure is harmless here
    // (the shim was already started in its own process group).
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let record = match start_and_wait(args) {
        Ok(code) => ExitRecord {
            exit_code: Some(code),
            error: String::new(),
        },
        Err(error) => ExitRecord {
            exit_code: None,
            error,
        },
    };
    match write_exit(&args.exit_file, &record) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn start_and_wait(args: &ShimArgs) -> Result<i64, String> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
        .map_err(|e| format!("opening the log {}: {e}", args.log.display()))?;
    let log = Arc::new(Mutex::new(log));
    let (stdout_reader, stdout_writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let (stderr_reader, stderr_writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let capture = [
        logs::capture(stdout_reader, false, Arc::clone(&log)),
        logs::capture(stderr_reader, true, log),
    ];
    let pid_file = args.bundle.join("init.pid");
    let runc_log = args.bundle.join("runc.log");
    let status = std::process::Command::new(RUNC)
        .arg("--root")
        .arg(&args.runc_root)
        .arg("--log")
        .arg(&runc_log)
        .arg("--log-format")
        .arg("json")
        .args(["run", "--detach", "--pid-file"])
        .arg(&pid_file)
        .arg("--bundle")
        .arg(&args.bundle)
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(stdout_writer)
        .stderr(stderr_writer)
        .status()
        .map_err(|e| format!("starting runc: {e}"))?;
    if !status.success() {
        return Err(runc_error(&runc_log));
    }
    let pid: i32 = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| "runc wrote no pid file".to_owned())?;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a local.
        let reaped = unsafe { libc::waitpid(-1, &raw mut status, 0) };
        if reaped == pid {
            // The pipes close with the container's last process; wait a
            // little for its last lines (a daemonised child may keep them).
            let deadline = std::time::Instant::now() + LOG_DRAIN;
            for thread in capture {
                while !thread.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            return Ok(if libc::WIFEXITED(status) {
                i64::from(libc::WEXITSTATUS(status))
            } else {
                128 + i64::from(libc::WTERMSIG(status))
            });
        }
        if reaped < 0 {
            // No children left: the init was not ours after all.
            return Err("lost track of the container's process".to_owned());
        }
    }
}

/// The last error runc logged, or a generic message.
fn runc_error(runc_log: &Path) -> String {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    fs::read_to_string(runc_log)
        .unwrap_or_default()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .find(|l| l.level == "error")
        .map_or_else(
            || "runc failed to start the container".to_owned(),
            |l| l.msg,
        )
}

fn write_exit(path: &Path, record: &ExitRecord) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    fs::rename(tmp, path)
}
