//! Task logs: what a container writes to stdout and stderr, one JSON line
//! per line written (like Docker's `json-file` driver: the text, the
//! stream, the time), in the task's `container.log`.
//!
//! The task shim owns the writing end ([`capture`]): it gives the container
//! pipes and copies each line with its time. The agent reads the file for
//! `service logs` ([`read`]): the last `tail` entries, then, when
//! following, whatever is appended until the task ends.

use std::{
    fs,
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

/// One line a container wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the shim read it (Unix ns).
    #[serde(rename = "t")]
    pub time_unix_ns: i64,
    /// Written to stderr (else stdout).
    #[serde(rename = "e", default, skip_serializing_if = "std::ops::Not::not")]
    pub stderr: bool,
    /// The line, with its newline when it had one.
    #[serde(rename = "l")]
    pub line: String,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Copies what arrives on `pipe` into `log` line by line, as entries of
/// `stderr`'s stream, until the pipe closes. Runs on its own thread.
pub fn capture(
    pipe: impl Read + Send + 'static,
    stderr: bool,
    log: Arc<Mutex<fs::File>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let entry = LogEntry {
                time_unix_ns: now_ns(),
                stderr,
                line: String::from_utf8_lossy(&buf).into_owned(),
            };
            let Ok(mut json) = serde_json::to_vec(&entry) else {
                continue;
            };
            json.push(b'\n');
            if let Ok(mut file) = log.lock() {
                let _ = file.write_all(&json);
            }
        }
    })
}

/// Reads a task's log: the last `tail` entries (all when `None`), then, if
/// `follow`, new entries as they are appended, until `keep_following`
/// says stop. Each entry goes to `emit`; `emit` returning `false` stops.
pub fn read(
    path: &Path,
    tail: Option<usize>,
    follow: bool,
    keep_following: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(LogEntry) -> bool,
) -> std::io::Result<()> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => wait_for(path, keep_following)?,
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let entries: Vec<LogEntry> = text[..complete]
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    for entry in entries.into_iter().skip(skip) {
        if !emit(entry) {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    let mut offset = u64::try_from(complete).unwrap_or(0);
    let mut pending = String::new();
    loop {
        file.seek(SeekFrom::Start(offset))?;
        let mut more = String::new();
        let read = file.read_to_string(&mut more)?;
        offset += u64::try_from(read).unwrap_or(0);
        pending.push_str(&more);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if let Ok(entry) = serde_json::from_str(&line)
                && !emit(entry)
            {
                return Ok(());
            }
        }
        if read == 0 {
            if !keep_following() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn wait_for(path: &Path, keep_following: &dyn Fn() -> bool) -> std::io::Result<fs::File> {
    let path: PathBuf = path.to_owned();
    loop {
        match fs::File::open(&path) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && keep_following() => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_lines_read_back_with_tail_and_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("container.log");
        let file = Arc::new(Mutex::new(fs::File::create(&path).expect("log")));
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let thread = capture(reader, true, Arc::clone(&file));
        writer.write_all(b"one\ntwo\nthree").expect("write");
        drop(writer);
        thread.join().expect("capture thread");

        let mut all = Vec::new();
        read(&path, None, false, &|| false, &mut |e| {
            all.push(e);
            true
        })
        .expect("read");
        let lines: Vec<&str> = all.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["one\n", "two\n", "three"]);
        assert!(all.iter().all(|e| e.stderr && e.time_unix_ns > 0));

        let mut last = Vec::new();
        read(&path, Some(1), false, &|| false, &mut |e| {
            last.push(e.line);
            true
        })
        .expect("tail");
        assert_eq!(last, ["three"]);

        // Follow: an entry appended later arrives, then following stops.
        let appended = std::thread::spawn({
            let file = Arc::clone(&file);
            move || {
                std::thread::sleep(Duration::from_millis(150));
                let entry = LogEntry {
                    time_unix_ns: 1,
                    stderr: false,
                    line: "four\n".into(),
                };
                let mut json = serde_json::to_vec(&entry).expect("json");
                json.push(b'\n');
                file.lock().expect("lock").write_all(&json).expect("append");
            }
        });
        let mut followed = Vec::new();
        read(&path, Some(0), true, &|| true, &mut |e| {
            followed.push(e.line);
            false
        })
        .expect("follow");
        appended.join().expect("appender");
        assert_eq!(followed, ["four\n"]);
    }
}
