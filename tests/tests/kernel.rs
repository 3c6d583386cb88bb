//! Kernel program tests through `BPF_PROG_TEST_RUN`: for the shared packet corpus, the XDP
//! ingress and TC egress programs' verdicts, counters and flow map must equal what the host
//! build of the same parser and accounting says, after every packet.

use std::collections::BTreeMap;

use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp};
use precinct::datapath::{self, Maps};
use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
    parse, programs, Hook,
};
use tests::{packets::corpus, require_root};

const XDP_PASS: u32 = 2;
const TC_ACT_PIPE: u32 = 3;
/// `BPF_PROG_TEST_RUN` runs packets "received" on the loopback device of the caller's netns.
const TEST_RUN_IFINDEX: u32 = 1;

/// The host model of what the kernel should hold.
#[derive(Default)]
struct Model {
    counters: Counters,
    flows: BTreeMap<FlowKey, FlowStats>,
}

impl Model {
    fn account(&mut self, frame: &[u8]) {
        let p = parse(frame);
        let len = frame.len() as u64;
        self.counters.count_packet(&p, len, 1);
        if !p.is_trackable() {
            return;
        }
        let (key, dir) = FlowKey::from_parsed(&p, TEST_RUN_IFINDEX);
        let entry = self.flows.entry(key).or_insert_with(|| {
            self.counters.c[id::FLOWS_CREATED] += 1;
            FlowStats::default()
        });
        // Timestamps are the kernel's; the model uses 1 and compares everything else.
        entry.account(&p, dir, 1, len, 1);
    }
}

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
                < usize::from(p.l3_off)
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

fn run_corpus(hook: Hook) {
    let mut ebpf = datapath::load(1024).expect("load the eBPF object");
    let mut model = Model::default();
    let frames = corpus();
    match hook {
        Hook::Ingress => {
            let xdp: &mut Xdp =
                datapath::program_mut(&mut ebpf, programs::INGRESS).expect("program");
            xdp.load().expect("the verifier accepts the XDP program");
        }
        Hook::Egress => {
            let tc: &mut SchedClassifier =
                datapath::program_mut(&mut ebpf, programs::EGRESS).expect("program");
            tc.load().expect("the verifier accepts the TC program");
        }
    }
    let maps = Maps::take(&mut ebpf).expect("maps");
    let verdict = match hook {
        Hook::Ingress => XDP_PASS,
        Hook::Egress => TC_ACT_PIPE,
    };
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
            assert_eq!(result, Ok(verdict), "{hook:?} verdict for {name}");
            model.account(frame);
            assert_matches(&model, &maps, hook, &format!("{name} (round {round})"));
        }
    }
}

#[test]
fn xdp_ingress_matches_the_host_model() {
    if !require_root("xdp_ingress_matches_the_host_model") {
        return;
    }
    run_corpus(Hook::Ingress);
}

#[test]
fn tc_egress_matches_the_host_model() {
    if !require_root("tc_egress_matches_the_host_model") {
        return;
    }
    run_corpus(Hook::Egress);
}

#[test]
fn full_flow_map_counts_untracked_packets() {
    if !require_root("full_flow_map_counts_untracked_packets") {
        return;
    }
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
