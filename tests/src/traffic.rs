//! Real traffic for labs and the demo: small Python programs (the system `python3`) that run
//! in the client and portal namespaces and exchange a known number of packets of known sizes.
//!
//! Run the server as `python3 -c SERVER REPLIES PORTAL_V4 PORTAL_V6` in the portal namespace
//! (it prints `ready`), then `python3 -c CLIENT PORTAL_V4 PORTAL_V6` in the client namespace
//! (it prints `done`): 5 UDP datagrams of 100 bytes to port 9999, 2 of 10 bytes over IPv6 to
//! port 9998 (the server answers the first REPLIES of each with 200 bytes), and one TCP
//! connection to port 8080 carrying 1000 bytes up and 2000 down.

/// UDP and TCP servers for the portal side: UDP replies to the first `replies` datagrams
/// with 200 bytes; TCP reads 1000 bytes, answers 2000 and closes.
pub const SERVER: &str = r#"
import socket, sys, threading
replies = int(sys.argv[1])
def udp(family, addr, port):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, port))
    for i in range(100):
        data, peer = s.recvfrom(2048)
        if i < replies:
            s.sendto(b"r" * 200, peer)
def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], 8080))
    s.listen(1)
    c, _ = s.accept()
    got = b""
    while len(got) < 1000:
        got += c.recv(4096)
    c.sendall(b"s" * 2000)
    c.close()
threading.Thread(target=udp, args=(socket.AF_INET, sys.argv[2], 9999), daemon=True).start()
threading.Thread(target=udp, args=(socket.AF_INET6, sys.argv[3], 9998), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
import time
time.sleep(60)
"#;

pub const CLIENT: &str = r#"
import socket, sys, time
portal4, portal6 = sys.argv[1], sys.argv[2]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 40001))
for _ in range(5):
    u.sendto(b"q" * 100, (portal4, 9999))
    time.sleep(0.02)
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.bind(("::", 40002))
for _ in range(2):
    u6.sendto(b"x" * 10, (portal6, 9998))
    time.sleep(0.02)
t = socket.create_connection((portal4, 8080), timeout=10)
t.sendall(b"c" * 1000)
got = b""
while True:
    d = t.recv(4096)
    if not d:
        break
    got += d
t.close()
assert len(got) == 2000, len(got)
time.sleep(0.3)
print("done", flush=True)
"#;

/// An HTTP server for inspection labs: `python3 -c HTTP_SERVER ADDR PORT` answers every GET
/// with 200, `Content-Type: text/html; charset=utf-8` and a body of 2,000 bytes, prints `ready`
/// once listening, and serves for 60 s.
pub const HTTP_SERVER: &str = r#"
import http.server, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"<p>" + b"v" * 1993 + b"</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H)
threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"#;

/// A DNS server for inspection labs: `python3 -c DNS_SERVER ADDR` answers every query on UDP
/// port 53 with one A record, 192.0.2.44, TTL 300 (flags 0x8580: an authoritative answer to a
/// recursive query), prints `ready` once listening, and serves for 60 s.
pub const DNS_SERVER: &str = r#"
import socket, struct, sys, time, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
def serve():
    while True:
        q, peer = s.recvfrom(4096)
        qid = q[:2]
        i = 12
        while q[i] != 0:
            i += 1 + q[i]
        question = q[12:i + 5]
        header = qid + struct.pack("!HHHHH", 0x8580, 1, 1, 0, 0)
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 44])
        s.sendto(header + question + answer, peer)
threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"#;

/// `curl` from the client namespace: GET `path` from [`HTTP_SERVER`] on the portal's port 8080
/// with the user agent `precinct-lab/1.0`; panics unless the answer is 200.
pub fn curl_portal(lab: &crate::lab::Lab, path: &str) {
    let url = format!("http://{}:8080{path}", crate::lab::PORTAL_V4);
    let out = lab
        .exec(
            &lab.client_ns,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-A",
                "precinct-lab/1.0",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url,
            ],
        )
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

/// `dig` from the client namespace: `portal.example.gov A` to [`DNS_SERVER`] on the portal;
/// panics unless the answer is 192.0.2.44.
pub fn dig_portal(lab: &crate::lab::Lab) {
    let server = format!("@{}", crate::lab::PORTAL_V4);
    let out = lab
        .exec(
            &lab.client_ns,
            &[
                "dig",
                &server,
                "portal.example.gov",
                "A",
                "+tries=1",
                "+time=5",
                "+short",
            ],
        )
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "192.0.2.44");
}

/// (transmitted, received) from the summary line of a finished `ping`.
pub fn ping_summary(out: &std::process::Output) -> (u64, u64) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("ping summary in {text}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().expect("number"))
        .collect();
    (nums[0], nums[1])
}
