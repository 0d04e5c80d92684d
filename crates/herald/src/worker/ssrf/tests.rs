//! Tests of address classification, CIDR parsing, the policy and checked resolution.

use super::*;
use AddressClass::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Asserts that every whitespace-separated address in `addresses` is classified as `class`.
fn assert_class(class: AddressClass, addresses: &str) {
    for text in addresses.split_whitespace() {
        assert_eq!(classify(ip(text)), class, "{text}");
    }
}

fn allowing(list: &str) -> AddressPolicy {
    AddressPolicy::new(AddressPolicy::parse_list(list).unwrap())
}

#[test]
fn ipv4_special_ranges_and_the_addresses_just_outside_them() {
    assert_class(Unspecified, "0.0.0.0");
    assert_class(Reserved, "0.0.0.1 0.255.255.255 192.0.0.0 192.0.0.255");
    assert_class(Reserved, "192.88.99.1 240.0.0.0 255.255.255.254");
    assert_class(Private, "10.0.0.0 10.255.255.255 172.16.0.0 172.31.255.255");
    assert_class(Private, "192.168.0.0 192.168.255.255");
    assert_class(Shared, "100.64.0.0 100.127.255.255");
    assert_class(Loopback, "127.0.0.1 127.255.255.255");
    assert_class(LinkLocal, "169.254.0.1 169.254.255.255");
    assert_class(Documentation, "192.0.2.1 198.51.100.7 203.0.113.9");
    assert_class(Benchmarking, "198.18.0.0 198.19.255.255");
    assert_class(Multicast, "224.0.0.1 239.255.255.255");
    assert_class(Broadcast, "255.255.255.255");
    let just_outside = "1.0.0.0 9.255.255.255 11.0.0.0 100.63.255.255 100.128.0.0 \
        126.255.255.255 128.0.0.0 169.253.255.255 169.255.0.0 172.15.255.255 172.32.0.0 \
        191.255.255.255 192.0.1.0 192.0.3.0 192.167.255.255 192.169.0.0 198.17.255.255 \
        198.20.0.0 198.51.99.255 198.51.101.0 203.0.112.255 203.0.114.0 223.255.255.255";
    assert_class(Public, just_outside);
}

#[test]
fn ipv6_special_ranges_and_the_addresses_just_outside_them() {
    assert_class(Unspecified, "::");
    assert_class(Loopback, "::1");
    assert_class(UniqueLocal, "fc00::1 fdff:ffff::1");
    assert_class(LinkLocal, "fe80::1 febf:ffff::1");
    assert_class(Multicast, "ff02::1 ff0e::1");
    assert_class(Documentation, "2001:db8::1 2001:db8:ffff::1");
    assert_class(Documentation, "3fff::1 3fff:fff::1");
    assert_class(Benchmarking, "2001:2::1");
    // IETF assignments (Teredo, ORCHIDs), and space outside 2000::/3 such as discard-only,
    // local NAT64, SRv6 and deprecated site-local.
    assert_class(Reserved, "2001::1 2001:10::1 2001:20::1 2001:1ff:ffff::1");
    assert_class(Reserved, "100::1 100:0:0:1::1 64:ff9b:1::1 5f00::1 fec0::1");
    assert_class(Reserved, "1fff:ffff::1 4000::1 fbff:ffff::1");
    let just_outside = "2000::1 2001:200::1 2001:db7:ffff::1 2001:db9::1 3ffe::1 3fff:1000::1";
    assert_class(Public, just_outside);
}

#[test]
fn well_known_public_resolvers_are_public() {
    let resolvers = "8.8.8.8 1.1.1.1 2606:4700:4700::1111 2a00:1450:4001::1";
    assert_class(Public, resolvers);
}

#[test]
fn ipv6_forms_that_reach_ipv4_hosts_are_judged_by_the_ipv4_inside() {
    let loopback = "::ffff:127.0.0.1 64:ff9b::7f00:1 2002:7f00:0001:: ::127.0.0.1";
    assert_class(Loopback, loopback);
    assert_class(Private, "::ffff:10.0.0.1 64:ff9b::a00:1");
    assert_class(Metadata, "::ffff:169.254.169.254 2002:a9fe:a9fe::1");
    assert_class(Public, "::ffff:8.8.8.8 64:ff9b::808:808 2002:808:808::1");
    // IPv4-compatible addresses are deprecated, so even a public one inside is refused.
    assert_class(Reserved, "::8.8.8.8");
}

#[test]
fn metadata_endpoints_are_named_before_their_ranges() {
    let metadata = "169.254.169.254 169.254.170.2 100.100.100.200 168.63.129.16 fd00:ec2::254";
    assert_class(Metadata, metadata);
    assert_class(LinkLocal, "169.254.169.253");
    assert_class(Shared, "100.100.100.201");
    assert_class(UniqueLocal, "fd00:ec2::253");
}

#[test]
fn special_range_tables_hold_normalised_blocks() {
    for (cidr, _) in SPECIAL_V4.iter().chain(&SPECIAL_V6) {
        assert_eq!(mask(cidr.network, cidr.prefix_len), cidr.network, "{cidr}");
    }
}

#[test]
fn cidrs_parse_blocks_and_bare_hosts() {
    let block: Cidr = "127.0.0.0/8".parse().unwrap();
    assert!(block.contains(ip("127.1.2.3")));
    assert!(!block.contains(ip("128.0.0.0")));
    assert!(block.contains(ip("::ffff:127.0.0.1")));
    assert!(!block.contains(ip("64:ff9b::7f00:1")));

    let host: Cidr = "10.1.2.3".parse().unwrap();
    assert_eq!(host.to_string(), "10.1.2.3/32");
    assert!(host.contains(ip("10.1.2.3")));
    assert!(!host.contains(ip("10.1.2.4")));

    let loopback: Cidr = "::1/128".parse().unwrap();
    assert!(loopback.contains(ip("::1")));
    assert!(!loopback.contains(ip("127.0.0.1")));

    let sloppy: Cidr = "192.168.1.10/24".parse().unwrap();
    assert_eq!(sloppy.to_string(), "192.168.1.0/24");
    assert_eq!((sloppy.network(), sloppy.prefix_len()), (ip("192.168.1.0"), 24));

    let everything: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(everything.contains(ip("255.255.255.255")));
    assert!(!everything.contains(ip("2001:db8::1")));
    assert!("::/0".parse::<Cidr>().unwrap().contains(ip("ff02::1")));
}

#[test]
fn bad_cidrs_say_what_is_wrong() {
    let kind = |text: &str| match text.parse::<Cidr>().unwrap_err() {
        CidrError::BadAddress { .. } => "address",
        CidrError::BadPrefix { .. } => "prefix",
        CidrError::PrefixTooLong { .. } => "too long",
    };
    for text in ["10.0.0/8", "example.com", "", "/8", "[::1]"] {
        assert_eq!(kind(text), "address", "{text}");
    }
    for text in ["10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/8.5", "::/99999999999"] {
        assert_eq!(kind(text), "prefix", "{text}");
    }
    for text in ["10.0.0.0/33", "::/129", "::ffff:1.2.3.4/200"] {
        assert_eq!(kind(text), "too long", "{text}");
    }
    let message = "10.0.0.0/33".parse::<Cidr>().unwrap_err().to_string();
    let expected = "`10.0.0.0/33` has a prefix length longer than the address's 32 bits";
    assert_eq!(message, expected);
}

#[test]
fn allow_lists_are_comma_separated_and_may_be_empty() {
    assert_eq!(AddressPolicy::parse_list("").unwrap(), vec![]);
    assert_eq!(AddressPolicy::parse_list("  ").unwrap(), vec![]);
    let list = AddressPolicy::parse_list(" 10.0.0.0/8 ,::1, ").unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].to_string(), "::1/128");
    let bad = AddressPolicy::parse_list("10.0.0.0/8, nope").unwrap_err();
    assert!(bad.to_string().contains("`nope`"), "{bad}");
}

fn refusal(policy: &AddressPolicy, text: &str) -> Refused {
    policy.check(ip(text)).unwrap_err()
}

#[test]
fn the_default_policy_allows_only_public_addresses() {
    let policy = AddressPolicy::default();
    assert_eq!(policy.check(ip("8.8.8.8")), Ok(()));
    let loopback = refusal(&policy, "127.0.0.1");
    assert_eq!(loopback.address(), ip("127.0.0.1"));
    let expected = "127.0.0.1 is a loopback address; webhooks are not delivered to it \
        unless a block in `allowed_cidrs` (HERALD_ALLOWED_CIDRS) contains it";
    assert_eq!(loopback.to_string(), expected);
    let mapped = refusal(&policy, "::ffff:10.0.0.1").to_string();
    let expected = "::ffff:10.0.0.1 is a private (RFC 1918) address (it embeds the IPv4 \
        address 10.0.0.1); webhooks are not delivered to it unless";
    assert!(mapped.starts_with(expected), "{mapped}");
    let metadata = refusal(&policy, "169.254.169.254").to_string();
    assert!(metadata.contains("cloud metadata service"), "{metadata}");
}

#[test]
fn allow_listed_blocks_win_over_classification() {
    let policy = allowing("127.0.0.0/8, 169.254.169.254");
    assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
    assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
    assert_eq!(policy.check(ip("169.254.169.254")), Ok(()));
    assert_eq!(refusal(&policy, "10.0.0.1").class(), Private);
    assert_eq!(refusal(&policy, "::1").class(), Loopback);
}

fn refused_class(result: Result<Vec<SocketAddr>, ResolveError>) -> AddressClass {
    match result {
        Err(ResolveError::Refused(refused)) => refused.class(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn ip_literals_are_checked_without_dns() {
    let default = AddressPolicy::default();
    for host in ["127.0.0.1", "[::1]", "::1"] {
        assert_eq!(refused_class(resolve_checked(&default, host, 80).await), Loopback);
    }
    // A public literal comes back as is; nothing is looked up or connected to.
    let public = resolve_checked(&default, "8.8.8.8", 443).await.unwrap();
    assert_eq!(public, vec!["8.8.8.8:443".parse().unwrap()]);

    let policy = allowing("127.0.0.0/8, ::1");
    let v4 = resolve_checked(&policy, "127.0.0.1", 80).await.unwrap();
    assert_eq!(v4, vec!["127.0.0.1:80".parse().unwrap()]);
    let v6 = resolve_checked(&policy, "[::1]", 443).await.unwrap();
    assert_eq!(v6, vec!["[::1]:443".parse().unwrap()]);
}

// `localhost` is answered from /etc/hosts, so this sends nothing over the network.
#[tokio::test]
async fn localhost_is_refused_unless_loopback_is_allowed() {
    let default = AddressPolicy::default();
    let refused = resolve_checked(&default, "localhost", 80).await;
    assert_eq!(refused_class(refused), Loopback);

    let policy = allowing("127.0.0.0/8, ::1");
    let allowed = resolve_checked(&policy, "localhost", 80).await.unwrap();
    assert!(!allowed.is_empty());
    assert!(allowed.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
}

#[test]
fn one_refused_record_refuses_the_whole_host() {
    let policy = AddressPolicy::default();
    let public: SocketAddr = "8.8.8.8:443".parse().unwrap();
    let private: SocketAddr = "10.0.0.1:443".parse().unwrap();
    assert_eq!(check_every(&policy, vec![public]).unwrap(), vec![public]);
    let mixed = check_every(&policy, vec![public, private]);
    assert!(matches!(mixed, Err(ResolveError::Refused(r)) if r.address() == private.ip()));
    let empty = check_every(&policy, vec![]);
    assert!(matches!(empty, Err(ResolveError::NoAddresses)));
}
