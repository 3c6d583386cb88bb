//! The exact bytes of the EVE records the live agent builds outside the inspection pipeline
//! (the kernel's flow records, drop records), which `cargo xtask eve-diff` cannot reach
//! through `precinct replay`. Field order and spelling are what SOC pipelines parse: a change
//! here must be deliberate.

use precinct::{
    eve::{
        drop::{drop_record, Names},
        flow::{flow_record, Inspected},
    },
    flows::{Clock, Reason},
};
use sensor_common::{
    flow::{FlowKey, FlowStats},
    head::HeadRecord,
    parse::{ipproto, FAMILY_IPV4, FAMILY_IPV6},
    Hook,
};
use tests::packets::{eth, icmp, ipv4, tcp, udp, v6_frame, V4};

fn key_v4(a: [u8; 4], pa: u16, b: [u8; 4], pb: u16, proto: u8, vlan: u16) -> FlowKey {
    let mut k = FlowKey {
        proto,
        family: FAMILY_IPV4,
        port_a: pa,
        port_b: pb,
        vlan,
        ifindex: 3,
        ..Default::default()
    };
    k.addr_a[..4].copy_from_slice(&a);
    k.addr_b[..4].copy_from_slice(&b);
    k
}

const CLOCK: Clock = Clock {
    offset_ns: 1_700_000_000_000_000_000,
};

#[test]
fn kernel_flow_records_byte_for_byte() {
    let tcp_key = key_v4([10, 0, 0, 1], 443, [10, 0, 0, 2], 40000, ipproto::TCP, 7);
    let tcp_stats = FlowStats {
        pkts: [4, 5],
        bytes: [400, 500],
        first_ns: 1_000_000_000,
        last_ns: 3_500_123_000,
        tcp_flags: [0x12 | 0x01, 0x02 | 0x10 | 0x08 | 0x01 | 0x04],
        client_dir: 1,
        ..Default::default()
    };
    let r = flow_record(
        &tcp_key,
        &tcp_stats,
        Reason::Timeout,
        &CLOCK,
        Some("veth0"),
        Inspected::default(),
    );
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:21.000000+0000","flow_id":1164592219753027,"in_iface":"veth0","event_type":"flow","vlan":[7],"src_ip":"10.0.0.2","src_port":40000,"dest_ip":"10.0.0.1","dest_port":443,"proto":"TCP","community_id":"1:bq1gfha1rMUJ4e03KhqNdBPyCdI=","flow":{"pkts_toserver":5,"pkts_toclient":4,"bytes_toserver":500,"bytes_toclient":400,"start":"2023-11-14T22:13:21.000000+0000","end":"2023-11-14T22:13:23.500123+0000","age":2,"state":"closed","reason":"timeout","alerted":false},"tcp":{"tcp_flags":"1f","tcp_flags_ts":"1f","tcp_flags_tc":"13","syn":true,"fin":true,"rst":true,"psh":true,"ack":true}}"#
    );

    let mut icmp_key = FlowKey {
        proto: ipproto::ICMPV6,
        family: FAMILY_IPV6,
        port_a: 9,
        port_b: 9,
        ..Default::default()
    };
    icmp_key.addr_a = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .expect("v6")
        .octets();
    icmp_key.addr_b = "2001:db8::2"
        .parse::<std::net::Ipv6Addr>()
        .expect("v6")
        .octets();
    let icmp_stats = FlowStats {
        pkts: [3, 3],
        bytes: [294, 294],
        first_ns: 5,
        last_ns: 6,
        icmp_type: [128, 129],
        client_dir: 0,
        ..Default::default()
    };
    let r = flow_record(
        &icmp_key,
        &icmp_stats,
        Reason::Shutdown,
        &CLOCK,
        None,
        Inspected::default(),
    );
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:20.000000+0000","flow_id":1389676967317457,"event_type":"flow","src_ip":"2001:db8::1","dest_ip":"2001:db8::2","proto":"IPv6-ICMP","icmp_type":128,"icmp_code":0,"response_icmp_type":129,"response_icmp_code":0,"community_id":"1:u2vMS3HiWth2lIMKHB1fjELshpQ=","flow":{"pkts_toserver":3,"pkts_toclient":3,"bytes_toserver":294,"bytes_toclient":294,"start":"2023-11-14T22:13:20.000000+0000","end":"2023-11-14T22:13:20.000000+0000","age":0,"state":"established","reason":"shutdown","alerted":false}}"#
    );

    // SCTP keeps its ports in the kernel's flow record.
    let sctp_key = key_v4([192, 0, 2, 1], 3868, [192, 0, 2, 9], 5000, 132, 0);
    let sctp_stats = FlowStats {
        pkts: [1, 0],
        bytes: [98, 0],
        first_ns: 10,
        last_ns: 10,
        client_dir: 0,
        ..Default::default()
    };
    let r = flow_record(
        &sctp_key,
        &sctp_stats,
        Reason::Forced,
        &CLOCK,
        None,
        Inspected::default(),
    );
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:20.000000+0000","flow_id":426924464847704,"event_type":"flow","src_ip":"192.0.2.1","src_port":3868,"dest_ip":"192.0.2.9","dest_port":5000,"proto":"SCTP","community_id":"1:JZyU9InqM4apt9bGb09BCGlkJj4=","flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":98,"bytes_toclient":0,"start":"2023-11-14T22:13:20.000000+0000","end":"2023-11-14T22:13:20.000000+0000","age":0,"state":"new","reason":"forced","alerted":false}}"#
    );
}

fn head(key: FlowKey, hook: Hook, why: u8, list: u8, act: u8, frame: &[u8]) -> HeadRecord {
    HeadRecord {
        ts_ns: 2_000_000_000,
        key,
        orig_len: frame.len() as u32,
        cap_len: frame.len() as u16,
        hook: hook as u8,
        _pad: [why, list, act],
        ..Default::default()
    }
}

#[test]
fn drop_records_byte_for_byte() {
    let names = Names {
        lists: vec!["none".into(), "manual".into(), "tor".into()],
        ifaces: [(3, "veth0".to_string())].into_iter().collect(),
    };
    let v4 = V4::new([198, 51, 100, 7], [10, 0, 0, 1], ipproto::TCP);
    let frame = eth(&[12], 0x0800, &ipv4(&v4, &tcp(5555, 22, 0x02, b"")));
    let key = key_v4([10, 0, 0, 1], 22, [198, 51, 100, 7], 5555, ipproto::TCP, 12);
    let r = drop_record(
        &head(key, Hook::Ingress, 3, 2, 1, &frame),
        &frame,
        &CLOCK,
        &names,
    );
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:22.000000+0000","in_iface":"veth0","event_type":"drop","vlan":[12],"src_ip":"198.51.100.7","src_port":5555,"dest_ip":"10.0.0.1","dest_port":22,"proto":"TCP","drop":{"len":40,"tos":0,"ttl":64,"ipid":4660,"tcpseq":1,"tcpack":0,"tcpwin":65535,"syn":true,"ack":false,"psh":false,"rst":false,"urg":false,"fin":false,"reason":"own_prefix_spoofed","list":"tor","mode":"prevent","hook":"ingress"}}"#
    );

    let frame = v6_frame(
        "2001:db8::5",
        "2001:db8::6",
        ipproto::UDP,
        &udp(53, 4000, b"abc"),
    );
    let mut key6 = FlowKey {
        family: FAMILY_IPV6,
        proto: ipproto::UDP,
        ifindex: 3,
        ..Default::default()
    };
    key6.port_a = 53;
    let r = drop_record(
        &head(key6, Hook::Egress, 1, 0, 0, &frame),
        &frame,
        &CLOCK,
        &names,
    );
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:22.000000+0000","out_iface":"veth0","event_type":"drop","src_ip":"2001:db8::5","src_port":53,"dest_ip":"2001:db8::6","dest_port":4000,"proto":"UDP","drop":{"len":51,"tc":0,"hoplimit":64,"flowlbl":0,"udplen":11,"reason":"blocklist","mode":"monitor","hook":"egress"}}"#
    );

    let v4 = V4::new([203, 0, 113, 9], [10, 0, 0, 1], ipproto::ICMP);
    let frame = eth(&[], 0x0800, &ipv4(&v4, &icmp(8, 0, 1, 1, b"ping")));
    let key = key_v4([10, 0, 0, 1], 1, [203, 0, 113, 9], 1, ipproto::ICMP, 0);
    let mut unnamed = head(key, Hook::Ingress, 2, 9, 1, &frame);
    unnamed.key.ifindex = 99;
    let r = drop_record(&unnamed, &frame, &CLOCK, &names);
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:22.000000+0000","event_type":"drop","src_ip":"203.0.113.9","dest_ip":"10.0.0.1","proto":"ICMP","icmp_type":8,"icmp_code":0,"drop":{"len":32,"tos":0,"ttl":64,"ipid":4660,"reason":"bogon","mode":"prevent","hook":"ingress"}}"#
    );

    // A frame the kernel cut inside the TCP header: no ports or TCP fields, rather than bytes
    // read from the wrong place.
    let v4 = V4::new([198, 51, 100, 8], [10, 0, 0, 1], ipproto::TCP);
    let whole = eth(&[], 0x0800, &ipv4(&v4, &tcp(5556, 443, 0x12, b"")));
    let frame = &whole[..14 + 20 + 14];
    let key = key_v4([10, 0, 0, 1], 443, [198, 51, 100, 8], 5556, ipproto::TCP, 0);
    let r = drop_record(
        &head(key, Hook::Ingress, 4, 1, 0, frame),
        frame,
        &CLOCK,
        &names,
    );
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"timestamp":"2023-11-14T22:13:22.000000+0000","in_iface":"veth0","event_type":"drop","src_ip":"198.51.100.8","dest_ip":"10.0.0.1","proto":"TCP","drop":{"len":40,"tos":0,"ttl":64,"ipid":4660,"reason":"egress_spoofed","list":"manual","mode":"monitor","hook":"ingress"}}"#
    );
}
