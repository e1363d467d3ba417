//! IPv4 subnets and the pool app networks take theirs from.
//!
//! A stock Docker Engine hands each bridge network a /16 or /20 of its
//! default pools (172.17–31.0.0/16, 192.168.0.0/16 in /20s): about 31
//! networks. tomo instead gives every network it creates one small block of
//! `Settings.networks.pool`, the first block that overlaps nothing the server
//! already uses, so an Engine with its default configuration holds thousands.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 network in CIDR form, its address aligned to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    addr: u32,
    prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` (a bare address is a /32). The address must be the
    /// network's first one.
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let ip: Ipv4Addr = a.trim().parse().map_err(|_| format!("`{s}` is not an IPv4 address or CIDR"))?;
        let prefix: u8 = p.trim().parse().ok().filter(|p| *p <= 32).ok_or(format!("`{s}`: prefix must be 0 to 32"))?;
        let addr = u32::from(ip);
        let net = Subnet { addr: addr & mask(prefix), prefix };
        if net.addr != addr {
            return Err(format!("`{s}` is not a network address; did you mean `{net}`?"));
        }
        Ok(net)
    }

    /// Like `parse`, but keeps only the network part (`10.0.0.5/24` → `10.0.0.0/24`),
    /// for what the Engine or the kernel report.
    pub fn parse_lenient(s: &str) -> Option<Subnet> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let ip: Ipv4Addr = a.trim().parse().ok()?;
        let prefix: u8 = p.trim().parse().ok().filter(|p| *p <= 32)?;
        Some(Subnet { addr: u32::from(ip) & mask(prefix), prefix })
    }

    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        (prefix <= 32).then(|| Subnet { addr: u32::from(addr) & mask(prefix), prefix })
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    fn last(self) -> u32 {
        self.addr | !mask(self.prefix)
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (self.addr..=self.last()).contains(&u32::from(ip))
    }

    /// Whether `ip` is one a container can be given: not the network's
    /// address, its broadcast, or the gateway the Engine takes (the first).
    pub fn host_address(self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.prefix <= 30 && ip > self.addr + 1 && ip < self.last()
    }

    pub fn overlaps(self, other: Subnet) -> bool {
        self.addr <= other.last() && other.addr <= self.last()
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where app networks get their subnets: blocks of `/block` within `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPool {
    pub range: Subnet,
    pub block: u8,
}

impl Default for NetworkPool {
    /// 10.213.0.0/16 in /27 blocks: 2048 networks of 29 containers each.
    /// Outside Docker's default pools (172.17–31.0.0/16, 192.168.0.0/16),
    /// clear of the 10.x ranges home routers, VPNs (10.8.0.0/24) and
    /// Kubernetes distributions (10.42–43, 10.96, 10.244) usually take.
    fn default() -> Self {
        NetworkPool { range: Subnet { addr: u32::from(Ipv4Addr::new(10, 213, 0, 0)), prefix: 16 }, block: 27 }
    }
}

impl NetworkPool {
    /// Smallest and largest block: a /29 holds 5 containers, a /16 is
    /// what Docker itself gives.
    pub const BLOCKS: std::ops::RangeInclusive<u8> = 16..=29;

    /// Checks a pool as written in Settings.
    pub fn new(range: Subnet, block: u8) -> Result<NetworkPool, String> {
        if !Self::BLOCKS.contains(&block) {
            return Err(format!("block size /{block} is out of range; use /16 to /29 (default /27)"));
        }
        if block < range.prefix {
            return Err(format!("a /{block} block does not fit in the pool {range}"));
        }
        Ok(NetworkPool { range, block })
    }

    /// How many blocks the pool has.
    pub fn capacity(self) -> u64 {
        1u64 << (self.block - self.range.prefix)
    }

    /// The prefix of the block for a network of `containers`: the pool's
    /// block, or a larger one when that cannot hold twice as many (a
    /// recreate runs the new container beside the old one), never larger
    /// than the pool itself. A /27 holds 29 containers (network, broadcast
    /// and gateway addresses aside).
    pub fn block_for(self, containers: usize) -> u8 {
        let need = (containers as u64).saturating_mul(2);
        let mut prefix = self.block;
        while prefix > self.range.prefix && (1u64 << (32 - prefix)).saturating_sub(3) < need {
            prefix -= 1;
        }
        prefix
    }

    /// The first block of the pool's size overlapping none of `used`, in
    /// address order.
    pub fn first_free(self, used: &[Subnet]) -> Option<Subnet> {
        self.first_free_of(used, self.block)
    }

    /// The first `/prefix` block (at least the pool's block size, at most the
    /// pool) overlapping none of `used`, in address order.
    pub fn first_free_of(self, used: &[Subnet], prefix: u8) -> Option<Subnet> {
        let prefix = prefix.clamp(self.range.prefix, 32);
        let size = 1u64 << (32 - prefix);
        let mut next = u64::from(self.range.addr);
        let end = u64::from(self.range.last());
        while next <= end {
            let block = Subnet { addr: next as u32, prefix };
            match used.iter().filter(|u| u.overlaps(block)).map(|u| u64::from(u.last())).max() {
                None => return Some(block),
                // Skip past whatever overlaps, aligned to the next block.
                Some(last) => next = (last / size + 1) * size,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        Subnet::parse(x).unwrap()
    }

    #[test]
    fn parses_and_prints_cidrs() {
        assert_eq!(s("10.213.0.0/16").to_string(), "10.213.0.0/16");
        assert_eq!(s("10.1.2.3").to_string(), "10.1.2.3/32");
        assert!(Subnet::parse("10.213.0.1/16").unwrap_err().contains("did you mean `10.213.0.0/16`"));
        for bad in ["", "/", "10.0.0.0/33", "10.0.0/8", "x/8", "10.0.0.0/-1", "€/8", "10.0.0.0/8/8"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Subnet::parse_lenient("10.0.0.5/24"), Some(s("10.0.0.0/24")));
    }

    #[test]
    fn overlap() {
        assert!(s("10.0.0.0/8").overlaps(s("10.213.4.0/27")));
        assert!(!s("10.213.0.0/27").overlaps(s("10.213.0.32/27")));
        assert!(s("0.0.0.0/0").overlaps(s("10.0.0.0/27")));
    }

    #[test]
    fn takes_the_first_block_nothing_overlaps() {
        let pool = NetworkPool::default();
        assert_eq!(pool.capacity(), 2048);
        assert_eq!(pool.first_free(&[]), Some(s("10.213.0.0/27")));
        assert_eq!(pool.first_free(&[s("10.213.0.0/27")]), Some(s("10.213.0.32/27")));
        // A route of a /24 inside the pool blocks its eight /27s.
        assert_eq!(pool.first_free(&[s("10.213.0.0/24")]), Some(s("10.213.1.0/27")));
        // A host route blocks only its block.
        assert_eq!(pool.first_free(&[s("10.213.0.7/32")]), Some(s("10.213.0.32/27")));
        assert_eq!(pool.first_free(&[s("10.0.0.0/8")]), None);
        let small = NetworkPool::new(s("10.9.0.0/28"), 29).unwrap();
        assert_eq!(small.first_free(&[s("10.9.0.0/29"), s("10.9.0.8/29")]), None);
        assert!(NetworkPool::new(s("10.9.0.0/24"), 30).is_err());
        assert!(NetworkPool::new(s("10.9.0.0/24"), 20).is_err());
    }

    #[test]
    fn a_large_app_gets_a_block_that_holds_twice_its_containers() {
        let pool = NetworkPool::default();
        assert_eq!(pool.block_for(1), 27);
        assert_eq!(pool.block_for(14), 27);
        assert_eq!(pool.block_for(15), 26);
        assert_eq!(pool.block_for(50), 25);
        assert_eq!(pool.block_for(1_000_000), 16);
        let used = [s("10.213.0.0/27")];
        assert_eq!(pool.first_free_of(&used, 25), Some(s("10.213.0.128/25")));
        assert_eq!(pool.first_free_of(&used, 27), Some(s("10.213.0.32/27")));
    }

    #[test]
    fn fills_a_whole_pool_without_overlap() {
        let pool = NetworkPool::new(s("10.50.0.0/20"), 27).unwrap();
        let mut used = Vec::new();
        while let Some(b) = pool.first_free(&used) {
            assert!(used.iter().all(|u: &Subnet| !u.overlaps(b)));
            used.push(b);
        }
        assert_eq!(used.len() as u64, pool.capacity());
    }
}
