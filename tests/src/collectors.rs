//! Real receivers for the EVE output tests, all on loopback and owned by the test: an HTTP
//! collector written here (it can be stopped and started again on the same port), and the
//! Debian `redis-server` and `rsyslogd` started as the test's own child processes on free
//! ports. Dropping a guard stops what it started.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// A free TCP port on 127.0.0.1 (also free for UDP in practice).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `done` every 50 ms for up to `secs`; panics with `what` when it never holds.
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the HTTP collector received.
#[derive(Default, Debug)]
pub struct Received {
    /// Every record line accepted, in arrival order.
    pub lines: Vec<String>,
    /// `X-Precinct-Batch` of every accepted batch.
    pub batches: Vec<String>,
    /// Batches refused (400).
    pub refused: usize,
    /// Requests whose headers were wrong (content type or encoding).
    pub malformed: Vec<String>,
}

/// An HTTP collector: accepts POSTs of gzip NDJSON, answers 200, or 400 when a record
/// contains `"poison":true`.
pub struct Collector {
    /// Its port.
    pub port: u16,
    /// What it received, kept across stops and starts.
    pub got: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Inflates a gzip member written without optional fields.
pub fn gunzip(z: &[u8]) -> Vec<u8> {
    assert!(
        z.len() > 18 && z[..3] == [0x1f, 0x8b, 8] && z[3] == 0,
        "not plain gzip"
    );
    miniz_oxide::inflate::decompress_to_vec(&z[10..z.len() - 8]).expect("inflate")
}

fn serve(mut c: TcpStream, got: &Mutex<Received>) {
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buf[head_end..head_end + len];
    let mut g = got.lock().expect("lock");
    if header(&head, "content-type") != Some("application/x-ndjson")
        || header(&head, "content-encoding") != Some("gzip")
        || !head.starts_with("POST /ingest HTTP/1.1\r\n")
    {
        g.malformed.push(head.clone());
    }
    let text = String::from_utf8(gunzip(body)).expect("UTF-8 body");
    let status = if text.contains("\"poison\":true") {
        g.refused += 1;
        "400 Bad Request"
    } else {
        g.lines.extend(text.lines().map(str::to_owned));
        g.batches
            .push(header(&head, "x-precinct-batch").unwrap_or("").to_owned());
        "200 OK"
    };
    drop(g);
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

impl Collector {
    /// Listens on `port` (0: any free port), recording into `got`.
    pub fn start(port: u16, got: Arc<Mutex<Received>>) -> Collector {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the collector");
        let port = l.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (stop, got) = (stop.clone(), got.clone());
            move || {
                for c in l.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = c {
                        serve(c, &got);
                    }
                }
            }
        });
        Collector {
            port,
            got,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops listening (connections are refused from now on); what it got stays in `got`.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            t.join().expect("collector thread");
        }
    }

    /// Records received so far.
    pub fn lines(&self) -> usize {
        self.got.lock().expect("lock").lines.len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A child process killed on drop.
pub struct Daemon {
    child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Daemon {
    /// Kills and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-server` on 127.0.0.1:`port`, without persistence, in `dir`; ready when it returns.
pub fn redis_server(port: u16, dir: &Path) -> Daemon {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server (apt-get install redis-server)");
    let d = Daemon {
        child,
        name: "redis-server".into(),
    };
    wait_for("redis-server to answer PING", 20, || {
        redis_cli(port, &["PING"]).trim() == "\"PONG\""
    });
    d
}

/// `redis-cli -p PORT ARGS…` with RESP2 JSON output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "-2", "--json"])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rsyslogd -n` with UDP and TCP inputs on 127.0.0.1 writing
/// `INPUT|FACILITY|SEVERITY|HOSTNAME|APP|MSGID|MSG` lines to `out`.
pub fn rsyslogd(udp: u16, tcp: u16, dir: &Path, out: &Path) -> Daemon {
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
template(name="eve" type="string" string="%inputname%|%syslogfacility-text%|%syslogseverity-text%|%hostname%|%app-name%|%msgid%|%msg%\n")
ruleset(name="eve") {{
  action(type="omfile" file="{out}" template="eve")
}}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="eve")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="eve")
"#,
            dir = dir.display(),
            out = out.display()
        ),
    )
    .expect("write rsyslog.conf");
    let pid: PathBuf = dir.join("rsyslogd.pid");
    let child = Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(&pid)
        .stdout(Stdio::null())
        .spawn()
        .expect("start rsyslogd (apt-get install rsyslog)");
    let d = Daemon {
        child,
        name: "rsyslogd".into(),
    };
    wait_for("rsyslogd to listen", 20, || {
        TcpStream::connect(("127.0.0.1", tcp)).is_ok()
    });
    d
}
