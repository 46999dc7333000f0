//! Which addresses a metadata document is never fetched from: every address a host resolves to
//! is checked against these ranges before any connection is made (RFC 6890's special-use
//! registries, `draft-ietf-oauth-client-id-metadata-document` §6.5).
//!
//! IPv4-mapped (`::ffff:10.0.0.1`) and NAT64 (`64:ff9b::a00:1`) IPv6 addresses are judged by
//! the IPv4 address they carry, since a connection to them reaches it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of an address no document is fetched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressKind {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `169.254.0.0/16` (where cloud metadata services answer), `fe80::/10`.
    LinkLocal,
    /// IPv6 unique-local, `fc00::/7`.
    UniqueLocal,
    /// Any other address that is not public unicast: unspecified, shared (`100.64.0.0/10`),
    /// documentation, benchmarking, multicast, reserved, broadcast, and the IPv6 special
    /// blocks (`2001::/23`, `2002::/16`, site-local, and all outside `2000::/3`).
    SpecialUse,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::SpecialUse => "special-use",
        })
    }
}

/// IPv4 blocks that are not public unicast: (network, prefix length, kind).
const V4: [(u32, u32, AddressKind); 15] = [
    (0x0000_0000, 8, AddressKind::SpecialUse), // 0.0.0.0/8, "this network"
    (0x0a00_0000, 8, AddressKind::Private),    // 10.0.0.0/8
    (0x6440_0000, 10, AddressKind::SpecialUse), // 100.64.0.0/10, shared (carrier NAT)
    (0x7f00_0000, 8, AddressKind::Loopback),   // 127.0.0.0/8
    (0xa9fe_0000, 16, AddressKind::LinkLocal), // 169.254.0.0/16
    (0xac10_0000, 12, AddressKind::Private),   // 172.16.0.0/12
    (0xc000_0000, 24, AddressKind::SpecialUse), // 192.0.0.0/24, IETF protocol assignments
    (0xc000_0200, 24, AddressKind::SpecialUse), // 192.0.2.0/24, documentation
    (0xc058_6300, 24, AddressKind::SpecialUse), // 192.88.99.0/24, 6to4 relays
    (0xc0a8_0000, 16, AddressKind::Private),   // 192.168.0.0/16
    (0xc612_0000, 15, AddressKind::SpecialUse), // 198.18.0.0/15, benchmarking
    (0xc633_6400, 24, AddressKind::SpecialUse), // 198.51.100.0/24, documentation
    (0xcb00_7100, 24, AddressKind::SpecialUse), // 203.0.113.0/24, documentation
    (0xe000_0000, 4, AddressKind::SpecialUse), // 224.0.0.0/4, multicast
    (0xf000_0000, 4, AddressKind::SpecialUse), // 240.0.0.0/4, reserved and broadcast
];

/// IPv6 blocks inside `2000::/3` that are not public unicast, and the blocks outside it that
/// have a kind of their own.
const V6: [(u128, u32, AddressKind); 6] = [
    (0x2001_0000 << 96, 23, AddressKind::SpecialUse), // 2001::/23, IETF (Teredo, ORCHID…)
    (0x2001_0db8 << 96, 32, AddressKind::SpecialUse), // 2001:db8::/32, documentation
    (0x2002 << 112, 16, AddressKind::SpecialUse),     // 2002::/16, 6to4
    (0xfc00 << 112, 7, AddressKind::UniqueLocal),     // fc00::/7
    (0xfe80 << 112, 10, AddressKind::LinkLocal),      // fe80::/10
    (0xfec0 << 112, 10, AddressKind::SpecialUse),     // fec0::/10, site-local (deprecated)
];

/// The NAT64 well-known prefix, `64:ff9b::/96` (RFC 6052): a DNS64 resolver maps an IPv4-only
/// host's address into it, so it stands for that IPv4 address.
const NAT64: u128 = 0x0064_ff9b << 96;

fn within<T>(address: T, network: T, prefix: u32, bits: u32) -> bool
where
    T: Copy + std::ops::BitXor<Output = T> + std::ops::Shr<u32, Output = T> + PartialEq + From<u8>,
{
    prefix == 0 || (address ^ network) >> (bits - prefix) == T::from(0)
}

fn v4(address: Ipv4Addr) -> Option<AddressKind> {
    let bits = u32::from(address);
    V4.iter()
        .find(|(network, prefix, _)| within(bits, *network, *prefix, 32))
        .map(|(_, _, kind)| *kind)
}

fn v6(address: Ipv6Addr) -> Option<AddressKind> {
    if let Some(mapped) = address.to_ipv4_mapped() {
        return v4(mapped);
    }
    let bits = u128::from(address);
    if address.is_loopback() {
        return Some(AddressKind::Loopback);
    }
    if within(bits, NAT64, 96, 128) {
        // The low 32 bits are the IPv4 address.
        return v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if let Some((_, _, kind)) = V6
        .iter()
        .find(|(network, prefix, _)| within(bits, *network, *prefix, 128))
    {
        return Some(*kind);
    }
    // Global unicast is 2000::/3; everything else (unspecified, IPv4-compatible, discard,
    // multicast, reserved) is not fetched from.
    if bits >> 125 != 0b001 {
        return Some(AddressKind::SpecialUse);
    }
    None
}

/// The kind of `address` if no document is fetched from it; `None` for a public address.
///
/// ```
/// use tower_agent_auth::oauth::document::{AddressKind, classify};
///
/// assert_eq!(classify("10.1.2.3".parse().unwrap()), Some(AddressKind::Private));
/// assert_eq!(classify("::ffff:169.254.169.254".parse().unwrap()), Some(AddressKind::LinkLocal));
/// assert_eq!(classify("fd00::1".parse().unwrap()), Some(AddressKind::UniqueLocal));
/// assert_eq!(classify("93.184.215.14".parse().unwrap()), None);
/// ```
pub fn classify(address: IpAddr) -> Option<AddressKind> {
    match address {
        IpAddr::V4(address) => v4(address),
        IpAddr::V6(address) => v6(address),
    }
}

/// Whether a document may be fetched from `address`: public, or loopback when tests allow it.
pub(crate) fn refused(address: IpAddr, allow_loopback: bool) -> Option<AddressKind> {
    classify(address).filter(|kind| !(allow_loopback && *kind == AddressKind::Loopback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<AddressKind> {
        classify(text.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges_and_their_edges() {
        use AddressKind::*;
        for (address, expected) in [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.255", Some(Loopback)),
            ("10.0.0.0", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("11.0.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.0", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("192.167.255.255", None),
            ("192.168.0.1", Some(Private)),
            ("192.169.0.0", None),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.255.0.0", None),
            ("0.0.0.0", Some(SpecialUse)),
            ("100.64.0.1", Some(SpecialUse)),
            ("100.128.0.0", None),
            ("192.0.2.1", Some(SpecialUse)),
            ("198.18.0.1", Some(SpecialUse)),
            ("198.20.0.0", None),
            ("224.0.0.1", Some(SpecialUse)),
            ("255.255.255.255", Some(SpecialUse)),
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("223.255.255.255", None),
        ] {
            assert_eq!(kind(address), expected, "{address}");
        }
    }

    #[test]
    fn ipv6_ranges_and_their_edges() {
        use AddressKind::*;
        for (address, expected) in [
            ("::1", Some(Loopback)),
            ("::", Some(SpecialUse)),
            ("fe80::1", Some(LinkLocal)),
            ("febf:ffff::1", Some(LinkLocal)),
            ("fec0::1", Some(SpecialUse)),
            ("fc00::1", Some(UniqueLocal)),
            ("fdff:ffff::1", Some(UniqueLocal)),
            ("fe00::1", Some(SpecialUse)),
            ("ff02::1", Some(SpecialUse)),
            ("2001:db8::1", Some(SpecialUse)),
            ("2001::1", Some(SpecialUse)),
            ("2002:a00:1::1", Some(SpecialUse)),
            ("::a00:1", Some(SpecialUse)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("3fff:ffff::1", None),
            ("4000::1", Some(SpecialUse)),
        ] {
            assert_eq!(kind(address), expected, "{address}");
        }
    }

    /// An IPv4 address wrapped in IPv6 is judged as itself.
    #[test]
    fn mapped_and_nat64_addresses_are_judged_by_their_ipv4_address() {
        use AddressKind::*;
        assert_eq!(kind("::ffff:127.0.0.1"), Some(Loopback));
        assert_eq!(kind("::ffff:10.0.0.1"), Some(Private));
        assert_eq!(kind("::ffff:172.20.1.1"), Some(Private));
        assert_eq!(kind("::ffff:192.168.1.1"), Some(Private));
        assert_eq!(kind("::ffff:169.254.169.254"), Some(LinkLocal));
        assert_eq!(kind("::ffff:8.8.8.8"), None);
        assert_eq!(kind("64:ff9b::a00:1"), Some(Private));
        assert_eq!(kind("64:ff9b::808:808"), None);
        assert_eq!(kind("64:ff9b:1::a00:1"), Some(SpecialUse));
    }

    #[test]
    fn tests_may_allow_loopback_and_nothing_else() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(refused(loopback, false), Some(AddressKind::Loopback));
        assert_eq!(refused(loopback, true), None);
        assert_eq!(refused(mapped, true), None);
        assert_eq!(refused("::1".parse().unwrap(), true), None);
        assert_eq!(refused(private, true), Some(AddressKind::Private));
    }
}
