//! Address and VNI allocation for overlay networks (DESIGN.md §3,
//! "Allocator"). Pure functions over what is in use, so `apply` can call
//! them and every manager allocates the same way: the lowest free subnet of
//! the pools, the lowest free VNI from [`FIRST_VNI`], the lowest free host
//! address of a subnet (never the network, broadcast or gateway address).

use std::{collections::BTreeSet, fmt, net::Ipv4Addr};

/// The first VNI handed out (lower ones are left to other uses, as Docker).
pub const FIRST_VNI: u32 = 4096;
/// The largest VNI (24 bits).
pub const LAST_VNI: u32 = (1 << 24) - 1;

/// An IPv4 subnet: network address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length, 0–32.
    pub len: u8,
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Subnet {
    /// Parses `a.b.c.d/len` with no host bits set.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IPv4 CIDR");
        let (addr, len) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if len > 32 {
            return Err(bad());
        }
        let subnet = Self { addr, len };
        if subnet.network() != addr {
            return Err(format!(
                "{text} has host bits set; did you mean {}/{len}?",
                subnet.network()
            ));
        }
        Ok(subnet)
    }

    fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The first and last address, as numbers.
    fn range(self) -> (u64, u64) {
        let first = u64::from(u32::from(self.addr));
        (first, first + (1_u64 << (32 - u32::from(self.len))) - 1)
    }

    /// Whether the two subnets share an address.
    #[must_use]
    pub fn overlaps(self, other: Self) -> bool {
        let (a1, a2) = self.range();
        let (b1, b2) = other.range();
        a1 <= b2 && b1 <= a2
    }

    /// Whether `addr` is in the subnet.
    #[must_use]
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.addr)
    }

    /// Whether `addr` may be given to a host: in the subnet, neither the
    /// network nor the broadcast address (for prefixes up to /30).
    #[must_use]
    pub fn is_host(self, addr: Ipv4Addr) -> bool {
        let (first, last) = self.range();
        let n = u64::from(u32::from(addr));
        self.contains(addr) && (self.len >= 31 || (n != first && n != last))
    }

    /// The first host address (the default gateway).
    #[must_use]
    pub fn first_host(self) -> Ipv4Addr {
        let (first, _) = self.range();
        let offset = u64::from(self.len < 31);
        Ipv4Addr::from(u32::try_from(first + offset).unwrap_or(u32::MAX))
    }

    /// How many host addresses the subnet has.
    #[must_use]
    pub fn hosts(self) -> u64 {
        let (first, last) = self.range();
        let size = last - first + 1;
        if self.len >= 31 { size } else { size - 2 }
    }
}

/// The lowest `size`-long subnet of `pools` that overlaps nothing in
/// `used`, or `None` when the pools are exhausted.
#[must_use]
pub fn carve_subnet(pools: &[Subnet], size: u8, used: &[Subnet]) -> Option<Subnet> {
    for pool in pools {
        if size < pool.len || size > 32 {
            continue;
        }
        let (first, last) = pool.range();
        let step = 1_u64 << (32 - u32::from(size));
        let mut start = first;
        while start + step - 1 <= last {
            let candidate = Subnet {
                addr: Ipv4Addr::from(u32::try_from(start).ok()?),
                len: size,
            };
            match used.iter().find(|u| u.overlaps(candidate)) {
                None => return Some(candidate),
                // Skip past the used subnet, aligned to `step`.
                Some(taken) => {
                    let (_, taken_last) = taken.range();
                    start = (taken_last + 1).div_ceil(step) * step;
                }
            }
        }
    }
    None
}

/// The lowest VNI from [`FIRST_VNI`] not in `used`.
#[must_use]
pub fn free_vni(used: &BTreeSet<u32>) -> Option<u32> {
    (FIRST_VNI..=LAST_VNI).find(|vni| !used.contains(vni))
}

/// The lowest host address of `subnet` that is neither `reserved` (the
/// gateway) nor in `used`.
#[must_use]
pub fn free_address(
    subnet: Subnet,
    reserved: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let (first, last) = subnet.range();
    (first..=last)
        .filter_map(|n| u32::try_from(n).ok().map(Ipv4Addr::from))
        .find(|addr| subnet.is_host(*addr) && *addr != reserved && !used.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(text: &str) -> Subnet {
        Subnet::parse(text).expect("a subnet")
    }

    #[test]
    fn parses_and_refuses_cidrs() {
        assert_eq!(subnet("10.0.1.0/24").to_string(), "10.0.1.0/24");
        assert!(
            Subnet::parse("10.0.1.1/24")
                .expect_err("host bits")
                .contains("10.0.1.0/24")
        );
        assert!(Subnet::parse("10.0.1.0/33").is_err());
        assert!(Subnet::parse("nonsense").is_err());
        assert_eq!(subnet("10.0.1.0/24").hosts(), 254);
        assert_eq!(
            subnet("10.0.1.0/24").first_host(),
            Ipv4Addr::new(10, 0, 1, 1)
        );
    }

    #[test]
    fn subnets_are_carved_lowest_first_around_used_ones() {
        let pools = [subnet("10.0.0.0/8")];
        assert_eq!(carve_subnet(&pools, 24, &[]), Some(subnet("10.0.0.0/24")));
        let used = [
            subnet("10.0.0.0/24"),
            subnet("10.0.1.0/25"),
            subnet("10.0.3.0/24"),
        ];
        assert_eq!(carve_subnet(&pools, 24, &used), Some(subnet("10.0.2.0/24")));
        // A user's /16 blocks every /24 in it.
        let used = [subnet("10.0.0.0/16")];
        assert_eq!(carve_subnet(&pools, 24, &used), Some(subnet("10.1.0.0/24")));
        // Exhaustion, then the next pool.
        let small = [subnet("10.9.0.0/23"), subnet("192.168.0.0/24")];
        let used = [subnet("10.9.0.0/24"), subnet("10.9.1.0/24")];
        assert_eq!(
            carve_subnet(&small, 24, &used),
            Some(subnet("192.168.0.0/24"))
        );
        let used = [subnet("10.9.0.0/23"), subnet("192.168.0.0/24")];
        assert_eq!(carve_subnet(&small, 24, &used), None);
    }

    #[test]
    fn addresses_skip_network_broadcast_gateway_and_used() {
        let net = subnet("10.0.5.0/29"); // hosts .1 – .6
        let gateway = net.first_host();
        let mut used = BTreeSet::new();
        let mut given = Vec::new();
        while let Some(addr) = free_address(net, gateway, &used) {
            used.insert(addr);
            given.push(addr.octets()[3]);
        }
        assert_eq!(given, [2, 3, 4, 5, 6]);
        used.remove(&Ipv4Addr::new(10, 0, 5, 4));
        assert_eq!(
            free_address(net, gateway, &used),
            Some(Ipv4Addr::new(10, 0, 5, 4))
        );
    }

    #[test]
    fn vnis_start_at_4096_and_fill_gaps() {
        let used: BTreeSet<u32> = [4096, 4097, 4099].into();
        assert_eq!(free_vni(&BTreeSet::new()), Some(4096));
        assert_eq!(free_vni(&used), Some(4098));
    }
}
