//! EVE outputs (`[[outputs]]`) against real receivers on loopback: files with rotation and
//! reopening, Unix sockets, `rsyslogd` over UDP and TCP, `redis-server` lists and streams, and
//! an HTTP collector that goes away and comes back (every record exactly once, in order, also
//! across an agent restart; a full spool keeps the alerts). These drive the library's
//! `EveWriter` directly; `lab_outputs.rs` runs them through `precinct run`.

use std::{
    io::{BufRead, BufReader},
    os::unix::net::{UnixDatagram, UnixListener},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use precinct::{
    config::Config,
    eve::EveWriter,
    sinks::{OutputHealth, Outputs, SinkStats},
};
use serde_json::{json, Value};
use tests::collectors::{
    free_port, redis_cli, redis_server, rsyslogd, wait_for, Collector, Received,
};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("precinct-outputs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// An EVE writer (main output discarded) with the `[[outputs]]` of `toml`.
fn writer(dir: &Path, toml: &str) -> (EveWriter, OutputHealth) {
    let config = Config::parse(toml, &dir.join("precinct.toml")).expect("config");
    let outputs = Outputs::start(&config.outputs, "test-sensor").expect("start the outputs");
    let health = outputs.health();
    let eve = EveWriter::from_writer(Box::new(std::io::sink()));
    eve.set_identity(&precinct::identity::Identity {
        id: "test-sensor".into(),
        organization: String::new(),
        asset_role: String::new(),
        tags: Vec::new(),
    });
    eve.attach_outputs(outputs);
    (eve, health)
}

fn stats(health: &OutputHealth, name: &str) -> Arc<SinkStats> {
    health
        .sinks()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no output {name}"))
}

/// Record `n`: every tenth an alert (severity 1), the others flows.
/// A record of any shape, for the writer: its `event_type` and alert severity read from it.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Raw(Value);

impl precinct::eve::Record for Raw {
    fn event_type(&self) -> &'static str {
        match self.0["event_type"].as_str() {
            Some("alert") => "alert",
            Some("flow") => "flow",
            _ => "unknown",
        }
    }

    fn alert_severity(&self) -> Option<u8> {
        self.0
            .pointer("/alert/severity")
            .and_then(Value::as_u64)
            .and_then(|s| u8::try_from(s).ok())
    }
}

fn record(n: u64) -> Raw {
    Raw(record_value(n))
}

fn record_value(n: u64) -> Value {
    if n.is_multiple_of(10) {
        json!({"event_type": "alert", "n": n, "alert": {"severity": 1, "signature_id": 1}})
    } else {
        json!({"event_type": "flow", "n": n})
    }
}

fn write(eve: &mut EveWriter, range: std::ops::Range<u64>) {
    for n in range {
        eve.write(&record(n)).expect("write");
    }
}

fn numbers(lines: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<u64> {
    lines
        .into_iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l.as_ref()).expect("a JSON record");
            assert_eq!(v["host"], "test-sensor", "identity spliced in: {v}");
            v["n"].as_u64().expect("n")
        })
        .collect()
}

fn file_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn files_filter_rotate_and_reopen() {
    let dir = tmpdir("files");
    let (mut eve, health) = writer(
        &dir,
        r#"
[[outputs]]
name = "alerts"
type = "file"
path = "alerts.json"
types = ["alert"]
max_bytes = 1000
keep = 2

[[outputs]]
name = "rest"
type = "file"
path = "sub/rest.json"
exclude_types = ["alert"]
"#,
    );
    write(&mut eve, 0..300);
    let rest = dir.join("sub/rest.json");
    wait_for("270 flows in rest.json", 10, || {
        file_lines(&rest).len() == 270
    });
    // logrotate's `create` + HUP: move the file away, reopen.
    std::fs::rename(&rest, dir.join("rest.json.moved")).expect("rename");
    eve.reopen().expect("reopen");
    write(&mut eve, 300..400);
    eve.shutdown_outputs(Duration::from_secs(5));

    let before = numbers(file_lines(&dir.join("rest.json.moved")));
    assert_eq!(before, (0..300).filter(|n| n % 10 != 0).collect::<Vec<_>>());
    let after = numbers(file_lines(&rest));
    assert_eq!(
        after,
        (300..400).filter(|n| n % 10 != 0).collect::<Vec<_>>()
    );

    // 40 alerts of ~140 bytes in files of at most 1000 bytes: the current file and two
    // rotated ones are kept, newest last when read .2, .1, current.
    let alerts = dir.join("alerts.json");
    let mut kept = Vec::new();
    for p in [
        dir.join("alerts.json.2"),
        dir.join("alerts.json.1"),
        alerts.clone(),
    ] {
        let size = std::fs::metadata(&p).expect("rotated file").len();
        assert!(size <= 1000, "{} is {size} bytes", p.display());
        kept.extend(numbers(file_lines(&p)));
    }
    assert!(!dir.join("alerts.json.3").exists(), "keep = 2");
    let all: Vec<u64> = (0..400u64).filter(|n| n.is_multiple_of(10)).collect();
    assert!(kept.len() < all.len(), "older files were removed");
    assert_eq!(
        kept[..],
        all[all.len() - kept.len()..],
        "the newest, in order"
    );
    assert_eq!(stats(&health, "alerts").delivered_total(), 40);
    assert_eq!(stats(&health, "rest").delivered_total(), 360);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unix_sockets_receive_and_reconnect() {
    let dir = tmpdir("unix");
    let stream_path = dir.join("stream.sock");
    let dgram_path = dir.join("dgram.sock");
    // The datagram reader is there from the start; the stream reader comes late.
    let dgram = UnixDatagram::bind(&dgram_path).expect("bind");
    dgram
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (mut eve, health) = writer(
        &dir,
        &format!(
            r#"
[[outputs]]
name = "stream"
type = "unix_stream"
path = "{}"
retry_initial_ms = 50
retry_max_ms = 200

[[outputs]]
name = "dgram"
type = "unix_dgram"
path = "{}"
"#,
            stream_path.display(),
            dgram_path.display()
        ),
    );
    write(&mut eve, 0..50);
    let mut buf = [0u8; 65536];
    let mut got = Vec::new();
    for _ in 0..50 {
        let n = dgram.recv(&mut buf).expect("a datagram");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(numbers(&got), (0..50).collect::<Vec<_>>());
    // The stream output retries with backoff, records waiting in its queue.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(&health, "stream").delivered_total(), 0);
    let listener = UnixListener::bind(&stream_path).expect("bind");
    let (conn, _) = listener.accept().expect("the output connects");
    write(&mut eve, 50..60);
    let lines: Vec<String> = BufReader::new(conn)
        .lines()
        .take(60)
        .map(|l| l.expect("line"))
        .collect();
    assert_eq!(numbers(&lines), (0..60).collect::<Vec<_>>());
    eve.shutdown_outputs(Duration::from_secs(5));
    assert_eq!(stats(&health, "dgram").delivered_total(), 60);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tmpdir("queue");
    let (mut eve, health) = writer(
        &dir,
        &format!(
            "[[outputs]]\nname = \"nobody\"\ntype = \"unix_stream\"\npath = \"{}\"\nqueue_events = 10\n\n[[outputs]]\nname = \"file\"\ntype = \"file\"\npath = \"all.json\"\n",
            dir.join("nobody.sock").display()
        ),
    );
    let start = std::time::Instant::now();
    write(&mut eve, 0..2000);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "writes never wait for a sink"
    );
    let s = stats(&health, "nobody");
    wait_for("the queue to fill", 10, || !health.stuck().is_empty());
    let stuck = health.stuck();
    assert!(
        stuck.len() == 1 && stuck[0].contains("\"nobody\"") && stuck[0].contains("queue full"),
        "{stuck:?}"
    );
    assert!(s.dropped_total() >= 2000 - 64 - 10, "{}", s.dropped_total());
    eve.shutdown_outputs(Duration::from_millis(300));
    assert_eq!(s.delivered_total(), 0);
    assert_eq!(s.dropped_total() + s.failed_total(), 2000);
    // The other output lost nothing.
    assert_eq!(stats(&health, "file").delivered_total(), 2000);
    assert_eq!(file_lines(&dir.join("all.json")).len(), 2000);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rsyslog_receives_rfc5424_over_udp_and_tcp() {
    let dir = tmpdir("syslog");
    let (udp, tcp) = (free_port(), free_port());
    let out = dir.join("received.log");
    let _rsyslog = rsyslogd(udp, tcp, &dir, &out);
    let (mut eve, health) = writer(
        &dir,
        &format!(
            r#"
[[outputs]]
name = "udp"
type = "syslog"
address = "127.0.0.1:{udp}"

[[outputs]]
name = "tcp"
type = "syslog"
transport = "tcp"
address = "127.0.0.1:{tcp}"
facility = "local3"
"#
        ),
    );
    write(&mut eve, 0..100);
    wait_for("200 messages at rsyslog", 20, || {
        file_lines(&out).len() >= 200
    });
    eve.shutdown_outputs(Duration::from_secs(5));
    let lines = file_lines(&out);
    assert_eq!(lines.len(), 200, "{lines:#?}");
    let mut by_input: [Vec<u64>; 2] = Default::default();
    for l in &lines {
        let f: Vec<&str> = l.splitn(7, '|').collect();
        let [input, facility, severity, host, app, msgid, msg] = f[..] else {
            panic!("{l}");
        };
        let v: Value = serde_json::from_str(msg).unwrap_or_else(|e| panic!("{e}: {msg}"));
        let n = v["n"].as_u64().expect("n");
        let (want_sev, want_id) = if n.is_multiple_of(10) {
            ("crit", "alert")
        } else {
            ("info", "flow")
        };
        assert_eq!(
            (severity, msgid, app),
            (want_sev, want_id, "precinct"),
            "{l}"
        );
        assert_eq!(host, "test-sensor");
        let i = match (input, facility) {
            ("imudp", "local5") => 0,
            ("imtcp", "local3") => 1,
            other => panic!("{other:?}: {l}"),
        };
        by_input[i].push(n);
    }
    let mut udp_got = by_input[0].clone();
    udp_got.sort_unstable();
    assert_eq!(udp_got, (0..100).collect::<Vec<_>>(), "every UDP message");
    assert_eq!(by_input[1], (0..100).collect::<Vec<_>>(), "TCP in order");
    assert_eq!(stats(&health, "tcp").delivered_total(), 100);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn redis_lists_and_streams_as_suricata_writes_them() {
    let dir = tmpdir("redis");
    let port = free_port();
    let mut redis = redis_server(port, &dir);
    let (mut eve, health) = writer(
        &dir,
        &format!(
            r#"
[[outputs]]
name = "lpush"
type = "redis"
address = "127.0.0.1:{port}"
retry_initial_ms = 50
retry_max_ms = 200

[[outputs]]
name = "rpush"
type = "redis"
address = "127.0.0.1:{port}"
mode = "rpush"
key = "eve-r"
retry_initial_ms = 50
retry_max_ms = 200

[[outputs]]
name = "stream"
type = "redis"
address = "127.0.0.1:{port}"
mode = "stream"
key = "eve-s"
types = ["alert"]
"#
        ),
    );
    write(&mut eve, 0..100);
    let list = |key: &str| -> Vec<u64> {
        let v: Vec<String> =
            serde_json::from_str(&redis_cli(port, &["LRANGE", key, "0", "-1"])).expect("json");
        numbers(v)
    };
    wait_for("100 records in both lists", 10, || {
        list("suricata").len() == 100 && list("eve-r").len() == 100
    });
    // LPUSH (Suricata's `list`): newest first.
    assert_eq!(list("suricata"), (0..100).rev().collect::<Vec<_>>());
    assert_eq!(list("eve-r"), (0..100).collect::<Vec<_>>());
    wait_for("10 alerts in the stream", 10, || {
        stats(&health, "stream").delivered_total() == 10
    });
    let entries: Vec<(String, Vec<String>)> =
        serde_json::from_str(&redis_cli(port, &["XRANGE", "eve-s", "-", "+"])).expect("json");
    assert!(entries.iter().all(|(_, f)| f[0] == "eve"), "{entries:?}");
    assert_eq!(
        numbers(entries.iter().map(|(_, f)| &f[1])),
        (0..100).step_by(10).collect::<Vec<_>>()
    );

    // The server goes away: records wait in the queue and go once it is back.
    redis.kill();
    write(&mut eve, 100..150);
    std::thread::sleep(Duration::from_millis(500));
    let _redis = redis_server(port, &dir);
    wait_for("the records written while redis was down", 20, || {
        list("eve-r").len() == 50
    });
    assert_eq!(list("eve-r"), (100..150).collect::<Vec<_>>());
    eve.shutdown_outputs(Duration::from_secs(5));
    assert_eq!(stats(&health, "rpush").delivered_total(), 150);
    assert_eq!(stats(&health, "rpush").failed_total(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

fn http_output(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        r#"
[[outputs]]
name = "soc"
type = "http"
url = "http://127.0.0.1:{port}/ingest"
headers = {{ Authorization = "Bearer test" }}
batch_events = 40
flush_interval_ms = 100
retry_initial_ms = 100
retry_max_ms = 400
timeout_ms = 2000
stuck_after_secs = 1
spool_dir = "{}"
{extra}
"#,
        dir.join("spool").display()
    )
}

fn received(got: &Mutex<Received>) -> Vec<u64> {
    numbers(got.lock().expect("lock").lines.iter())
}

#[test]
fn http_collector_outage_loses_and_repeats_nothing() {
    let dir = tmpdir("http");
    let got = Arc::new(Mutex::new(Received::default()));
    let mut collector = Collector::start(0, got.clone());
    let port = collector.port;
    let (mut eve, health) = writer(&dir, &http_output(&dir, port, ""));
    let soc = stats(&health, "soc");
    write(&mut eve, 0..300);
    wait_for("300 records at the collector", 20, || {
        collector.lines() == 300
    });

    // The collector goes away; records pile up in the spool.
    collector.stop();
    write(&mut eve, 300..700);
    wait_for("the spool to hold the 400 records", 10, || {
        soc.spool_events() == 400
    });
    wait_for("the output to be reported stuck", 10, || {
        health
            .stuck()
            .iter()
            .any(|s| s.contains("spool not drained"))
    });
    std::thread::sleep(Duration::from_millis(500));

    // Back on the same port: the spool drains in order.
    let collector = Collector::start(port, got.clone());
    write(&mut eve, 700..800);
    wait_for("800 records at the collector", 30, || {
        collector.lines() >= 800
    });
    assert!(health.stuck().is_empty(), "{:?}", health.stuck());

    // The agent stops while the collector is down: the records stay in the spool and are
    // sent first by the next agent.
    drop(collector);
    write(&mut eve, 800..900);
    eve.shutdown_outputs(Duration::from_millis(500));
    drop(eve);
    let collector = Collector::start(port, got.clone());
    let (mut eve, health) = writer(&dir, &http_output(&dir, port, ""));
    write(&mut eve, 900..1000);
    wait_for("1000 records at the collector", 30, || {
        collector.lines() >= 1000
    });
    eve.shutdown_outputs(Duration::from_secs(5));

    assert_eq!(
        received(&got),
        (0..1000).collect::<Vec<_>>(),
        "every record exactly once, in order"
    );
    let g = got.lock().expect("lock");
    assert!(g.malformed.is_empty(), "{:?}", g.malformed);
    // Batch numbers go up by one, across the restart too.
    let seqs: Vec<u64> = g
        .batches
        .iter()
        .map(|b| {
            let (prefix, seq) = b.rsplit_once('-').expect("SENSOR-OUTPUT-SEQ");
            assert_eq!(prefix, "test-sensor-soc");
            seq.parse().expect("number")
        })
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let soc = stats(&health, "soc");
    assert_eq!((soc.spool_events(), soc.lost_total()), (0, 0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_refused_record_is_isolated_and_given_up() {
    let dir = tmpdir("http-refused");
    let got = Arc::new(Mutex::new(Received::default()));
    let collector = Collector::start(0, got.clone());
    let (mut eve, health) = writer(&dir, &http_output(&dir, collector.port, ""));
    write(&mut eve, 0..37);
    eve.write(&Raw(json!({"event_type": "flow", "n": 37, "poison": true})))
        .expect("write");
    write(&mut eve, 38..80);
    wait_for("79 records at the collector", 20, || {
        collector.lines() == 79
    });
    eve.shutdown_outputs(Duration::from_secs(5));
    let want: Vec<u64> = (0..80).filter(|n| *n != 37).collect();
    assert_eq!(received(&got), want);
    assert!(got.lock().expect("lock").refused >= 2, "halved, then alone");
    let soc = stats(&health, "soc");
    assert_eq!((soc.delivered_total(), soc.failed_total()), (79, 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_full_spool_evicts_old_flows_and_keeps_alerts() {
    let dir = tmpdir("http-full");
    let got = Arc::new(Mutex::new(Received::default()));
    let port = free_port();
    let (mut eve, health) = writer(
        &dir,
        &http_output(&dir, port, "spool_max_bytes = 65536\nbatch_bytes = 8192"),
    );
    // The collector is not there: 2000 records of ~130 bytes do not fit in 64 KiB, while
    // the 200 alerts do.
    write(&mut eve, 0..2000);
    let soc = stats(&health, "soc");
    wait_for("the spool writer to take every record", 10, || {
        soc.spool_events() as u64 + soc.lost_total() == 2000
    });
    assert!(soc.lost_total() > 1000, "{}", soc.lost_total());
    let collector = Collector::start(port, got.clone());
    let waiting = 2000 - soc.lost_total();
    wait_for("the spool to drain", 20, || {
        collector.lines() as u64 == waiting
    });
    eve.shutdown_outputs(Duration::from_secs(5));
    let n = received(&got);
    assert!(n.windows(2).all(|w| w[0] < w[1]), "in order: {n:?}");
    let alerts: Vec<u64> = n.iter().copied().filter(|n| n.is_multiple_of(10)).collect();
    assert_eq!(
        alerts,
        (0..2000).step_by(10).collect::<Vec<_>>(),
        "every alert kept"
    );
    // The flows that survived are the newest ones, besides those of the first batch (40
    // records), in flight since before the spool filled: it is never evicted.
    let flows: Vec<u64> = n.iter().copied().filter(|n| n % 10 != 0).collect();
    assert!(flows.iter().take_while(|n| **n < 40).count() <= 36);
    let later = flows.iter().find(|n| **n >= 40).expect("later flows");
    assert!(*later > 1000, "old flows went first: {later}");
    assert_eq!(n.len() as u64 + soc.lost_total(), 2000);
    let _ = std::fs::remove_dir_all(dir);
}
