//! Service VIPs' Maglev tables (`OVERLAY_SERVICES`, `OVERLAY_MAGLEV`): their
//! sizes, and the flow hash that picks a table's slot.

/// Maximum number of service VIPs (`OVERLAY_SERVICES` entries, Maglev
/// tables) on one node: a VIP per (service, network) of the networks with a
/// task on this node.
pub const OVERLAY_MAX_SERVICES: u32 = 1_024;

/// Slots of each service's Maglev table in `OVERLAY_MAGLEV`: a prime, as
/// Maglev needs. Smaller than the routing mesh's 16381 because every node
/// keeps a table for every VIP it can reach and aya-ebpf 0.2.1 has no
/// map-of-maps: one flat array of 1024 tables × 1021 slots × 4 bytes is
/// 4 MiB per node (16381 would be 64 MiB). It keeps the imbalance under 1 %
/// up to 10 backends and about 10 % at 100 (`size ≥ 100·N`, Maglev §3.4);
/// established flows never depend on it (conntrack).
pub const OVERLAY_MAGLEV_SIZE: u32 = 1_021;

/// Size of `OVERLAY_MAGLEV`.
pub const OVERLAY_MAGLEV_ENTRIES: u32 = OVERLAY_MAX_SERVICES * OVERLAY_MAGLEV_SIZE;

/// The flow hash that indexes a service's Maglev table: the 5-tuple as in
/// the packet (network byte order), mixed with the murmur3 finaliser so
/// that neighbouring ports spread over the whole table. Pure and shared, so
/// that the agent's tests can predict the programs' choices.
#[must_use]
pub const fn flow_hash(
    src_be: u32,
    dst_be: u32,
    sport_be: u16,
    dport_be: u16,
    protocol: u8,
) -> u32 {
    let mut h = 0x9e37_79b9_u32 ^ protocol as u32;
    h = mix(h ^ src_be);
    h = mix(h ^ dst_be);
    h = mix(h ^ (((sport_be as u32) << 16) | dport_be as u32));
    h
}

/// murmur3's 32-bit finaliser.
const fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_spreads_ports_and_depends_on_every_field() {
        let base = flow_hash(1, 2, 3, 4, 6);
        assert_ne!(base, flow_hash(9, 2, 3, 4, 6));
        assert_ne!(base, flow_hash(1, 9, 3, 4, 6));
        assert_ne!(base, flow_hash(1, 2, 9, 4, 6));
        assert_ne!(base, flow_hash(1, 2, 3, 9, 6));
        assert_ne!(base, flow_hash(1, 2, 3, 4, 17));
        // 3000 consecutive source ports over a table of 1021 slots reach
        // most of it (uniform hashing would reach ~95 %).
        let mut seen = [false; OVERLAY_MAGLEV_SIZE as usize];
        for port in 30_000..33_000_u16 {
            seen[(flow_hash(1, 2, port.to_be(), 80_u16.to_be(), 6) % OVERLAY_MAGLEV_SIZE)
                as usize] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 900);
    }
}
