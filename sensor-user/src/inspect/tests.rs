//! The pipeline end to end on frames built here.

use super::*;
use sensor_common::parse::ethertype;

/// An Ethernet + IPv4 + UDP frame from 192.0.2.1:1000 to 192.0.2.2:2000.
fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    let total = (20 + 8 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    // id, flags, TTL, protocol, checksum (unchecked), addresses
    f.extend_from_slice(&[0, 0, 0, 0, 64, ipproto::UDP, 0, 0]);
    f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend_from_slice(&1000u16.to_be_bytes());
    f.extend_from_slice(&2000u16.to_be_bytes());
    f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn timestamps_at_the_end_of_time_do_not_overflow() {
    // Found by the pcap_reader fuzz target: a pcapng timestamp that saturates to u64::MAX
    // ns made the next packet's sweep check overflow.
    let eve = EveWriter::from_writer(Box::new(std::io::sink()));
    let mut p = Pipeline::new(InspectConfig::default(), eve);
    let frame = udp_frame(b"x");
    p.packet(u64::MAX, 1, &frame).expect("first packet");
    p.packet(u64::MAX, 1, &frame).expect("second packet");
    p.tick(u64::MAX).expect("tick");
    p.finish().expect("finish");
    assert_eq!(p.stats.packets, 2);
    assert_eq!(p.stats.flows, 1);
}
