//! Text encodings of the PKI: base36 (join tokens, CA digests), PEM
//! (certificates handed to operators and stored in Raft) and hex (serial
//! numbers).
//!
//! Base36 is what Go's `big.Int.Text(36)` writes: the bytes read as one
//! unsigned big-endian integer, written most significant digit first with
//! the alphabet `0-9a-z`, left-padded with `0` to a fixed width. Docker's
//! join tokens carry the CA digest (32 bytes, 50 digits) and the secret
//! (16 bytes, 25 digits) this way.

use std::fmt::Write as _;

/// The base36 digits, value 0 to 35.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The standard base64 alphabet (RFC 4648 §4), used by PEM.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` (big-endian unsigned) in base36, left-padded with `0` to
/// at least `width` characters. A width too small for the value is not an
/// error: the result is then longer (callers use widths that always fit).
pub(crate) fn base36_encode(bytes: &[u8], width: usize) -> String {
    // Repeated division of the big-endian number by 36; digits come out
    // least significant first.
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::with_capacity(width);
    while !number.is_empty() {
        let mut remainder: u32 = 0;
        let mut quotient = Vec::with_capacity(number.len());
        for byte in &number {
            let acc = (remainder << 8) | u32::from(*byte);
            let q = acc / 36;
            remainder = acc % 36;
            if !(quotient.is_empty() && q == 0) {
                // q < 256 because remainder < 36, so acc < 36 * 256.
                quotient.push(q.to_le_bytes()[0]);
            }
        }
        digits.push(ALPHABET[usize::from(remainder.to_le_bytes()[0])]);
        number = quotient;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.iter().rev().map(|d| char::from(*d)).collect()
}

/// Decodes exactly `s` (lower-case base36) into an `N`-byte big-endian
/// number. `None` if a character is outside `0-9a-z` or the value does not
/// fit in `N` bytes.
pub(crate) fn base36_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    for c in s.bytes() {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            _ => return None,
        };
        // out = out * 36 + digit, from the least significant byte up.
        let mut carry = u32::from(digit);
        for byte in out.iter_mut().rev() {
            let acc = u32::from(*byte) * 36 + carry;
            *byte = acc.to_le_bytes()[0];
            carry = acc >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(out)
}

/// Encodes `der` as one PEM section (RFC 7468): `-----BEGIN <label>-----`,
/// base64 in lines of 64 characters, `-----END <label>-----`, each line
/// ending in `\n`. The same bytes as rcgen's and OpenSSL's output.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                let sextet = (n >> (18 - 6 * i)) & 0x3f;
                b64.push(char::from(BASE64[usize::from(sextet.to_le_bytes()[0])]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    let _ = writeln!(out, "-----BEGIN {label}-----");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// Lower-case hex of `bytes`, two digits per byte, most significant first.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values() {
        assert_eq!(base36_encode(&[], 3), "000");
        assert_eq!(base36_encode(&[0, 0], 1), "0");
        assert_eq!(base36_encode(&[35], 1), "z");
        assert_eq!(base36_encode(&[36], 1), "10");
        assert_eq!(base36_encode(&[0x01, 0x00], 0), "74"); // 256 = 7*36 + 4
        assert_eq!(base36_decode::<2>("74"), Some([0x01, 0x00]));
        assert_eq!(base36_decode::<1>("73"), Some([255]));
        assert_eq!(base36_decode::<1>("74"), None);
        assert_eq!(base36_decode::<1>("A"), None);
    }

    #[test]
    fn extremes_fit_their_widths() {
        assert_eq!(base36_encode(&[0xff; 32], 0).len(), 50);
        assert_eq!(base36_encode(&[0xff; 16], 0).len(), 25);
        assert_eq!(base36_encode(&[0x00; 32], 50), "0".repeat(50));
    }

    #[test]
    fn round_trip() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i * 37 % 256).unwrap_or(0);
        }
        let s = base36_encode(&bytes, 50);
        assert_eq!(s.len(), 50);
        assert_eq!(base36_decode::<32>(&s), Some(bytes));
    }

    #[test]
    fn pem_matches_rcgen_and_parses_back() -> Result<(), Box<dyn std::error::Error>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;

        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["x".to_owned()])?.self_signed(&key)?;
        assert_eq!(pem_encode("CERTIFICATE", cert.der()), cert.pem());
        for len in 1..70 {
            let data: Vec<u8> = (0..len).map(|i| u8::try_from(i).unwrap_or(0)).collect();
            let pem = pem_encode("CERTIFICATE", &data);
            assert_eq!(
                CertificateDer::from_pem_slice(pem.as_bytes())?.as_ref(),
                &data[..]
            );
        }
        assert_eq!(
            pem_encode("X", b"foobar"),
            "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n"
        );
        assert_eq!(
            pem_encode("X", b"fo"),
            "-----BEGIN X-----\nZm8=\n-----END X-----\n"
        );
        assert_eq!(
            pem_encode("X", b"f"),
            "-----BEGIN X-----\nZg==\n-----END X-----\n"
        );
        Ok(())
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
    }

    #[test]
    fn overflow_is_refused() {
        // 36^50 - 1 is larger than 2^256 - 1.
        assert_eq!(base36_decode::<32>(&"z".repeat(50)), None);
    }
}
