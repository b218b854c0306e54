//! Maglev consistent-hashing lookup tables for service load balancing: the
//! table a tc or XDP program indexes with `flow_hash % size` to pick the
//! backend of a new flow to a service VIP (east-west) or a published port
//! (routing mesh). This module only builds tables; the data plane owns the
//! map they are written to.
//!
//! The population follows the Maglev paper (Eisenbud et al., NSDI 2016,
//! §3.4): every backend walks its own permutation of the table's slots,
//! `offset, offset + skip, offset + 2·skip, … (mod size)`, with `offset` and
//! `skip` from two independent hashes of its [`BackendKey`], and the backends
//! take turns claiming the next free slot of their permutation until the
//! table is full. Because `size` is prime and `1 ≤ skip < size`, every
//! permutation visits every slot. Weights follow Katran's weighted Maglev:
//! each turn a backend earns its weight in credit and claims a slot whenever
//! its credit reaches the largest weight, so slot counts are proportional to
//! weights. Removing or adding one of `N` backends changes the slots of
//! that backend (`1/N` of the table) and a few more (Maglev trades a little
//! disruption for balance: about 1.3 % of the table more with 100 backends in
//! [`DEFAULT_TABLE_SIZE`] slots); the rest keep their backend, so flows that
//! miss conntrack mostly still land where they were.
//!
//! **Determinism contract**: the table depends only on the set of
//! `(key, weight)` pairs and the size — not on the order of the caller's
//! slice, the process, the machine, its endianness or the Rust release.
//! Every node builds the identical table for a service, so a flow reaching
//! any node of the routing mesh picks the same backend. This holds because
//! the backends are sorted by key before population and the hashes are
//! SHA-256 (FIPS 180-4) over a fixed, versioned encoding (see
//! [`BackendKey`]), read little-endian. Changing the encoding or the domain
//! tags changes every table in the cluster; bump the `v1` in the tags when
//! doing so on purpose.

use std::{
    fmt,
    net::{SocketAddr, SocketAddrV6},
    num::NonZeroU32,
};

use sha2::{Digest as _, Sha256};

/// Default number of slots in a service's table: 16381, a prime (Maglev
/// needs a prime size so every `skip` generates a full permutation).
///
/// It is Cilium's default rather than Katran's 65537 because shoal keeps one
/// table per service on every node, not a few tables per dedicated load
/// balancer: at 4 bytes a slot a table is 64 KiB (256 KiB at 65537), and every
/// task change rewrites the table, so a smaller table is four times cheaper
/// to build and to write into the map. It still gives each backend of a
/// 160-replica service about 100 slots, where the paper's `size ≥ 100·N`
/// keeps the imbalance of unweighted backends under 1 %; larger services
/// stay usable (one slot more or less is `N/size` of the traffic) up to
/// 16381 backends.
pub const DEFAULT_TABLE_SIZE: u32 = 16381;

/// The slot value of a table without backends: no backend, drop the flow.
/// Never a valid index, since a table has at most `size < u32::MAX` backends.
pub const NO_BACKEND: u32 = u32::MAX;

/// Domain tag of the hash that gives a backend's first slot.
const OFFSET_TAG: &[u8] = b"shoal/maglev/v1/offset";
/// Domain tag of the hash that gives a backend's step through the table.
const SKIP_TAG: &[u8] = b"shoal/maglev/v1/skip";

/// What identifies a backend across rebuilds and nodes: its address and
/// port. Hashed as the IP address's octets (4 or 16, network order) followed
/// by the port in network byte order; an IPv6 address's flow label and
/// scope id are not part of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendKey(SocketAddr);

impl From<SocketAddr> for BackendKey {
    fn from(addr: SocketAddr) -> Self {
        Self(match addr {
            SocketAddr::V4(_) => addr,
            SocketAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
        })
    }
}

impl fmt::Display for BackendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl BackendKey {
    /// SHA-256 of `tag` then the key's encoding, first 8 bytes little-endian.
    fn hash(self, tag: &[u8]) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(tag);
        match self.0 {
            SocketAddr::V4(v4) => hasher.update(v4.ip().octets()),
            SocketAddr::V6(v6) => hasher.update(v6.ip().octets()),
        }
        hasher.update(self.0.port().to_be_bytes());
        let digest = hasher.finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// One backend of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Its identity; unique within one table.
    pub key: BackendKey,
    /// Its share of the slots relative to the other backends.
    pub weight: NonZeroU32,
}

/// Why a table cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaglevError {
    /// The size is not a prime, so some permutations would not cover the table.
    #[error("Maglev table size {size} is not a prime")]
    NotPrime {
        /// The requested size.
        size: u32,
    },
    /// There are more backends than slots.
    #[error("Maglev table size {size} is smaller than its {backends} backends")]
    TooSmall {
        /// The requested size.
        size: u32,
        /// How many backends were given.
        backends: usize,
    },
    /// Two backends have the same key, so they would have the same permutation.
    #[error("backend {key} is listed more than once")]
    DuplicateBackend {
        /// The repeated key.
        key: BackendKey,
    },
}

/// Whether `n` is a prime (trial division; at most 32768 steps for a `u32`).
fn is_prime(n: u32) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let n = u64::from(n);
    (3..)
        .step_by(2)
        .take_while(|d| d * d <= n)
        .all(|d| !n.is_multiple_of(d))
}

/// `hash mod modulus`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the remainder is below `modulus`, a u32"
)]
fn reduce(hash: u64, modulus: u32) -> u32 {
    (hash % u64::from(modulus)) as u32
}

/// A backend's walk through its permutation while the table fills.
struct Cursor {
    /// The backend's index in the caller's slice: the value of its slots.
    index: u32,
    weight: u64,
    /// The next slot of its permutation to try.
    slot: u32,
    skip: u32,
    credit: u64,
}

impl Cursor {
    /// Moves to the next slot of the permutation: `(slot + skip) mod size`
    /// without overflowing `u32`.
    fn step(&mut self, size: u32) {
        let room = size - self.skip;
        self.slot = if self.slot >= room {
            self.slot - room
        } else {
            self.slot + self.skip
        };
    }
}

/// Builds the lookup table of `size` slots for `backends`.
///
/// Returns: `size` entries, each the index in `backends` of the slot's
/// backend, or all [`NO_BACKEND`] when `backends` is empty. Each backend
/// gets `size · weight / total weight` slots, give or take one (or none when
/// its weight is tiny against the others' and the table small). The result
/// depends only on the set of backends (see the module docs), so the same
/// backends in another order give every slot the same backend key.
///
/// Errors: `size` not a prime, fewer slots than backends, or a key given
/// twice.
pub fn build(backends: &[Backend], size: u32) -> Result<Vec<u32>, MaglevError> {
    if !is_prime(size) {
        return Err(MaglevError::NotPrime { size });
    }
    let count = u32::try_from(backends.len())
        .ok()
        .filter(|&count| count <= size)
        .ok_or(MaglevError::TooSmall {
            size,
            backends: backends.len(),
        })?;
    let mut sorted: Vec<(u32, &Backend)> = (0..count).zip(backends).collect();
    sorted.sort_unstable_by_key(|(_, backend)| backend.key);
    if let Some(pair) = sorted
        .windows(2)
        .find(|pair| pair[0].1.key == pair[1].1.key)
    {
        return Err(MaglevError::DuplicateBackend { key: pair[0].1.key });
    }

    let mut table = vec![NO_BACKEND; size as usize];
    let Some(max_weight) = backends.iter().map(|b| u64::from(b.weight.get())).max() else {
        return Ok(table);
    };
    let mut cursors: Vec<Cursor> = sorted
        .into_iter()
        .map(|(index, backend)| Cursor {
            index,
            weight: u64::from(backend.weight.get()),
            slot: reduce(backend.key.hash(OFFSET_TAG), size),
            skip: reduce(backend.key.hash(SKIP_TAG), size - 1) + 1,
            credit: 0,
        })
        .collect();

    // Each round the heaviest backends claim a slot, so this ends; a claim
    // ends because the permutation covers the table and a slot is free.
    let mut filled = 0;
    loop {
        for cursor in &mut cursors {
            cursor.credit += cursor.weight;
            if cursor.credit < max_weight {
                continue;
            }
            cursor.credit -= max_weight;
            while table[cursor.slot as usize] != NO_BACKEND {
                cursor.step(size);
            }
            table[cursor.slot as usize] = cursor.index;
            cursor.step(size);
            filled += 1;
            if filled == size {
                return Ok(table);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        net::{Ipv4Addr, Ipv6Addr},
    };

    use super::*;

    /// Size of the small tables that keep exhaustive checks cheap.
    const SMALL: u32 = 251;

    fn key(i: u32) -> BackendKey {
        let ip = Ipv4Addr::from(0x0a00_0000 + i);
        SocketAddr::from((ip, 8080)).into()
    }

    fn backends(range: std::ops::Range<u32>) -> Vec<Backend> {
        range
            .map(|i| Backend {
                key: key(i),
                weight: NonZeroU32::MIN,
            })
            .collect()
    }

    fn built(backends: &[Backend], size: u32) -> Vec<u32> {
        match build(backends, size) {
            Ok(table) => table,
            Err(error) => panic!("building a table of {size}: {error}"),
        }
    }

    /// The table as backend keys rather than indices.
    fn keys_of(backends: &[Backend], size: u32) -> Vec<BackendKey> {
        built(backends, size)
            .into_iter()
            .map(|index| backends[index as usize].key)
            .collect()
    }

    fn slot_counts(table: &[BackendKey]) -> HashMap<BackendKey, u32> {
        let mut counts = HashMap::new();
        for key in table {
            *counts.entry(*key).or_default() += 1;
        }
        counts
    }

    /// Share of slots whose backend differs between two tables.
    #[expect(clippy::cast_precision_loss, reason = "table sizes are far below 2^52")]
    fn changed_share(before: &[BackendKey], after: &[BackendKey]) -> f64 {
        let changed = before.iter().zip(after).filter(|(b, a)| b != a).count();
        changed as f64 / before.len() as f64
    }

    #[test]
    fn default_size_is_prime() {
        assert!(is_prime(DEFAULT_TABLE_SIZE));
        assert!(is_prime(65537) && is_prime(2) && is_prime(3) && is_prime(4_294_967_291));
        assert!(
            ![0, 1, 4, 9, 16383, 65535, 4_294_967_295]
                .into_iter()
                .any(is_prime)
        );
    }

    #[test]
    fn offset_and_skip_hashes_are_pinned() {
        // Computed outside Rust, so the encoding cannot drift unnoticed:
        // printf 'shoal/maglev/v1/offset\x0a\x00\x00\x01\x1f\x90' | sha256sum
        // and the same with `skip`; the first 8 bytes, little-endian.
        let key = key(1);
        assert_eq!(key.hash(OFFSET_TAG), 0xa95c_a26c_545b_d89d);
        assert_eq!(key.hash(SKIP_TAG), 0xbccb_ccea_49f3_de36);
    }

    #[test]
    fn tables_are_deterministic() {
        let set = backends(0..7);
        let table = built(&set, SMALL);
        assert_eq!(table, built(&set, SMALL));
        // Pinned, and checked against a separate implementation of the
        // paper's population over the same hashes: a change here changes
        // every node's tables.
        assert_eq!(
            table[..16],
            [3, 0, 4, 4, 4, 2, 4, 4, 4, 2, 2, 5, 6, 6, 6, 6]
        );
    }

    #[test]
    fn order_does_not_change_the_keys_of_slots() {
        let set = backends(0..10);
        let mut shuffled = set.clone();
        shuffled.reverse();
        shuffled.rotate_left(3);
        assert_ne!(set, shuffled);
        let table = built(&set, DEFAULT_TABLE_SIZE);
        assert_eq!(
            keys_of(&set, DEFAULT_TABLE_SIZE),
            keys_of(&shuffled, DEFAULT_TABLE_SIZE)
        );
        // The indices follow the caller's slice, so they do differ.
        assert_ne!(table, built(&shuffled, DEFAULT_TABLE_SIZE));
    }

    #[test]
    fn unweighted_backends_share_the_table_evenly() {
        for n in [3, 10, 100] {
            let set = backends(0..n);
            let counts = slot_counts(&keys_of(&set, DEFAULT_TABLE_SIZE));
            assert_eq!(counts.len(), n as usize, "every backend has slots");
            let ideal = f64::from(DEFAULT_TABLE_SIZE) / f64::from(n);
            let worst = counts
                .values()
                .map(|&c| (f64::from(c) - ideal).abs())
                .fold(0.0, f64::max);
            println!(
                "{n} backends: ideal {ideal:.1} slots, worst off by {worst:.1} ({:.2} %)",
                worst / ideal * 100.0
            );
            assert!(worst < 1.0, "{n} backends: a backend is {worst} slots off");
        }
    }

    #[test]
    fn weights_are_respected_proportionally() {
        let weights = [1, 2, 3, 4, 10];
        let set: Vec<Backend> = weights
            .iter()
            .zip(0..)
            .map(|(&w, i)| Backend {
                key: key(i),
                weight: NonZeroU32::new(w).expect("weights are non-zero"),
            })
            .collect();
        let counts = slot_counts(&keys_of(&set, DEFAULT_TABLE_SIZE));
        let total: u32 = weights.iter().sum();
        for (backend, w) in set.iter().zip(weights) {
            let ideal = f64::from(DEFAULT_TABLE_SIZE) * f64::from(w) / f64::from(total);
            let got = f64::from(counts.get(&backend.key).copied().unwrap_or(0));
            println!(
                "weight {w}: {got} slots, ideal {ideal:.1} ({:+.2} %)",
                (got - ideal) / ideal * 100.0
            );
            assert!(
                (got - ideal).abs() <= 2.0,
                "weight {w}: {got} slots, ideal {ideal}"
            );
        }
    }

    #[test]
    fn removing_a_backend_moves_about_one_nth() {
        for n in [3, 10, 100] {
            let set = backends(0..n);
            let before = keys_of(&set, DEFAULT_TABLE_SIZE);
            let removed = key(n / 2);
            let rest: Vec<Backend> = set.iter().copied().filter(|b| b.key != removed).collect();
            let after = keys_of(&rest, DEFAULT_TABLE_SIZE);

            let share = changed_share(&before, &after);
            // Maglev trades a little disruption for balance: at 164 slots a
            // backend (n = 100) about 1.3 % of the table moves besides the
            // removed backend's own share.
            let bound = 1.0 / f64::from(n) + 0.02;
            // Slots of the backends that stay and yet changed hands.
            let kept: Vec<(&BackendKey, &BackendKey)> = before
                .iter()
                .zip(&after)
                .filter(|(b, _)| **b != removed)
                .collect();
            let moved = kept.iter().filter(|(b, a)| b != a).count();
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let moved_share = moved as f64 / kept.len() as f64;
            println!(
                "remove 1 of {n}: {:.2} % of slots changed (1/N = {:.2} %), \
                 {:.2} % of the survivors' slots moved",
                share * 100.0,
                100.0 / f64::from(n),
                moved_share * 100.0
            );
            assert!(!after.contains(&removed));
            assert!(
                share >= 1.0 / f64::from(n) - 0.001,
                "the removed slots changed"
            );
            assert!(
                share <= bound,
                "{n} backends: {share} changed, bound {bound}"
            );
            assert!(
                moved_share <= 0.02,
                "{n} backends: {moved_share} of survivors moved"
            );
        }
    }

    #[test]
    fn adding_a_backend_moves_about_one_nth() {
        for n in [3, 10, 100] {
            let set = backends(0..n);
            let before = keys_of(&set, DEFAULT_TABLE_SIZE);
            let grown = backends(0..n + 1);
            let after = keys_of(&grown, DEFAULT_TABLE_SIZE);

            let share = changed_share(&before, &after);
            let ideal = 1.0 / f64::from(n + 1);
            let to_new = after.iter().filter(|k| **k == key(n)).count();
            let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
            println!(
                "add 1 to {n}: {:.2} % of slots changed (1/(N+1) = {:.2} %), \
                 {} changed between old backends",
                share * 100.0,
                ideal * 100.0,
                changed - to_new
            );
            assert!(share <= ideal + 0.02, "{n} backends: {share} changed");
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let shuffled = (changed - to_new) as f64 / f64::from(DEFAULT_TABLE_SIZE);
            assert!(
                shuffled <= 0.02,
                "{n} backends: {shuffled} moved between old backends"
            );
        }
    }

    #[test]
    fn no_backends_fill_the_table_with_the_sentinel() {
        let table = built(&[], SMALL);
        assert_eq!(table.len(), SMALL as usize);
        assert!(table.iter().all(|&slot| slot == NO_BACKEND));
    }

    #[test]
    fn one_backend_takes_every_slot() {
        assert!(built(&backends(4..5), SMALL).iter().all(|&slot| slot == 0));
    }

    #[test]
    fn a_full_table_gives_each_backend_one_slot() {
        let mut table = built(&backends(0..SMALL), SMALL);
        table.sort_unstable();
        assert!(table.iter().copied().eq(0..SMALL));
    }

    #[test]
    fn bad_sizes_and_duplicates_are_errors() {
        for size in [0, 1, 16383, 65535] {
            assert_eq!(build(&[], size), Err(MaglevError::NotPrime { size }));
        }
        assert_eq!(
            build(&backends(0..8), 7),
            Err(MaglevError::TooSmall {
                size: 7,
                backends: 8
            })
        );
        let mut twice = backends(0..5);
        twice.push(twice[2]);
        assert_eq!(
            build(&twice, SMALL),
            Err(MaglevError::DuplicateBackend { key: key(2) })
        );
        assert_eq!(
            MaglevError::DuplicateBackend { key: key(2) }.to_string(),
            "backend 10.0.0.2:8080 is listed more than once"
        );
    }

    #[test]
    fn ipv6_keys_ignore_flow_label_and_scope() {
        let ip = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5);
        let plain = BackendKey::from(SocketAddr::V6(SocketAddrV6::new(ip, 80, 0, 0)));
        let scoped = BackendKey::from(SocketAddr::V6(SocketAddrV6::new(ip, 80, 7, 3)));
        assert_eq!(plain, scoped);
        assert_eq!(plain.hash(OFFSET_TAG), scoped.hash(OFFSET_TAG));
        assert_ne!(plain.hash(OFFSET_TAG), plain.hash(SKIP_TAG));
    }
}
