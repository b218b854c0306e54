//! Waiting on conditions instead of sleeping.

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, every 20 ms up to `timeout`.
///
/// # Panics
/// When the timeout passes, naming `what` and the last observation from
/// `describe`.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
