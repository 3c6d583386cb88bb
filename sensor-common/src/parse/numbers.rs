//! Protocol numbers the parser reads: ethertypes, PPP protocols, IP protocols.

/// Ethertypes the parser understands.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// The pre-standard QinQ outer tag some switches still send.
    pub const QINQ_OLD: u16 = 0x9100;
    /// PPPoE session stage (RFC 2516): PPP frames, IP among them.
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// Cisco FabricPath (Suricata's "DCE"): a 2-byte FTag/TTL, then the original frame.
    pub const FABRICPATH: u16 = 0x8903;
    /// 802.1ah provider backbone bridging: an I-TAG, then the customer's frame.
    pub const PBB: u16 = 0x88e7;
    /// Cisco VN-Tag: a 4-byte tag, then the ethertype.
    pub const VNTAG: u16 = 0x8926;
}

/// PPP protocol numbers carried by PPPoE.
pub(super) mod ppp {
    pub const IPV4: u16 = 0x0021;
    pub const IPV6: u16 = 0x0057;
}

/// IP protocol numbers the parser understands.
pub mod ipproto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated in IP.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IP.
    pub const IPV6_IN_IP: u8 = 41;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// Stream Control Transmission Protocol.
    pub const SCTP: u8 = 132;

    /// Transports whose flows are told apart by ports (the parser reads them).
    pub const fn has_ports(proto: u8) -> bool {
        matches!(proto, TCP | UDP | SCTP)
    }
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NONE: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// IPv6 mobility header.
    pub const MOBILITY: u8 = 135;
}
