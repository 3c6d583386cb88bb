//! Tests of the control socket, its client and the manual-entry store.
use super::*;
use std::path::PathBuf;

fn prefix(s: &str) -> Prefix {
    s.parse().unwrap()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("precinct-control-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An agent that answers from a [`ManualBlocks`] of four entries.
fn fake_agent() -> mpsc::Sender<Call> {
    let (tx, mut rx) = mpsc::channel::<Call>(8);
    tokio::spawn(async move {
        let mut blocks = ManualBlocks::new(4);
        while let Some((req, reply)) = rx.recv().await {
            let response = match blocks.apply(&req, SystemTime::now()) {
                Some((r, _)) => r,
                None => Response::ok("reloaded 0 list(s)"),
            };
            let _ = reply.send(response);
        }
    });
    tx
}

async fn call_async(path: &Path, req: Request) -> Response {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || call(&path, &req))
        .await
        .unwrap()
        .unwrap()
}

async fn raw(path: &Path, bytes: &[u8]) -> Response {
    let mut s = UnixStream::connect(path).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.shutdown().await.unwrap();
    // One line, as `call` reads: after an over-long request the server closes with input
    // unread, and the kernel then resets the connection once the answer has been read.
    let mut out = String::new();
    tokio::io::BufReader::new(s)
        .read_line(&mut out)
        .await
        .unwrap();
    serde_json::from_str(out.trim_end()).unwrap()
}

#[tokio::test]
async fn add_list_del_through_the_socket() {
    let dir = TempDir::new("roundtrip");
    let path = dir.0.join("run").join("control.sock");
    let _server = serve(&path, fake_agent()).await.unwrap();

    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let sock_mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(sock_mode & 0o777, 0o600);

    let add = Request::BlockAdd {
        cidr: "203.0.113.7/24".into(),
        ttl_secs: Some(3600),
        reason: Some("scanner".into()),
    };
    let r = call_async(&path, add).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.message, "blocked 203.0.113.0/24 for 1h");

    let r = call_async(&path, Request::BlockList).await;
    assert!(r.ok);
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].cidr, "203.0.113.0/24");
    assert_eq!(r.entries[0].reason.as_deref(), Some("scanner"));
    assert_eq!(
        r.entries[0].expires_unix,
        Some(r.entries[0].added_unix + 3600)
    );

    let del = Request::BlockDel {
        cidr: "203.0.113.0/24".into(),
    };
    assert!(call_async(&path, del.clone()).await.ok);
    let again = call_async(&path, del).await;
    assert!(!again.ok);
    assert!(again.message.contains("not in the manual blocklist"));
    assert!(call_async(&path, Request::BlockList)
        .await
        .entries
        .is_empty());
    assert!(call_async(&path, Request::ListsReload).await.ok);

    let bad = Request::BlockAdd {
        cidr: "10.0.0.300/8".into(),
        ttl_secs: None,
        reason: None,
    };
    let r = call_async(&path, bad).await;
    assert!(!r.ok);
    assert!(r.message.contains("203.0.113.0/24"), "{}", r.message);
}

#[tokio::test]
async fn malformed_requests_get_errors() {
    let dir = TempDir::new("malformed");
    let path = dir.0.join("control.sock");
    let _server = serve(&path, fake_agent()).await.unwrap();

    for (bytes, want) in [
        (&b"not json\n"[..], "malformed request"),
        (b"{\"op\":\"block_nuke\"}\n", "malformed request"),
        (b"{\"op\":\"block_add\"}\n", "cidr"),
        (
            b"{\"op\":\"block_del\",\"cidr\":\"1.2.3.4\",\"ttl\":5}\n",
            "ttl",
        ),
        (b"\n", "empty request"),
        (b"", "empty request"),
        (b"\xff\xfe\n", "malformed request"),
    ] {
        let r = raw(&path, bytes).await;
        assert!(!r.ok);
        assert!(r.message.contains(want), "{bytes:?}: {}", r.message);
    }
    let mut long = vec![b' '; MAX_REQUEST as usize + 10];
    long.push(b'\n');
    let r = raw(&path, &long).await;
    assert!(r.message.contains("longer than 64 KiB"), "{}", r.message);

    // A request without its newline still counts once the client stops writing.
    assert!(raw(&path, b"{\"op\":\"block_list\"}").await.ok);
}

#[tokio::test]
async fn a_silent_client_does_not_block_others() {
    let dir = TempDir::new("slow");
    let path = dir.0.join("control.sock");
    let _server = serve(&path, fake_agent()).await.unwrap();
    let _silent = UnixStream::connect(&path).await.unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        call_async(&path, Request::BlockList),
    )
    .await
    .unwrap();
    assert!(r.ok);
}

#[tokio::test]
async fn stale_sockets_are_replaced_and_live_ones_refused() {
    let dir = TempDir::new("stale");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("control.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let _server = serve(&path, fake_agent()).await.unwrap();
    assert!(call_async(&path, Request::BlockList).await.ok);

    let err = serve(&path, fake_agent()).await.unwrap_err();
    assert!(format!("{err:#}").contains("another agent"), "{err:#}");
    assert!(call_async(&path, Request::BlockList).await.ok);

    let file = dir.0.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = serve(&file, fake_agent()).await.unwrap_err();
    assert!(format!("{err:#}").contains("not a socket"), "{err:#}");
    assert!(file.exists());
}

#[tokio::test]
async fn the_socket_goes_when_the_agent_does() {
    let dir = TempDir::new("shutdown");
    let path = dir.0.join("control.sock");
    let (tx, rx) = mpsc::channel::<Call>(1);
    let server = serve(&path, tx).await.unwrap();
    drop(rx);
    server.await.unwrap();
    assert!(!path.exists());
}

#[test]
fn client_errors_say_what_to_do() {
    let dir = TempDir::new("client");
    let path = dir.0.join("absent.sock");
    let err = format!("{:#}", call(&path, &Request::BlockList).unwrap_err());
    assert!(
        err.contains("not running, or it uses another socket"),
        "{err}"
    );
    assert!(err.contains("--socket"), "{err}");

    std::fs::create_dir_all(&dir.0).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = format!("{:#}", call(&path, &Request::BlockList).unwrap_err());
    assert!(
        err.contains("not running, or it uses another socket"),
        "{err}"
    );
}

#[test]
fn only_root_and_the_agent_user_may_connect() {
    assert!(peer_allowed(0, 1000));
    assert!(peer_allowed(1000, 1000));
    assert!(!peer_allowed(1001, 1000));
    assert!(peer_allowed(0, 0));
    assert!(!peer_allowed(1000, 0));
}

#[test]
fn requests_use_the_documented_json() {
    let add = Request::BlockAdd {
        cidr: "192.0.2.1".into(),
        ttl_secs: Some(90),
        reason: None,
    };
    assert_eq!(
        serde_json::to_string(&add).unwrap(),
        r#"{"op":"block_add","cidr":"192.0.2.1","ttl_secs":90}"#
    );
    assert_eq!(
        serde_json::from_str::<Request>(r#"{"op":"lists_reload"}"#).unwrap(),
        Request::ListsReload
    );
    let r: Response = serde_json::from_str(r#"{"ok":true,"message":"m"}"#).unwrap();
    assert!(r.entries.is_empty());
}

#[test]
fn ttls() {
    for (s, secs) in [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172_800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93_784),
        ("3600", 3600),
        (" 5m ", 300),
    ] {
        assert_eq!(parse_ttl(s), Ok(Duration::from_secs(secs)), "{s}");
    }
    for s in [
        "",
        " ",
        "0",
        "0s",
        "0h0m",
        "abc",
        "5x",
        "h",
        "1h1h",
        "30m1h",
        "1.5h",
        "-5m",
        "5m-",
        "1 h",
        "99999999999999999999",
        "300000000000000000d",
    ] {
        let err = parse_ttl(s).unwrap_err().to_string();
        assert!(err.contains("15m"), "{s:?}: {err}");
    }
}

#[test]
fn durations_for_people() {
    for (secs, want) in [
        (0, "0s"),
        (45, "45s"),
        (3552, "59m 12s"),
        (3600, "1h"),
        (3660, "1h 1m"),
        (183_600, "2d 3h"),
        (86_401, "1d"),
    ] {
        assert_eq!(format_duration(Duration::from_secs(secs)), want);
    }
}

#[test]
fn block_list_table() {
    let entries = [
        ManualEntry {
            cidr: "203.0.113.0/24".into(),
            reason: Some("scan\nner".into()),
            added_unix: 1_795_000_000,
            expires_unix: Some(1_795_003_600),
        },
        ManualEntry {
            cidr: "2001:db8::/32".into(),
            reason: None,
            added_unix: 1_795_000_000,
            expires_unix: None,
        },
    ];
    assert_eq!(
        format_entries(&entries, 1_795_000_048),
        "CIDR            REASON    ADDED                 EXPIRES IN\n\
         203.0.113.0/24  scan ner  2026-11-18 11:06:40Z  59m 12s\n\
         2001:db8::/32   -         2026-11-18 11:06:40Z  never\n"
    );
}

#[test]
fn manual_blocks_add_replace_remove_expire_limit() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let mut m = ManualBlocks::new(2);
    let a = prefix("198.51.100.0/24");
    let b = prefix("2001:db8::/32");
    assert_eq!(m.add(a, Some(Duration::from_secs(60)), None, t0), Ok(true));
    assert_eq!(m.add(a, None, Some("for good".into()), t0), Ok(false));
    assert_eq!(m.next_expiry(), None);
    assert_eq!(m.entries()[0].reason.as_deref(), Some("for good"));
    assert_eq!(m.entries()[0].expires_unix, None);
    assert_eq!(m.add(b, Some(Duration::from_secs(60)), None, t0), Ok(true));
    assert_eq!(m.len(), 2);

    let err = m.add(prefix("192.0.2.1"), None, None, t0).unwrap_err();
    assert!(err.to_string().contains("full (2 entries)"), "{err}");
    assert!(
        m.add(a, None, None, t0).is_ok(),
        "replacing never hits the limit"
    );
    assert!(m
        .add(prefix("192.0.2.1"), Some(Duration::ZERO), None, t0)
        .is_err());

    assert_eq!(m.next_expiry(), Some(t0 + Duration::from_secs(60)));
    assert!(m.expire(t0 + Duration::from_secs(59)).is_empty());
    assert_eq!(m.expire(t0 + Duration::from_secs(60)), vec![b]);
    assert_eq!(m.prefixes().copied().collect::<Vec<_>>(), vec![a]);

    assert!(!m.remove(&b));
    assert!(m.remove(&a));
    assert!(m.is_empty());
}

#[test]
fn apply_answers_block_requests_only() {
    let mut m = ManualBlocks::new(8);
    let now = SystemTime::now();
    let add = Request::BlockAdd {
        cidr: "192.0.2.9/24".into(),
        ttl_secs: None,
        reason: None,
    };
    let (r, changed) = m.apply(&add, now).unwrap();
    assert!(r.ok && changed);
    assert_eq!(r.message, "blocked 192.0.2.0/24 until removed");
    let (r, changed) = m.apply(&add, now).unwrap();
    assert!(r.ok && !changed);
    assert!(r.message.starts_with("updated"));
    let ttl0 = Request::BlockAdd {
        cidr: "192.0.2.0/24".into(),
        ttl_secs: Some(0),
        reason: None,
    };
    assert!(!m.apply(&ttl0, now).unwrap().0.ok);
    assert!(m.apply(&Request::ListsReload, now).is_none());
    let del = Request::BlockDel {
        cidr: "192.0.2.200/24".into(),
    };
    assert!(m.apply(&del, now).unwrap().1);
}
