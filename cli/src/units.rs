//! Docker's units, as its CLI reads and writes them: memory sizes (`64M`,
//! `1g`, `512MiB`) and CPU counts (`1.5`, `3/2`) for `--limit-*` and
//! `--reserve-*`, sizes shown back in binary units (`64MiB`), and the
//! approximate ages of `docker service ps` (`About a minute`), following
//! `github.com/docker/go-units` and the CLI's `opts.NanoCPUs`.

use std::time::Duration;

/// Parses a memory size into bytes like docker's `RAMInBytes`: a decimal
/// number, an optional space, then an optional `k`, `m`, `g`, `t` or `p`
/// (powers of 1024) with an optional `b` or `ib`, any case.
pub fn parse_ram_bytes(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let suffix = suffix
        .strip_prefix(' ')
        .unwrap_or(suffix)
        .to_ascii_lowercase();
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier: f64 = match suffix.as_bytes() {
        [] | [b'b'] => 1.0,
        [unit] | [unit, b'b'] | [unit, b'i', b'b'] => match unit {
            b'k' => 1024.0,
            b'm' => 1024.0 * 1024.0,
            b'g' => 1024.0 * 1024.0 * 1024.0,
            b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => return Err(format!("invalid suffix: '{suffix}'")),
        },
        _ => return Err(format!("invalid suffix: '{suffix}'")),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= 9.2e18 {
        return Err(invalid());
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked finite and in range; Go truncates too"
    )]
    Ok(bytes as i64)
}

/// Parses a CPU count into billionths of a CPU like docker's `NanoCPUs`:
/// a decimal (`0.5`, `2`) or a ratio (`3/2`), exact to the nanoCPU.
pub fn parse_nano_cpus(text: &str) -> Result<i64, String> {
    let invalid = || format!("failed to parse {text} as a rational number");
    let (numerator, denominator) = if let Some((n, d)) = text.split_once('/') {
        let n = integer(n).ok_or_else(invalid)?;
        let d = integer(d).filter(|&d| d != 0).ok_or_else(invalid)?;
        (n, d)
    } else {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let digits = format!("{whole}{fraction}");
        let n = integer(&digits).ok_or_else(invalid)?;
        let exponent = u32::try_from(fraction.len()).map_err(|_| invalid())?;
        (n, 10u128.checked_pow(exponent).ok_or_else(invalid)?)
    };
    let nano = numerator.checked_mul(1_000_000_000).ok_or_else(invalid)?;
    if nano % denominator != 0 {
        return Err("value is too precise".to_owned());
    }
    i64::try_from(nano / denominator).map_err(|_| invalid())
}

/// Unsigned decimal digits (at most 30 of them) as a number.
fn integer(digits: &str) -> Option<u128> {
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A byte count in binary units with four significant digits, like docker's
/// `units.BytesSize`: `512B`, `64MiB`, `1.5GiB`.
pub fn bytes_size(bytes: i64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    #[expect(clippy::cast_precision_loss, reason = "an approximation, as docker's")]
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", four_significant(size), UNITS[unit])
}

/// Go's `%.4g` for the values [`bytes_size`] prints (below 10 000).
fn four_significant(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    #[expect(clippy::cast_possible_truncation, reason = "a small exponent")]
    let exponent = value.abs().log10().floor() as i32;
    let decimals = usize::try_from(3 - exponent).unwrap_or(0);
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// How long ago, roughly, like docker's `units.HumanDuration`: `Less than
/// a second`, `1 second`, `About a minute`, `5 minutes`, `About an hour`,
/// `3 hours`, `2 days`, `3 weeks`, `4 months`, `2 years`.
pub fn human_duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    let minutes = seconds / 60;
    // Go rounds the hours to the nearest.
    let hours = (elapsed.as_secs_f64() / 3600.0).round();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative, small"
    )]
    let hours = hours as u64;
    match () {
        () if seconds < 1 => "Less than a second".to_owned(),
        () if seconds == 1 => "1 second".to_owned(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".to_owned(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".to_owned(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_like_ram_in_bytes() {
        assert_eq!(parse_ram_bytes("64M"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_ram_bytes("1g"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_ram_bytes("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_ram_bytes("1.5kb"), Ok(1536));
        assert_eq!(parse_ram_bytes("10 KB"), Ok(10_240));
        assert_eq!(parse_ram_bytes("1024"), Ok(1024));
        assert_eq!(parse_ram_bytes("7b"), Ok(7));
        assert_eq!(
            parse_ram_bytes("64x"),
            Err("invalid suffix: 'x'".to_owned())
        );
        assert_eq!(
            parse_ram_bytes("64mbb"),
            Err("invalid suffix: 'mbb'".to_owned())
        );
        assert_eq!(
            parse_ram_bytes("-1m"),
            Err("invalid size: '-1m'".to_owned())
        );
        assert_eq!(parse_ram_bytes("m"), Err("invalid size: 'm'".to_owned()));
        assert!(parse_ram_bytes("").is_err());
    }

    #[test]
    fn cpus_like_nano_cpus() {
        assert_eq!(parse_nano_cpus("1"), Ok(1_000_000_000));
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus(".25"), Ok(250_000_000));
        assert_eq!(parse_nano_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_nano_cpus("0.000000001"), Ok(1));
        assert_eq!(
            parse_nano_cpus("0.0000000001"),
            Err("value is too precise".to_owned())
        );
        assert_eq!(
            parse_nano_cpus("abc"),
            Err("failed to parse abc as a rational number".to_owned())
        );
        assert!(parse_nano_cpus("-1").is_err());
        assert!(parse_nano_cpus("1/0").is_err());
        assert!(parse_nano_cpus(".").is_err());
    }

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(64 * 1024 * 1024), "64MiB");
        assert_eq!(bytes_size(1536 * 1024 * 1024), "1.5GiB");
        assert_eq!(bytes_size(10 * 1024 * 1024 + 1), "10MiB");
        assert_eq!(bytes_size(1023 * 1024 + 1000), "1024KiB");
    }

    #[test]
    fn ages_like_human_duration() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(5)), "5 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(5 * 60)), "5 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3 * 3600)), "3 hours");
        assert_eq!(human_duration(s(3 * 86_400)), "3 days");
        assert_eq!(human_duration(s(21 * 86_400)), "3 weeks");
        assert_eq!(human_duration(s(120 * 86_400)), "4 months");
        assert_eq!(human_duration(s(800 * 86_400)), "2 years");
    }
}
