//! Go-style durations as docker's flags take them (`5s`, `1.5s`, `100ms`,
//! `2160h0m0s`), in nanoseconds, and Go's `time.Duration` text for showing
//! them back (`1m30s`, `1.5µs`).

use std::fmt::Write as _;

/// Parses a Go duration into nanoseconds: unsigned decimal numbers, each
/// with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`); `0` alone is zero.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid duration {text:?}: use e.g. 5s, 100ms or 2160h0m0s");
    if text == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let whole = &rest[..int_len];
        rest = &rest[int_len..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .ok_or_else(invalid)?;
            fraction = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        let value: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        // Go keeps fraction digits only as far as they matter: nine suffice
        // for any unit down to nanoseconds.
        let digits = &fraction[..fraction.len().min(9)];
        let part = if digits.is_empty() {
            0
        } else {
            let numerator: u128 = digits.parse().map_err(|_| invalid())?;
            let denominator = 10u128.pow(u32::try_from(digits.len()).map_err(|_| invalid())?);
            u64::try_from(numerator * u128::from(scale) / denominator).map_err(|_| invalid())?
        };
        total = value
            .checked_mul(scale)
            .and_then(|v| v.checked_add(part))
            .and_then(|v| total.checked_add(v))
            .ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Go's `time.Duration.String()`: `0s`, `1.5µs`, `100ms`, `1m30s`,
/// `2h0m0s`.
pub fn format_go_duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u == 0 {
        return "0s".to_owned();
    }
    if u < 1_000_000_000 {
        let (unit, precision) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        return format!("{sign}{}{unit}", with_fraction(u, precision));
    }
    let seconds = with_fraction(u % 60_000_000_000, 9);
    let minutes = u / 60_000_000_000;
    let mut out = sign.to_owned();
    if minutes >= 60 {
        let _ = write!(out, "{}h", minutes / 60);
    }
    if minutes > 0 {
        let _ = write!(out, "{}m", minutes % 60);
    }
    let _ = write!(out, "{seconds}s");
    out
}

/// `value / 10^precision` with its fraction's trailing zeros (and a bare
/// point) left off.
fn with_fraction(value: u64, precision: u32) -> String {
    let divisor = 10u64.pow(precision);
    let whole = value / divisor;
    let fraction = value % divisor;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::{format_go_duration, parse_go_duration};

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_go_duration("2160h0m0s"), Ok(2160 * 3_600_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration(".5h"), Ok(1_800_000_000_000));
        assert_eq!(parse_go_duration("1.000000001s"), Ok(1_000_000_001));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration(".s").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("-5s").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn go_duration_text() {
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(4), "4ns");
        assert_eq!(format_go_duration(1_500), "1.5µs");
        assert_eq!(format_go_duration(100_000_000), "100ms");
        assert_eq!(format_go_duration(5_000_000_000), "5s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(90_000_000_000), "1m30s");
        assert_eq!(format_go_duration(2160 * 3_600_000_000_000), "2160h0m0s");
        assert_eq!(format_go_duration(3_661_000_000_001), "1h1m1.000000001s");
        assert_eq!(format_go_duration(-5_000_000_000), "-5s");
    }
}
