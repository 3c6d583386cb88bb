//! Prometheus in tests: `promtool check metrics` on an exposition, a real Prometheus server
//! scraping the agent inside a lab namespace, and the Grafana dashboard's queries.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// Runs `promtool check metrics` on `exposition`: `Err` with what it printed when it finds a
/// problem (a lint warning included).
pub fn promtool_check(exposition: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "running promtool ({e}); `cargo xtask setup` installs Debian's prometheus package"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("feeding promtool");
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics ({}): {said}", out.status))
    }
}

/// The Grafana dashboard in `docs/grafana/`.
pub fn dashboard() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/precinct-dashboard.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every panel of `dashboard`, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Every PromQL expression of the dashboard's panels and variables.
pub fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs: Vec<String> = panels(dashboard)
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_string());
        }
    }
    exprs
}

/// The `precinct_*` metric names `expr` refers to.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("precinct_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// `expr` with Grafana's variables replaced by what an instant query can take.
pub fn instant(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$instance", ".*")
}

/// A Prometheus server in a namespace, with its own configuration and data directory.
/// Dropping it kills the server.
pub struct Prometheus {
    child: Child,
    ns: String,
    /// Its base URL inside the namespace.
    pub url: String,
    log: PathBuf,
}

/// Runs `curl` inside `ns`; the body of a 2xx answer.
pub fn curl(ns: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sf", "--max-time", "5"])
        .args(args)
        .output()
        .expect("run curl (`cargo xtask setup` installs it)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Prometheus {
    /// Starts Prometheus in `ns` on 127.0.0.1:9090, scraping `target` (host:port) every
    /// second as job `precinct`, and waits (up to 30 s) until it is ready.
    pub fn start(ns: &str, dir: &Path, target: &str) -> Prometheus {
        std::fs::create_dir_all(dir.join("data")).expect("prometheus dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: precinct\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("prometheus log");
        let listen = "127.0.0.1:9090";
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start prometheus (`cargo xtask setup` installs Debian's package)");
        let mut p = Prometheus {
            child,
            ns: ns.to_string(),
            url: format!("http://{listen}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(ns, &[&format!("{}/-/ready", p.url)]).is_none() {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited ({status}): {}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an instant query: the API's whole answer.
    pub fn query(&self, expr: &str) -> Value {
        let body = curl(
            &self.ns,
            &[
                "-G",
                &format!("{}/api/v1/query", self.url),
                "--data-urlencode",
                &format!("query={expr}"),
            ],
        );
        match body {
            Some(b) => serde_json::from_str(&b).expect("the API answers JSON"),
            // A 4xx answer (a bad expression) carries the error; ask again without -f.
            None => {
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &self.ns,
                        "curl",
                        "-s",
                        "--max-time",
                        "5",
                        "-G",
                    ])
                    .arg(format!("{}/api/v1/query", self.url))
                    .args(["--data-urlencode", &format!("query={expr}")])
                    .output()
                    .expect("curl");
                serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
            }
        }
    }

    /// Queries `expr` until `accept` takes the result vector (up to `within`).
    pub fn wait_for(
        &self,
        expr: &str,
        within: Duration,
        accept: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let answer = self.query(expr);
            let result = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if accept(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{expr}: no acceptable answer within {within:?}; last: {answer}\ntargets: {}\nlog: {}",
                curl(&self.ns, &[&format!("{}/api/v1/targets", self.url)]).unwrap_or_default(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_expressions() {
        assert_eq!(
            metric_names(
                "8 * sum by (hook) (rate(precinct_bytes_total{instance=~\"$instance\"}[1m])) / precinct_up"
            ),
            ["precinct_bytes_total", "precinct_up"]
        );
        assert_eq!(
            instant("rate(x[$__rate_interval]) {instance=~\"$instance\"}"),
            "rate(x[1m]) {instance=~\".*\"}"
        );
    }
}
