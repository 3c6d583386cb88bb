//! The small HTTP endpoint: `GET /metrics` (the text exposition) and `GET /healthz` (200 while
//! every health check passes, else 503 with one line per failing check).

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use super::Metrics;

/// The metrics as the agent and the HTTP task share them.
#[derive(Clone)]
pub struct Endpoint(pub Arc<Mutex<Metrics>>);

impl Endpoint {
    /// The metrics, locked (see [`crate::sync`] for a lock a panic poisoned).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Metrics> {
        crate::sync::lock(&self.0)
    }

    pub(super) fn respond(&self, request_line: &str) -> (u16, &'static str, Vec<u8>) {
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method != "GET" {
            return (405, "text/plain", b"only GET is served\n".to_vec());
        }
        let mut metrics = self.lock();
        match path.split('?').next().unwrap_or("") {
            "/metrics" => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics.render().into_bytes(),
            ),
            "/healthz" => {
                let problems = metrics.check_health();
                if problems.is_empty() {
                    (200, "text/plain", b"ok\n".to_vec())
                } else {
                    let mut body = String::from("unhealthy\n");
                    for (check, problem) in problems {
                        body.push_str(&format!("{check}: {problem}\n"));
                    }
                    (503, "text/plain", body.into_bytes())
                }
            }
            _ => (
                404,
                "text/plain",
                b"not found: try /metrics or /healthz\n".to_vec(),
            ),
        }
    }
}

/// Binds `listen`; the returned future serves requests until dropped.
pub async fn serve(
    listen: &str,
    endpoint: Endpoint,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("binding the metrics endpoint to {listen}; change metrics.listen in the config or stop what holds the port")
    })?;
    Ok(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                // Read until the end of the request line; requests have no body here.
                while len < buf.len() {
                    match tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        stream.read(&mut buf[len..]),
                    )
                    .await
                    {
                        Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
                        || buf[..len].contains(&b'\n')
                    {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&buf[..len]);
                let line = text.lines().next().unwrap_or("");
                let (code, ctype, body) = endpoint.respond(line);
                let reason = match code {
                    200 => "OK",
                    404 => "Not Found",
                    405 => "Method Not Allowed",
                    503 => "Service Unavailable",
                    _ => "Error",
                };
                let head = format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let e = Endpoint(Arc::new(Mutex::new(Metrics::new().expect("metrics"))));
        assert_eq!(e.respond("GET /metrics HTTP/1.1").0, 200);
        assert_eq!(e.respond("GET /healthz HTTP/1.1").0, 200);
        assert_eq!(e.respond("GET /nope HTTP/1.1").0, 404);
        assert_eq!(e.respond("POST /metrics HTTP/1.1").0, 405);
    }

    #[test]
    fn a_thread_that_panicked_with_the_lock_leaves_the_endpoint_serving() {
        let e = Endpoint(Arc::new(Mutex::new(Metrics::new().expect("metrics"))));
        let held = e.clone();
        let panicked = std::thread::spawn(move || {
            let _m = held.0.lock().expect("lock");
            panic!("a sweep that panicked while it held the metrics");
        })
        .join();
        assert!(panicked.is_err() && e.0.is_poisoned());
        assert_eq!(e.respond("GET /metrics HTTP/1.1").0, 200);
        assert_eq!(e.respond("GET /healthz HTTP/1.1").0, 200);
        e.lock().events.with_label_values(&["flow"]).inc();
        let (_, _, body) = e.respond("GET /metrics HTTP/1.1");
        assert!(String::from_utf8_lossy(&body)
            .contains("precinct_eve_events_total{event_type=\"flow\"} 1"));
    }

    #[test]
    fn healthz_lists_the_failing_checks() {
        let e = Endpoint(Arc::new(Mutex::new(Metrics::new().expect("metrics"))));
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let broken = broken.clone();
            let mut m = e.0.lock().expect("lock");
            m.add_health_check(
                "output:file",
                Box::new(move || {
                    broken
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .then(|| "no write for 60 s".to_string())
                }),
            );
            m.add_health_check("attachment:eth9", Box::new(|| None));
        }
        let (code, _, body) = e.respond("GET /healthz HTTP/1.1");
        assert_eq!((code, body.as_slice()), (200, &b"ok\n"[..]));
        broken.store(true, std::sync::atomic::Ordering::Relaxed);
        let (code, _, body) = e.respond("GET /healthz HTTP/1.1");
        assert_eq!(code, 503);
        assert_eq!(
            String::from_utf8(body).expect("UTF-8"),
            "unhealthy\noutput:file: no write for 60 s\n"
        );
        let (_, _, page) = e.respond("GET /metrics HTTP/1.1");
        let page = String::from_utf8(page).expect("UTF-8");
        for line in [
            "precinct_healthy 0",
            "precinct_health_check_ok{check=\"output:file\"} 0",
            "precinct_health_check_ok{check=\"attachment:eth9\"} 1",
        ] {
            assert!(page.lines().any(|l| l == line), "{line}: {page}");
        }
        broken.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(e.respond("GET /healthz HTTP/1.1").0, 200);
    }
}
