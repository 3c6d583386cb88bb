//! Kernel program tests through `BPF_PROG_TEST_RUN`: for the shared packet corpus and for
//! whole conversations, the XDP ingress and TC egress programs' verdicts, counters, flow map
//! and ring buffer of flow heads must equal what the host model (the same parser, accounting
//! and head selection, built for the host) says, after every packet.

use std::collections::BTreeMap;

use aya::{
    maps::{Array, MapData, RingBuf},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use precinct::datapath::{
    self,
    heads::{self, HeadControl, HeadMode},
    LoadOptions, Maps,
};
use sensor_common::{
    counters::id,
    flow::{FlowKey, FlowStats},
    head::{self as shared_head, HeadRecord, Settings},
    parse,
    pending::{self, Pending},
    programs, Hook,
};
use tests::{
    model::{pin_to_current_cpu, Model, TEST_RUN_IFINDEX},
    packets::{corpus, icmp, tcp as tcp_segment, v4_frame},
    require_root,
    session::{udp_frame, TcpSession},
};

const XDP_PASS: u32 = 2;
const TC_ACT_PIPE: u32 = 3;

fn assert_matches(model: &Model, maps: &Maps, hook: Hook, after: &str) {
    let counters = maps.counters(hook).expect("read counters");
    for (i, (got, want)) in counters.c.iter().zip(model.counters.c.iter()).enumerate() {
        assert_eq!(got, want, "{hook:?} counter {i} after {after}");
    }
    let mut flows: BTreeMap<FlowKey, FlowStats> =
        maps.flows().expect("read flows").into_iter().collect();
    for stats in flows.values_mut() {
        assert!(
            stats.first_ns > 0 && stats.last_ns >= stats.first_ns,
            "timestamps after {after}"
        );
        stats.first_ns = 1;
        stats.last_ns = 1;
    }
    assert_eq!(flows.len(), model.flows.len(), "flow count after {after}");
    for (key, want) in &model.flows {
        let got = flows
            .get(key)
            .unwrap_or_else(|| panic!("flow {key:?} missing after {after}"));
        assert_eq!(got, want, "flow {key:?} after {after}");
    }
}

/// Reads every record in the ring and compares them, in order, with the model's; the model's
/// list is emptied, and the records returned. `last_ts` carries the timestamp order check
/// across calls; each record's flow first-seen time must be the flow map's.
fn assert_records(
    ring: &mut RingBuf<MapData>,
    maps: &Maps,
    model: &mut Model,
    last_ts: &mut u64,
    after: &str,
) -> Vec<(HeadRecord, Vec<u8>)> {
    let mut got: Vec<(HeadRecord, Vec<u8>)> = Vec::new();
    while let Some(item) = ring.next() {
        let (rec, frame) = heads::parse_record(&item).expect("a well-formed record");
        got.push((rec, frame.to_vec()));
    }
    let flows: BTreeMap<FlowKey, FlowStats> =
        maps.flows().expect("read flows").into_iter().collect();
    for (rec, _) in &mut got {
        assert!(
            rec.ts_ns >= *last_ts,
            "record timestamps in order after {after}"
        );
        *last_ts = rec.ts_ns;
        rec.ts_ns = 0;
        let first = flows.get(&rec.key).map(|s| s.first_ns);
        assert_eq!(
            Some(rec.flow_first_ns),
            first,
            "flow first-seen after {after}"
        );
        rec.flow_first_ns = 1;
    }
    let want = std::mem::take(&mut model.records);
    assert_eq!(got.len(), want.len(), "ring-buffer records after {after}");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert_eq!(g.0, w.0, "record {i} header after {after}");
        assert!(g.1 == w.1, "record {i} bytes after {after}");
    }
    got
}

/// Inputs `BPF_PROG_TEST_RUN` itself refuses (EINVAL) before any program runs: frames shorter
/// than an Ethernet header, and for skb programs an IPv4/IPv6 header cut short. Real traffic of
/// that shape reaches the programs; the host parser tests cover those frames.
fn harness_refuses(hook: Hook, frame: &[u8]) -> bool {
    use sensor_common::parse::Outcome;
    let p = parse(frame);
    frame.len() < 14
        || (hook == Hook::Egress
            && matches!(p.outcome, Outcome::TruncatedIpv4 | Outcome::TruncatedIpv6)
            && frame.len()
                < (p.l3_off as usize)
                    + if p.family == 6 || p.ether_type == 0x86dd {
                        40
                    } else {
                        20
                    })
}

/// One `BPF_PROG_TEST_RUN` of the hook's program on `data`: its return value.
fn run_once(ebpf: &mut aya::Ebpf, hook: Hook, data: &[u8]) -> Result<u32, String> {
    let opts = TestRunOptions {
        data_in: Some(data),
        ..Default::default()
    };
    let result = match hook {
        Hook::Ingress => {
            let xdp: &mut Xdp = datapath::program_mut(ebpf, programs::INGRESS).expect("program");
            xdp.test_run(opts)
        }
        Hook::Egress => {
            let tc: &mut SchedClassifier =
                datapath::program_mut(ebpf, programs::EGRESS).expect("program");
            tc.test_run(opts)
        }
    };
    result.map(|r| r.return_value).map_err(|e| e.to_string())
}

fn load_program(ebpf: &mut Ebpf, hook: Hook) {
    match hook {
        Hook::Ingress => {
            let xdp: &mut Xdp = datapath::program_mut(ebpf, programs::INGRESS).expect("program");
            xdp.load().expect("the verifier accepts the XDP program");
        }
        Hook::Egress => {
            let tc: &mut SchedClassifier =
                datapath::program_mut(ebpf, programs::EGRESS).expect("program");
            tc.load().expect("the verifier accepts the TC program");
        }
    }
}

fn verdict(hook: Hook) -> u32 {
    match hook {
        Hook::Ingress => XDP_PASS,
        Hook::Egress => TC_ACT_PIPE,
    }
}

fn run_corpus(hook: Hook) {
    pin_to_current_cpu();
    let mut ebpf = datapath::load(1024).expect("load the eBPF object");
    let mut model = Model::new(Settings::DEFAULT);
    let frames = corpus();
    load_program(&mut ebpf, hook);
    let maps = Maps::take(&mut ebpf).expect("maps");
    let mut ring = heads::take_ring(&mut ebpf).expect("ring buffer");
    let mut last_ts = 0;
    // Two rounds: the second finds every flow already in the map.
    for round in 0..2 {
        for (name, frame) in &frames {
            let result = run_once(&mut ebpf, hook, frame);
            if harness_refuses(hook, frame) {
                assert!(
                    result.is_err(),
                    "{name}: the kernel's test harness should refuse it"
                );
                continue;
            }
            assert_eq!(result, Ok(verdict(hook)), "{hook:?} verdict for {name}");
            model.account(frame, hook);
            let after = format!("{name} (round {round})");
            assert_matches(&model, &maps, hook, &after);
            assert_records(&mut ring, &maps, &mut model, &mut last_ts, &after);
        }
    }
    assert!(
        model.counters.c[id::HEAD_RECORDS] > 0,
        "the corpus sends flow heads"
    );
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn xdp_ingress_matches_the_host_model() {
    require_root("xdp_ingress_matches_the_host_model");
    run_corpus(Hook::Ingress);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn tc_egress_matches_the_host_model() {
    require_root("tc_egress_matches_the_host_model");
    run_corpus(Hook::Egress);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn full_flow_map_counts_untracked_packets() {
    require_root("full_flow_map_counts_untracked_packets");
    // The smallest map the loader accepts here, filled by distinct UDP flows.
    let capacity = 64u32;
    let mut ebpf = datapath::load(capacity).expect("load");
    let xdp: &mut Xdp = datapath::program_mut(&mut ebpf, programs::INGRESS).expect("program");
    xdp.load().expect("verifier");
    let total = capacity + 10;
    for port in 0..total {
        let f = tests::packets::v4_frame(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            &tests::packets::udp(1000 + port as u16, 53, b"q"),
        );
        let r = xdp
            .test_run(TestRunOptions {
                data_in: Some(&f),
                ..Default::default()
            })
            .expect("run");
        assert_eq!(r.return_value, XDP_PASS, "a full flow map must never drop");
    }
    let maps = Maps::take(&mut ebpf).expect("maps");
    let c = maps.counters(Hook::Ingress).expect("counters");
    let tracked = maps.flows().expect("flows").len() as u64;
    assert_eq!(c.c[id::PACKETS], u64::from(total));
    assert_eq!(c.c[id::FLOWS_CREATED], tracked);
    assert!(tracked <= u64::from(capacity) && tracked > 0);
    assert_eq!(
        c.c[id::FLOWS_NOT_TRACKED] + tracked,
        u64::from(total),
        "every packet is either in a flow or counted as untracked"
    );
}

/// The sweep's batched read and delete (`BPF_MAP_LOOKUP_BATCH`, `BPF_MAP_DELETE_BATCH`) over
/// a map larger than one batch: every flow read once with its per-CPU values merged, and a
/// delete that meets keys already gone removes the others and nothing else.
#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn batched_reads_and_deletes_cover_the_whole_flow_map() {
    require_root("batched_reads_and_deletes_cover_the_whole_flow_map");
    let n = 10_000u32;
    let mut ebpf = datapath::load(16_384).expect("load");
    let mut maps = Maps::take(&mut ebpf).expect("maps");
    let cpus = aya::util::nr_cpus().expect("cpus") as u64;
    let key = |i: u32| {
        let mut k = FlowKey {
            proto: 17,
            family: parse::FAMILY_IPV4,
            port_a: (i & 0xffff) as u16,
            port_b: 53,
            ..FlowKey::default()
        };
        k.addr_a[..4].copy_from_slice(&(0x0a00_0000 | i).to_be_bytes());
        k.addr_b[..4].copy_from_slice(&[10, 255, 0, 1]);
        k
    };
    let mut want = BTreeMap::new();
    for i in 0..n {
        let stats = FlowStats {
            pkts: [u64::from(i) + 1, 2],
            bytes: [100, u64::from(i)],
            first_ns: 1_000 + u64::from(i),
            last_ns: 5_000 + u64::from(i),
            ..FlowStats::default()
        };
        maps.flows.insert(&key(i), stats).expect("insert");
        let merged = FlowStats {
            pkts: [stats.pkts[0] * cpus, 2 * cpus],
            bytes: [100 * cpus, stats.bytes[1] * cpus],
            ..stats
        };
        want.insert(key(i), merged);
    }
    let read = maps.flows().expect("batched read");
    assert_eq!(read.len(), n as usize, "each flow read once");
    let got: BTreeMap<FlowKey, FlowStats> = read.into_iter().collect();
    assert_eq!(got.len(), n as usize, "no flow read twice");
    for (k, w) in &want {
        let g = got.get(k).expect("every flow read");
        assert_eq!(
            (g.pkts, g.bytes, g.first_ns, g.last_ns),
            (w.pkts, w.bytes, w.first_ns, w.last_ns)
        );
    }
    // Every third key, with keys never inserted between them.
    let mut doomed = Vec::new();
    for i in (0..n).step_by(3) {
        doomed.push(key(i));
        doomed.push(key(n + i));
    }
    let removed = maps.flows.remove_all(&doomed).expect("batched delete");
    assert_eq!(removed, n.div_ceil(3) as usize);
    let left: Vec<FlowKey> = maps
        .flows()
        .expect("read")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected: Vec<FlowKey> = (0..n).filter(|i| i % 3 != 0).map(key).collect();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    let mut expected_sorted = expected;
    expected_sorted.sort();
    assert_eq!(left_sorted, expected_sorted);
}

/// A conversation through one hook with a small head, sampling, and control-map changes
/// (bypass, keep, back to normal) in the middle of flows: records, counters and flows equal the
/// model's after every packet.
fn heads_follow_budget_sampling_and_control(hook: Hook) {
    pin_to_current_cpu();
    let settings = Settings {
        head_bytes: 1000,
        sample_one_in: 4,
        ..Settings::DEFAULT
    };
    let mut ebpf = datapath::load_with(&LoadOptions {
        flow_capacity: 1024,
        ring_bytes: 1 << 20,
        heads: settings,
        ..LoadOptions::default()
    })
    .expect("load the eBPF object");
    load_program(&mut ebpf, hook);
    let maps = Maps::take(&mut ebpf).expect("maps");
    let mut ring = heads::take_ring(&mut ebpf).expect("ring buffer");
    let mut control = HeadControl::take(&mut ebpf, settings).expect("control maps");
    let mut model = Model::new(settings);
    let mut last_ts = 0;
    // Records by flag bits, to check every reason to send was exercised.
    let mut by_flags: BTreeMap<u8, usize> = BTreeMap::new();
    let mut send = |ebpf: &mut Ebpf, model: &mut Model, frame: &[u8], what: &str| {
        assert_eq!(run_once(ebpf, hook, frame), Ok(verdict(hook)), "{what}");
        model.account(frame, hook);
        assert_matches(model, &maps, hook, what);
        for (rec, _) in assert_records(&mut ring, &maps, model, &mut last_ts, what) {
            *by_flags.entry(rec.flags).or_default() += 1;
        }
    };
    let key_of = |frame: &[u8]| FlowKey::from_parsed(&parse(frame), TEST_RUN_IFINDEX).0;

    let (client, server) = ([10, 1, 0, 2], [10, 1, 0, 1]);
    let mut tcp = TcpSession::new(client, 40100, server, 80);
    let mut frames = tcp.handshake();
    frames.extend(tcp.client_data(&[b'q'; 2500], 400));
    frames.push(tcp.server_ack());
    frames.extend(tcp.server_data(&[b'r'; 3000], 1400));
    for _ in 0..6 {
        frames.push(tcp.client_ack());
    }
    for (i, f) in frames.iter().enumerate() {
        send(&mut ebpf, &mut model, f, &format!("tcp frame {i}"));
    }
    let tcp_key = key_of(&frames[0]);
    let dns = |i: u16| udp_frame(client, 53000, server, 53, &vec![i as u8; 300]);
    for i in 0..10 {
        send(&mut ebpf, &mut model, &dns(i), &format!("udp {i}"));
    }
    let udp_key = key_of(&dns(0));
    // A flow past its head in both directions still sends its FIN and RST.
    let mut upload = TcpSession::new(client, 40200, server, 443);
    let mut frames = upload.handshake();
    frames.extend(upload.client_data(&[b'u'; 3000], 1000));
    frames.extend(upload.server_data(&[b'd'; 3000], 1000));
    frames.push(upload.client_ack());
    frames.extend(upload.close());
    for (i, f) in frames.iter().enumerate() {
        send(&mut ebpf, &mut model, f, &format!("upload frame {i}"));
    }

    // Bypass the TCP flow: nothing more, not even its FIN.
    control.set(&tcp_key, HeadMode::Bypass).expect("bypass");
    model.set_mode(tcp_key, shared_head::mode::BYPASS);
    let mut tail = tcp.server_data(&[b's'; 800], 400);
    tail.extend(tcp.close());
    for (i, f) in tail.iter().enumerate() {
        send(&mut ebpf, &mut model, f, &format!("bypassed tcp frame {i}"));
    }
    // Keep the UDP flow: every datagram; then back to the head-and-samples rule.
    control.set(&udp_key, HeadMode::Keep).expect("keep");
    model.set_mode(udp_key, shared_head::mode::KEEP);
    for i in 10..15 {
        send(&mut ebpf, &mut model, &dns(i), &format!("kept udp {i}"));
    }
    control.set(&udp_key, HeadMode::Normal).expect("normal");
    model.set_mode(udp_key, shared_head::mode::NORMAL);
    for i in 15..25 {
        send(&mut ebpf, &mut model, &dns(i), &format!("normal udp {i}"));
    }

    for f in [
        shared_head::flag::HEAD,
        shared_head::flag::SAMPLE,
        shared_head::flag::KEEP,
        shared_head::flag::CLOSE,
    ] {
        assert!(
            by_flags.contains_key(&f),
            "no record with flags {f:#x}: {by_flags:?}"
        );
    }
    let c = &model.counters.c;
    let flows = &model.flows;
    // The rule as the documentation states it, checked on the model the kernel matched.
    let tcp_stats = &flows[&tcp_key];
    assert!(
        tcp_stats.head_sent.iter().all(|&s| s >= 1000),
        "{tcp_stats:?}"
    );
    assert_eq!(tcp_stats.head_mode, shared_head::mode::BYPASS);
    assert!(c[id::HEAD_RECORDS] > 10, "{:?}", &c[id::HEAD_RECORDS..]);
    assert_eq!(c[id::RINGBUF_RESERVE_FAILURES], 0);
    assert_eq!(control.settings().control_epoch, 3);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn xdp_flow_heads_match_the_host_model() {
    require_root("xdp_flow_heads_match_the_host_model");
    heads_follow_budget_sampling_and_control(Hook::Ingress);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn tc_flow_heads_match_the_host_model() {
    require_root("tc_flow_heads_match_the_host_model");
    heads_follow_budget_sampling_and_control(Hook::Egress);
}

/// A ring buffer too small for the traffic: every record is either read or counted as a
/// failed reservation, and the program never stops passing packets.
#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn full_ring_buffer_counts_lost_records() {
    require_root("full_ring_buffer_counts_lost_records");
    pin_to_current_cpu();
    // The smallest ring: one page on most machines (4 KiB), a handful of records.
    let page = 4096;
    let mut ebpf = datapath::load_with(&LoadOptions {
        flow_capacity: 1024,
        ring_bytes: page,
        heads: Settings::DEFAULT,
        ..LoadOptions::default()
    })
    .expect("load");
    load_program(&mut ebpf, Hook::Ingress);
    let maps = Maps::take(&mut ebpf).expect("maps");
    let mut ring = heads::take_ring(&mut ebpf).expect("ring");
    let total = 50u16;
    for i in 0..total {
        let f = udp_frame([10, 2, 0, 1], 1000 + i, [10, 2, 0, 2], 53, &[7u8; 200]);
        assert_eq!(run_once(&mut ebpf, Hook::Ingress, &f), Ok(XDP_PASS));
    }
    let mut read = 0u64;
    while ring.next().is_some() {
        read += 1;
    }
    let c = maps.counters(Hook::Ingress).expect("counters");
    assert!(read > 0 && read < u64::from(total), "{read} records read");
    assert_eq!(c.c[id::HEAD_RECORDS], read);
    assert_eq!(
        c.c[id::HEAD_RECORDS] + c.c[id::RINGBUF_RESERVE_FAILURES],
        u64::from(total),
        "every head record is either in the ring or counted as lost"
    );
}

/// The pending table's occupied slots as the kernel holds them, timestamps set to 1.
fn kernel_pending(table: &Array<MapData, Pending>, slots: u32) -> BTreeMap<u32, Pending> {
    let mut out = BTreeMap::new();
    for i in 0..slots {
        let mut p = table.get(&i, 0).expect("read the pending table");
        if p.state != pending::state::PENDING {
            continue;
        }
        assert!(
            p.stats.first_ns > 0 && p.opener_ts_ns > 0,
            "slot {i} timestamps"
        );
        (p.stats.first_ns, p.stats.last_ns, p.opener_ts_ns) = (1, 1, 1);
        if p.answer_ts_ns != 0 {
            p.answer_ts_ns = 1;
        }
        assert!(
            usize::from(p.opener_cap) <= pending::OPENER_STASH
                && usize::from(p.answer_cap) <= pending::ANSWER_STASH,
            "slot {i} keeps no more than it holds: {p:?}"
        );
        out.insert(i, meaningful(p));
    }
    out
}

/// A slot with the bytes beyond what it kept zeroed (an overwritten slot keeps the earlier
/// flow's bytes there, which mean nothing).
fn meaningful(mut p: Pending) -> Pending {
    p.opener[usize::from(p.opener_cap)..].fill(0);
    p.answer[usize::from(p.answer_cap)..].fill(0);
    p
}

/// The pending slots equal the model's; a mismatch names the first slot that differs.
fn assert_pending(kernel: &BTreeMap<u32, Pending>, model: &BTreeMap<u32, Pending>, after: &str) {
    let model: BTreeMap<u32, Pending> = model.iter().map(|(i, p)| (*i, meaningful(*p))).collect();
    let keys = |m: &BTreeMap<u32, Pending>| m.keys().copied().collect::<Vec<_>>();
    assert_eq!(
        keys(kernel),
        keys(&model),
        "occupied pending slots after {after}"
    );
    for (i, want) in &model {
        let got = &kernel[i];
        assert!(
            got == want,
            "pending slot {i} after {after}: kernel {:?} {:?} caps {}/{}, model {:?} {:?} caps {}/{}",
            got.key,
            got.stats,
            got.opener_cap,
            got.answer_cap,
            want.key,
            want.stats,
            want.opener_cap,
            want.answer_cap
        );
    }
}

/// With the pending table on, through XDP (both directions arrive at ingress, none is the
/// host's own): a handshake is tracked from its third packet and its SYN and SYN-ACK reach
/// the ring first, a UDP exchange from its answer, a ping from its second request, mid-stream
/// data at once; a flood of spoofed SYNs, some answered by the host, overwrites slots and never
/// enters the flow map. Counters, flow map, pending slots and records equal the model's after
/// every packet.
#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn pending_flows_match_the_host_model() {
    require_root("pending_flows_match_the_host_model");
    pin_to_current_cpu();
    let slots = 1024;
    let settings = Settings {
        pending_mask: slots - 1,
        ..Settings::DEFAULT
    };
    let mut ebpf = datapath::load_with(&LoadOptions {
        flow_capacity: 1024,
        ring_bytes: 1 << 20,
        heads: settings,
        pending_slots: slots,
        ..LoadOptions::default()
    })
    .expect("load the eBPF object");
    load_program(&mut ebpf, Hook::Ingress);
    load_program(&mut ebpf, Hook::Egress);
    let maps = Maps::take(&mut ebpf).expect("maps");
    let mut ring = heads::take_ring(&mut ebpf).expect("ring buffer");
    let table: Array<MapData, Pending> =
        Array::try_from(ebpf.take_map(sensor_common::maps::PENDING).expect("map")).expect("array");
    let mut model = Model::new(settings);
    let mut by_flags: BTreeMap<u8, usize> = BTreeMap::new();
    let (client, server) = ([10, 4, 0, 2], [10, 4, 0, 1]);
    // The host is the server: what it sends leaves through TC egress, as it does on a host.
    let mut send = |model: &mut Model, frame: &[u8], what: &str, check_slots: bool| {
        let hook = if frame[26..30] == server {
            Hook::Egress
        } else {
            Hook::Ingress
        };
        let want = if hook == Hook::Egress {
            TC_ACT_PIPE
        } else {
            XDP_PASS
        };
        assert_eq!(run_once(&mut ebpf, hook, frame), Ok(want), "{what}");
        model.account_at(frame, hook);
        assert_matches(model, &maps, Hook::Ingress, what);
        let egress = maps.counters(Hook::Egress).expect("counters");
        assert_eq!(
            egress.c, model.egress_counters.c,
            "egress counters after {what}"
        );
        // Kept frames are older than the records before them: order is not checked here.
        for (rec, _) in assert_records(&mut ring, &maps, model, &mut 0, what) {
            *by_flags.entry(rec.flags).or_default() += 1;
        }
        if check_slots {
            assert_pending(&kernel_pending(&table, slots), &model.pending, what);
        }
    };
    let mut tcp = TcpSession::new(client, 40300, server, 80);
    let mut frames = tcp.handshake();
    frames.extend(tcp.client_data(&[b'g'; 600], 300));
    frames.extend(tcp.server_data(&[b'h'; 900], 450));
    frames.extend(tcp.close());
    for (i, f) in frames.iter().enumerate() {
        send(&mut model, f, &format!("tcp frame {i}"), true);
        let tracked = model.flows.len();
        assert_eq!(
            tracked,
            usize::from(i >= 2),
            "tracked from the third packet (frame {i})"
        );
    }
    let query = udp_frame(client, 53001, server, 53, &[1u8; 40]);
    let answer = udp_frame(server, 53, client, 53001, &[2u8; 120]);
    send(&mut model, &query, "udp query", true);
    let (udp_key, _) = FlowKey::from_parsed(&parse::parse(&query[..]), TEST_RUN_IFINDEX);
    assert!(
        !model.flows.contains_key(&udp_key),
        "a query alone is unconfirmed"
    );
    // The host's answer looks like a datagram it opens itself; it still confirms the flow
    // whose slot holds it rather than starting a second entry.
    send(&mut model, &answer, "udp answer", true);
    assert_eq!(
        model.flows.get(&udp_key).map(|s| s.pkts),
        Some([1, 1]),
        "the answer promotes the query's flow with both packets"
    );
    assert!(
        model.pending.values().all(|p| p.key != udp_key),
        "and frees its slot"
    );
    // A first datagram longer than a slot keeps: cut, and flagged so.
    let big = udp_frame(client, 5060, server, 5060, &[3u8; 700]);
    send(&mut model, &big, "long first datagram", true);
    send(
        &mut model,
        &udp_frame(server, 5060, client, 5060, &[4u8; 30]),
        "its answer",
        true,
    );
    let ping = |kind: u8, seq: u16, from: [u8; 4], to: [u8; 4]| {
        v4_frame(from, to, 1, &icmp(kind, 0, 77, seq, &[5u8; 56]))
    };
    send(
        &mut model,
        &ping(8, 1, client, server),
        "echo request 1",
        true,
    );
    send(
        &mut model,
        &ping(0, 1, server, client),
        "echo reply 1",
        true,
    );
    send(
        &mut model,
        &ping(8, 2, client, server),
        "echo request 2",
        true,
    );
    // Mid-stream data of a connection that started before the program: tracked at once.
    let mut mid = TcpSession::new(client, 40400, server, 443);
    mid.handshake();
    for f in mid.client_data(&[b'm'; 200], 200) {
        send(&mut model, &f, "mid-stream data", true);
    }
    let before = model.flows.len();
    // The flood: 3,000 spoofed sources, one SYN each, every tenth answered by the host.
    for i in 0..3000u32 {
        let src = [198, 18, (i >> 8) as u8, i as u8];
        let port = 1024 + i as u16;
        let syn = v4_frame(src, server, 6, &tcp_segment(port, 80, 0x02, &[]));
        send(&mut model, &syn, &format!("spoofed SYN {i}"), i % 500 == 0);
        if i % 10 == 0 {
            let synack = v4_frame(server, src, 6, &tcp_segment(80, port, 0x12, &[]));
            send(&mut model, &synack, &format!("SYN-ACK {i}"), false);
        }
    }
    assert_pending(&kernel_pending(&table, slots), &model.pending, "the flood");
    assert_eq!(
        model.flows.len(),
        before,
        "no spoofed source entered the flow map"
    );
    let mut c = maps.counters(Hook::Ingress).expect("counters");
    c.add(&maps.counters(Hook::Egress).expect("counters"));
    assert_eq!(c.c[id::PENDING_PROMOTED], before as u64, "{:?}", &c.c[..]);
    assert!(
        c.c[id::PENDING_OVERWRITTEN] > 1000,
        "the flood overwrote slots: {:?}",
        &c.c[..]
    );
    assert!(c.c[id::PENDING_STASH_TRUNCATED] >= 1);
    let truncated = shared_head::flag::HEAD | shared_head::flag::TRUNCATED;
    assert!(
        by_flags.contains_key(&truncated),
        "a kept frame was cut: {by_flags:?}"
    );
}
