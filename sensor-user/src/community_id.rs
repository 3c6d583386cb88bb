//! Community ID v1 flow hashing (Corelight community-id-spec): the one place that turns a flow's
//! addresses, protocol and ports into the `1:<base64 SHA-1>` string that lets EVE records be
//! joined with Zeek, Suricata and other monitors' logs.

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_SCTP: u8 = 132;

/// Computes the Community ID v1 of a flow.
///
/// For ICMP and ICMPv6 pass the message type as `src_port` and the code as `dst_port`. Protocols
/// other than TCP, UDP, SCTP, ICMP and ICMPv6 are hashed without ports, so their port arguments
/// are ignored. The result is the same whichever endpoint is given as the source, except for
/// one-way ICMP messages, whose direction is part of their identity.
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    src_port: u16,
    dst_port: u16,
) -> String {
    let has_ports = matches!(
        proto,
        PROTO_ICMP | PROTO_TCP | PROTO_UDP | PROTO_ICMPV6 | PROTO_SCTP
    );
    // Zeroing unused ports keeps them from influencing the endpoint order below.
    let (src_port, dst_port, one_way) = match proto {
        PROTO_ICMP => icmp_ports(icmpv4_counterpart, src_port, dst_port),
        PROTO_ICMPV6 => icmp_ports(icmpv6_counterpart, src_port, dst_port),
        _ if has_ports => (src_port, dst_port, false),
        _ => (0, 0, false),
    };

    let mut lo = (octets(src), src_port);
    let mut hi = (octets(dst), dst_port);
    // Addresses compare as network-order bytes and ports as numbers, which is the same as
    // comparing their big-endian encodings, as the reference implementation does.
    if !one_way && lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }

    let mut hasher = Sha1::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(&lo.0);
    hasher.update(&hi.0);
    // The zero byte pads the protocol so the hash input stays 32-bit aligned.
    hasher.update([proto, 0]);
    if has_ports {
        hasher.update(lo.1.to_be_bytes());
        hasher.update(hi.1.to_be_bytes());
    }
    format!("1:{}", STANDARD.encode(hasher.finalize()))
}

fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Maps an ICMP type and code to port equivalents the way Zeek does: request/response types pair
/// with their counterpart, making the flow two-way; any other type is a one-way message whose code
/// stays in the hash. Returns `(src_port, dst_port, one_way)`.
fn icmp_ports(counterpart: fn(u8) -> Option<u8>, ty: u16, code: u16) -> (u16, u16, bool) {
    // A "type" above 255 cannot come off the wire; like the reference it has no counterpart.
    match u8::try_from(ty).ok().and_then(counterpart) {
        Some(other) => (ty, u16::from(other), false),
        None => (ty, code, true),
    }
}

fn icmpv4_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        8 => 0,   // echo request -> echo reply
        0 => 8,   // echo reply -> echo request
        13 => 14, // timestamp -> timestamp reply
        14 => 13, // timestamp reply -> timestamp
        15 => 16, // information request -> information reply
        16 => 15, // information reply -> information request
        10 => 9,  // router solicitation -> router advertisement
        9 => 10,  // router advertisement -> router solicitation
        17 => 18, // address mask request -> address mask reply
        18 => 17, // address mask reply -> address mask request
        _ => return None,
    })
}

fn icmpv6_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        128 => 129, // echo request -> echo reply
        129 => 128, // echo reply -> echo request
        133 => 134, // router solicitation -> router advertisement
        134 => 133, // router advertisement -> router solicitation
        135 => 136, // neighbor solicitation -> neighbor advertisement
        136 => 135, // neighbor advertisement -> neighbor solicitation
        130 => 131, // MLD listener query -> MLD listener report
        131 => 130, // MLD listener report -> MLD listener query
        139 => 140, // node information query -> node information response
        140 => 139, // node information response -> node information query
        144 => 145, // home agent address discovery request -> reply
        145 => 144, // home agent address discovery reply -> request
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(src, dst, proto, src port or ICMP type, dst port or ICMP code, ID with seed 0, ID with
    /// seed 1)`; port-less protocols carry zero ports.
    type Vector = (
        &'static str,
        &'static str,
        u8,
        u16,
        u16,
        &'static str,
        &'static str,
    );

    /// From corelight/community-id-spec, baseline/README.md ("Default settings" and "A custom
    /// seed=1 value" tables).
    #[rustfmt::skip]
    const SPEC_README: &[Vector] = &[
        ("1.2.3.4", "5.6.7.8", 6, 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
        ("5.6.7.8", "1.2.3.4", 6, 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
        ("1.2.3.4", "5.6.7.8", 17, 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
        ("5.6.7.8", "1.2.3.4", 17, 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
        ("1.2.3.4", "5.6.7.8", 132, 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s="),
        ("5.6.7.8", "1.2.3.4", 132, 3344, 1122, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s="),
        ("1.2.3.4", "5.6.7.8", 1, 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
        ("5.6.7.8", "1.2.3.4", 1, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
        ("1.2.3.4", "5.6.7.8", 1, 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:1DD7cWGC/Yg91YGsQeni8du3pIA="),
        ("fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 58, 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
        ("fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", 58, 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
        ("fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 58, 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10=", "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s="),
        ("1.2.3.4", "5.6.7.8", 46, 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
        ("5.6.7.8", "1.2.3.4", 46, 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
        ("fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 46, 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="),
        ("fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", 46, 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="),
    ];

    /// From corelight/community-id-spec, baseline/baseline_deflt.json and baseline_seed1.json
    /// (tuples taken from real traces).
    #[rustfmt::skip]
    const SPEC_BASELINE_JSON: &[Vector] = &[
        ("2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 6, 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        ("2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 6, 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        ("128.232.110.120", "66.35.250.204", 6, 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        ("192.168.1.52", "8.8.8.8", 17, 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        ("8.8.8.8", "192.168.1.52", 17, 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        ("192.168.170.8", "192.168.170.56", 132, 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        ("192.168.170.56", "192.168.170.8", 132, 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        ("10.0.0.1", "10.0.0.2", 1, 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
        ("3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
        ("3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
        ("fe80::200:86ff:fe05:80da", "ff02::2", 58, 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
        ("10.1.12.1", "10.1.12.2", 46, 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        ("10.1.12.2", "10.1.12.1", 46, 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    ];

    /// From corelight/pycommunityid, tests/communityid_test.py (the first and third
    /// `CommunityID` configurations: defaults and seed=1). ICMP rows are raw type/code.
    #[rustfmt::skip]
    const PYCOMMUNITYID_TESTS: &[Vector] = &[
        ("192.168.0.89", "192.168.0.1", 1, 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        ("192.168.0.1", "192.168.0.89", 1, 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        ("192.168.0.1", "192.168.0.89", 1, 0, 20, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        ("192.168.0.89", "192.168.0.1", 1, 20, 0, "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=", "1:lCXHHxavE1Vq3oX9NH5ladQg02o="),
        ("192.168.0.89", "192.168.0.1", 1, 20, 1, "1:tz/fHIDUHs19NkixVVoOZywde+I=", "1:Ie3wmFyxiEyikbsbcO03d2nh+PM="),
        ("fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        ("fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        // One-way type 3 (time exceeded): the two directions must hash differently.
        ("3ffe:507:0:1:260:97ff:fe07:69ea", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 3, 0, "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=", "1:OlOWx9psIbBFi7lOCw/4MhlKR9M="),
        ("3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:507:0:1:260:97ff:fe07:69ea", 58, 3, 0, "1:/OGBt9BN1ofenrmSPWYicpij2Vc=", "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE="),
        ("192.168.170.8", "192.168.170.56", 132, 7, 80, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="),
        ("192.168.170.56", "192.168.170.8", 132, 80, 7, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="),
        ("128.232.110.120", "66.35.250.204", 6, 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        ("66.35.250.204", "128.232.110.120", 6, 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        // pycommunityid issue #3: port bytes must be big-endian.
        ("10.0.0.1", "10.0.0.2", 6, 10, 11569, "1:SXBGMX1lBOwhhoDrZynfROxnhnM=", "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo="),
        ("192.168.1.52", "8.8.8.8", 17, 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        ("10.1.24.4", "10.1.12.1", 46, 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="),
        ("10.1.12.1", "10.1.24.4", 46, 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="),
    ];

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address parses")
    }

    fn check(vectors: &[Vector]) {
        for &(src, dst, proto, sport, dport, seed0, seed1) in vectors {
            for (seed, expected) in [(0, seed0), (1, seed1)] {
                assert_eq!(
                    community_id_v1(seed, ip(src), ip(dst), proto, sport, dport),
                    expected,
                    "seed {seed}: [{proto}] {src}/{sport} -> {dst}/{dport}"
                );
            }
        }
    }

    #[test]
    fn matches_spec_readme_tables() {
        check(SPEC_README);
    }

    #[test]
    fn matches_spec_baseline_json() {
        check(SPEC_BASELINE_JSON);
    }

    #[test]
    fn matches_pycommunityid_tests() {
        check(PYCOMMUNITYID_TESTS);
    }

    #[test]
    fn tcp_is_direction_independent() {
        let (a, b) = (ip("10.0.0.1"), ip("127.0.0.1"));
        assert_eq!(
            community_id_v1(0, a, b, PROTO_TCP, 1234, 80),
            community_id_v1(0, b, a, PROTO_TCP, 80, 1234)
        );
    }

    #[test]
    fn one_way_icmp_is_not_swapped() {
        // Destination unreachable 3/1 from the larger address: hashed exactly as given, laid out
        // per the spec (seed, src, dst, proto, pad, type, code), not reordered.
        let (src, dst) = (ip("10.0.0.2"), ip("10.0.0.1"));
        let input = [0, 0, 10, 0, 0, 2, 10, 0, 0, 1, PROTO_ICMP, 0, 0, 3, 0, 1];
        let expected = format!("1:{}", STANDARD.encode(Sha1::digest(input)));

        assert_eq!(community_id_v1(0, src, dst, PROTO_ICMP, 3, 1), expected);
        assert_ne!(
            community_id_v1(0, src, dst, PROTO_ICMP, 3, 1),
            community_id_v1(0, dst, src, PROTO_ICMP, 3, 1)
        );
    }
}
