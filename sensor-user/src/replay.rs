//! `precinct replay`: runs a capture file through the inspection pipeline and writes the EVE
//! records, with a progress line on a terminal and a summary at the end. A damaged capture is
//! processed up to the damage, its flows are written, and the command then fails.

use std::{
    io::IsTerminal as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use log::warn;

use std::sync::Arc;

use crate::{
    capture::CaptureReader,
    config::Config,
    detect::sig::Refusal,
    eve::{EveTarget, EveWriter},
    inspect::{InspectConfig, Pipeline},
    rules::{self, RuleSources},
};

/// What `precinct replay` was asked to do.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The capture file.
    pub pcap: PathBuf,
    /// Rule files, after those of the configuration's `[rules]`.
    pub rules: Vec<PathBuf>,
    /// Pick up TCP sessions without a handshake.
    pub midstream: bool,
    /// Configuration file (`[flows.timeouts]` and `[rules]` apply).
    pub config: Option<PathBuf>,
    /// EVE output (`-` for standard output).
    pub eve: String,
}

/// Replays the capture. Returns an error for an unreadable or damaged capture (after
/// writing what was read before the damage).
pub fn run(opts: &ReplayOptions) -> anyhow::Result<()> {
    let config = match &opts.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let sources = RuleSources::new(&config.rules, &opts.rules);
    let rules = if sources.is_empty() {
        None
    } else {
        let set = sources.load()?;
        let r = &set.report;
        eprintln!("replay: rules: {}", rules::summary(r));
        for s in r
            .skipped
            .iter()
            .filter(|s| matches!(s.reason, Refusal::Invalid(_)))
            .take(5)
        {
            warn!(
                "{}: sid {}: {}",
                s.origin,
                s.sid.map(|x| x.to_string()).unwrap_or("?".into()),
                s.reason
            );
        }
        Some(Arc::new(set))
    };
    let mut reader = CaptureReader::open(&opts.pcap)?;
    let eve = EveWriter::open(&EveTarget::parse(&opts.eve))?;
    // Replays carry an identity only when the configuration names one.
    if !config.sensor.is_empty() {
        eve.set_identity(&config.sensor.resolve());
    }
    let cfg = InspectConfig {
        midstream: opts.midstream,
        timeouts: config.flows.timeouts,
        alerts: config.alerts,
        max_flows: config.inspect.max_flows,
        defrag: config.inspect.defrag_limits(),
        dns_version: config.dns_layout(),
        encryption: config.inspect.encryption_handling,
        ..InspectConfig::default()
    };
    let mut pipeline = Pipeline::new(cfg, eve);
    if let Some(rules) = rules {
        pipeline.set_rules(rules);
    }
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut result = Ok(());
    loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => pipeline.packet(pkt.ts_ns, pkt.linktype, pkt.data)?,
            Ok(None) => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        if progress && last_progress.elapsed() > Duration::from_millis(250) {
            last_progress = Instant::now();
            let pct = if reader.file_len > 0 {
                reader.position() as f64 * 100.0 / reader.file_len as f64
            } else {
                0.0
            };
            eprint!(
                "\r{:5.1}%  {} packets  {} flows",
                pct.min(100.0),
                pipeline.stats.packets,
                pipeline.active_flows()
            );
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    pipeline.finish()?;
    summary(&pipeline, started.elapsed());
    result
}

fn summary(p: &Pipeline, took: Duration) {
    let s = &p.stats;
    let secs = took.as_secs_f64().max(1e-9);
    eprintln!(
        "replay: {} packets, {} bytes, {} flows in {:.2} s ({:.0} packets/s, {:.1} Mbit/s)",
        s.packets,
        s.bytes,
        s.flows,
        secs,
        s.packets as f64 / secs,
        s.bytes as f64 * 8.0 / secs / 1e6
    );
    let events: Vec<String> = p
        .eve()
        .counts()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!(
        "replay: events: {}",
        if events.is_empty() {
            "none".into()
        } else {
            events.join(", ")
        }
    );
    let mut undecoded: Vec<String> = s
        .undecoded
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    undecoded.sort();
    if !undecoded.is_empty() || s.unsupported_link > 0 {
        eprintln!(
            "replay: not inspected: {}{}",
            undecoded.join(", "),
            if s.unsupported_link > 0 {
                format!(" unsupported link type {}", s.unsupported_link)
            } else {
                String::new()
            }
        );
    }
    let d = p.detect_stats();
    if d.packets + d.app_events > 0 {
        eprintln!(
            "replay: detection: {} packets ({:.1} rules each after the prefilter), {} app-layer events ({:.1} rules each){}",
            d.packets,
            d.packet_candidates as f64 / d.packets.max(1) as f64,
            d.app_events,
            d.app_candidates as f64 / d.app_events.max(1) as f64,
            if d.inspection_limit > 0 {
                format!(
                    "; {} rule evaluations gave up at rules.inspection_limit",
                    d.inspection_limit
                )
            } else {
                String::new()
            }
        );
    }
    let f = p.defrag_stats();
    if f.fragments > 0 {
        eprintln!(
            "replay: fragments: {} seen, {} datagrams rebuilt, {} dropped ({} timed out, {} evicted for room, {} over a limit of their own), {} overlaps",
            f.fragments, f.reassembled, f.dropped, f.timed_out, f.evicted, f.refused, f.overlaps
        );
    }
    let st = p.stream_stats();
    if st.gaps + st.out_of_order + st.retransmissions + st.overlaps > 0 || s.flows_over_limit > 0 {
        eprintln!(
            "replay: tcp: {} retransmissions, {} overlaps, {} out of order, {} gaps; {} flows over the table limit",
            st.retransmissions, st.overlaps, st.out_of_order, st.gaps, s.flows_over_limit
        );
    }
}
