//! The SSRF guard: decides which IP addresses a webhook delivery may connect to, and resolves an
//! endpoint's host into addresses that pass.
//!
//! It must not open connections or send traffic; its only I/O is the DNS lookup in
//! [`resolve_checked`]. The sender must connect to exactly the addresses returned and never
//! resolve the host again, or an answer that changes between check and connect (DNS rebinding)
//! would walk around the guard.

pub mod refusal_log;

use std::fmt;
use std::io;
use std::net::{AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// What an IP address is, as far as outbound webhook delivery is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally reachable unicast; the only class delivered to without an operator exception.
    Public,
    /// A cloud instance metadata service, which hands out credentials to whoever asks.
    Metadata,
    Loopback,
    /// RFC 1918: 10/8, 172.16/12 and 192.168/16.
    Private,
    LinkLocal,
    /// fc00::/7, IPv6's private space.
    UniqueLocal,
    /// 100.64/10, shared by carrier-grade NAT (RFC 6598).
    Shared,
    Multicast,
    Unspecified,
    Broadcast,
    Documentation,
    Benchmarking,
    /// Everything else IANA sets aside, and IPv6 space outside 2000::/3 that is not assigned.
    Reserved,
}

impl AddressClass {
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "a public address",
            AddressClass::Metadata => "a cloud metadata service address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private (RFC 1918) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::UniqueLocal => "a unique-local (private IPv6) address",
            AddressClass::Shared => "a shared carrier-grade NAT (RFC 6598) address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Documentation => "a documentation-only address",
            AddressClass::Benchmarking => "a benchmarking-only address",
            AddressClass::Reserved => "a reserved special-purpose address",
        })
    }
}

/// Metadata endpoints are named before their ranges are, because "metadata" tells an operator
/// far more than "link-local". Azure's WireServer sits in public space, so only this list
/// catches it.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, Oracle, DigitalOcean and others
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure WireServer
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// IANA's IPv4 special-purpose registry, most specific first because the first match wins.
/// Globally reachable entries (AS112, AMT) are left out so that they stay public.
const SPECIAL_V4: [(Cidr, AddressClass); 17] = [
    (Cidr::v4([0, 0, 0, 0], 32), AddressClass::Unspecified),
    (Cidr::v4([0, 0, 0, 0], 8), AddressClass::Reserved),
    (Cidr::v4([10, 0, 0, 0], 8), AddressClass::Private),
    (Cidr::v4([100, 64, 0, 0], 10), AddressClass::Shared),
    (Cidr::v4([127, 0, 0, 0], 8), AddressClass::Loopback),
    (Cidr::v4([169, 254, 0, 0], 16), AddressClass::LinkLocal),
    (Cidr::v4([172, 16, 0, 0], 12), AddressClass::Private),
    (Cidr::v4([192, 0, 0, 0], 24), AddressClass::Reserved),
    (Cidr::v4([192, 0, 2, 0], 24), AddressClass::Documentation),
    (Cidr::v4([192, 88, 99, 0], 24), AddressClass::Reserved), // deprecated 6to4 relay anycast
    (Cidr::v4([192, 168, 0, 0], 16), AddressClass::Private),
    (Cidr::v4([198, 18, 0, 0], 15), AddressClass::Benchmarking),
    (Cidr::v4([198, 51, 100, 0], 24), AddressClass::Documentation),
    (Cidr::v4([203, 0, 113, 0], 24), AddressClass::Documentation),
    (Cidr::v4([224, 0, 0, 0], 4), AddressClass::Multicast),
    (Cidr::v4([255, 255, 255, 255], 32), AddressClass::Broadcast),
    (Cidr::v4([240, 0, 0, 0], 4), AddressClass::Reserved),
];

/// IANA's IPv6 special-purpose registry, most specific first. Only 2000::/3 is global unicast,
/// so anything outside it that is not listed here (100::/64 discard, 64:ff9b:1::/48, fec0::/10
/// site-local, 5f00::/16 SRv6, unassigned space) falls through to `Reserved`.
#[rustfmt::skip]
const SPECIAL_V6: [(Cidr, AddressClass); 10] = [
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), AddressClass::Unspecified),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), AddressClass::Loopback),
    (Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), AddressClass::UniqueLocal),
    (Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), AddressClass::LinkLocal),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), AddressClass::Multicast),
    (Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), AddressClass::Documentation),
    (Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), AddressClass::Documentation),
    (Cidr::v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), AddressClass::Benchmarking),
    // IETF protocol assignments: Teredo, ORCHIDs, AMT, AS112 and friends.
    (Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), AddressClass::Reserved),
    (Cidr::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3), AddressClass::Public),
];

/// Classifies an address by the IANA special-purpose registries. IPv6 forms that reach an IPv4
/// host (mapped, NAT64, 6to4, IPv4-compatible) are judged by the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    if METADATA_V4.contains(&ip) {
        return AddressClass::Metadata;
    }
    first_match(&SPECIAL_V4, IpAddr::V4(ip)).unwrap_or(AddressClass::Public)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if METADATA_V6.contains(&ip) {
        return AddressClass::Metadata;
    }
    if let Some(v4) = translated_ipv4(ip) {
        return classify_v4(v4);
    }
    if let Some(v4) = compatible_ipv4(ip) {
        // IPv4-compatible addresses are deprecated (RFC 4291), so no legitimate receiver lives
        // at one even when the IPv4 address inside is public.
        return match classify_v4(v4) {
            AddressClass::Public => AddressClass::Reserved,
            refused => refused,
        };
    }
    first_match(&SPECIAL_V6, IpAddr::V6(ip)).unwrap_or(AddressClass::Reserved)
}

fn first_match(table: &[(Cidr, AddressClass)], ip: IpAddr) -> Option<AddressClass> {
    table.iter().find(|(cidr, _)| cidr.contains(ip)).map(|(_, class)| *class)
}

/// The IPv4 address behind an IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) or 6to4
/// (2002::/16) address: a connection to one of these reaches that IPv4 host.
fn translated_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, c, d, e, f, ..] = ip.segments();
    let [.., w, x, y, z] = ip.octets();
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if [a, b, c, d, e, f] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(Ipv4Addr::new(w, x, y, z))
    } else if a == 0x2002 {
        Some(Ipv4Addr::from((u32::from(b) << 16) | u32::from(c)))
    } else {
        None
    }
}

/// The IPv4 address inside an IPv4-compatible address (::a.b.c.d), leaving out :: and ::1.
fn compatible_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [.., w, x, y, z] = ip.octets();
    let bits = u128::from(ip);
    (bits >> 32 == 0 && bits > 1).then_some(Ipv4Addr::new(w, x, y, z))
}

/// A block of addresses such as `10.0.0.0/8` or `fd00::/8`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// Kept with its host bits cleared, so that `contains` is one masked comparison and
    /// `Display` shows the block an operator actually allowed.
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    const fn v4([a, b, c, d]: [u8; 4], prefix_len: u8) -> Self {
        let network = IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        Cidr { network, prefix_len }
    }

    const fn v6([a, b, c, d, e, f, g, h]: [u16; 8], prefix_len: u8) -> Self {
        let network = IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h));
        Cidr { network, prefix_len }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this block. An IPv4-mapped IPv6 address is the same IPv4 socket, so
    /// it matches IPv4 blocks too; NAT64 and 6to4 addresses go through a translator and don't.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix_len) == self.network
            }
            (IpAddr::V4(_), IpAddr::V6(v6)) => {
                v6.to_ipv4_mapped().is_some_and(|v4| self.contains(IpAddr::V4(v4)))
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// Clears the host bits of `ip`; `prefix_len` is at most the family's width.
fn mask(ip: IpAddr, prefix_len: u8) -> IpAddr {
    let len = u32::from(prefix_len);
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let text = || text.to_owned();
        let address: IpAddr =
            address.parse().map_err(|source| CidrError::BadAddress { text: text(), source })?;
        let max: u8 = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len: u32 = match prefix {
            None => u32::from(max),
            // Digits only, because `u32::from_str` would also take a leading `+`.
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().map_err(|_| CidrError::BadPrefix { text: text() })?
            }
            Some(_) => return Err(CidrError::BadPrefix { text: text() }),
        };
        let prefix_len = u8::try_from(prefix_len)
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| CidrError::PrefixTooLong { text: text(), max })?;
        let network = mask(address, prefix_len);
        Ok(Cidr { network, prefix_len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Why text is not a CIDR block; each message quotes the text so the operator can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{text}` is not an IP address or CIDR block such as 10.0.0.0/8 or fd00::/8")]
    BadAddress {
        text: String,
        #[source]
        source: AddrParseError,
    },
    #[error("`{text}` has a prefix length that is not a number")]
    BadPrefix { text: String },
    #[error("`{text}` has a prefix length longer than the address's {max} bits")]
    PrefixTooLong { text: String, max: u8 },
}

/// Which addresses deliveries may connect to: public ones, plus the operator's exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// From `allowed_cidrs` / `HERALD_ALLOWED_CIDRS`. Checked before classification so that an
    /// operator can deliberately allow any address, such as a receiver on the private network.
    allowed: Vec<Cidr>,
}

impl AddressPolicy {
    pub fn new(allowed: Vec<Cidr>) -> Self {
        AddressPolicy { allowed }
    }

    /// Parses the comma-separated `allowed_cidrs` setting; blank entries are skipped so that a
    /// trailing comma or an empty setting is harmless.
    pub fn parse_list(text: &str) -> Result<Vec<Cidr>, CidrError> {
        text.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(str::parse).collect()
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allowed.iter().any(|cidr| cidr.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            AddressClass::Public => Ok(()),
            class => Err(Refused { address: ip, class }),
        }
    }
}

/// A delivery address the policy turned down, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    address: IpAddr,
    class: AddressClass,
}

impl Refused {
    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn class(&self) -> AddressClass {
        self.class
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.address, self.class)?;
        // Without this, "2002:7f00:1:: is a loopback address" would look like a mistake.
        if let IpAddr::V6(v6) = self.address
            && let Some(v4) = translated_ipv4(v6).or_else(|| compatible_ipv4(v6))
        {
            write!(f, " (it embeds the IPv4 address {v4})")?;
        }
        write!(
            f,
            "; webhooks are not delivered to it unless a block in `allowed_cidrs` \
             (HERALD_ALLOWED_CIDRS) contains it"
        )
    }
}

impl std::error::Error for Refused {}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("the DNS lookup failed")]
    Dns(#[source] io::Error),
    #[error("the DNS lookup returned no addresses")]
    NoAddresses,
}

/// Resolves `host` and returns the socket addresses a delivery may connect to; an IP literal
/// (IPv6 with or without brackets) is checked without asking DNS.
///
/// If ANY resolved address is refused, the whole host is refused with the first such address,
/// rather than connecting to the public addresses only. An answer that mixes public and
/// internal records is what DNS rebinding looks like, and a receiver that is sometimes
/// reachable and sometimes not would be harder to diagnose than a clear refusal; an operator
/// who really has such a host can list the internal block in `allowed_cidrs`.
pub async fn resolve_checked(
    policy: &AddressPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Some(ip) = ip_literal(host) {
        policy.check(ip)?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolved = tokio::net::lookup_host((host, port)).await.map_err(ResolveError::Dns)?;
    check_every(policy, resolved.collect())
}

/// The refusal the guard will make for deliveries to `url`, when that is known without asking
/// DNS: an IP-literal host the policy refuses, or `localhost` (and names under `.localhost`,
/// which RFC 6761 reserves for the loopback interface). Other names are not resolved here (the
/// answer is not the one a delivery will get, and saving an endpoint should not wait on DNS or
/// let a caller probe the operator's resolver): the guard checks them at every delivery.
pub fn refusal_known_now(policy: &AddressPolicy, url: &url::Url) -> Option<Refused> {
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name != "localhost" && !name.ends_with(".localhost") {
                return None;
            }
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    };
    policy.check(ip).err()
}

fn ip_literal(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse().ok(),
    }
}

fn check_every(policy: &AddressPolicy, addresses: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, ResolveError> {
    if addresses.is_empty() {
        return Err(ResolveError::NoAddresses);
    }
    for address in &addresses {
        policy.check(address.ip())?;
    }
    Ok(addresses)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
