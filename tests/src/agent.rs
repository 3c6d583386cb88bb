//! Running the real `precinct` binary inside a lab namespace, and reading what it reports:
//! its `/metrics` page and its EVE file.

use std::{
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

use crate::lab::Lab;

/// Path of the `precinct` binary: `PRECINCT_BIN`, else next to the test executable's folder
/// (`target/<profile>/precinct`, which `cargo test --workspace` builds).
pub fn precinct_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PRECINCT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("precinct"))
        .expect("target directory");
    assert!(
        candidate.exists(),
        "{} is missing: build it (`cargo build -p sensor-user`) or set PRECINCT_BIN",
        candidate.display()
    );
    candidate
}

/// The agent running in the lab's portal namespace. Dropping it kills the process.
pub struct Agent {
    child: Option<Child>,
    /// Its EVE file.
    pub eve: PathBuf,
    /// Where its metrics are served (inside the portal namespace).
    pub metrics_url: String,
    portal_ns: String,
    /// Its control socket.
    pub socket: PathBuf,
}

impl Agent {
    /// Starts `precinct run` on the portal interface with `extra` arguments, and waits until
    /// its metrics endpoint answers.
    pub fn start(lab: &Lab, dir: &std::path::Path, extra: &[&str]) -> Agent {
        Agent::start_with(&precinct_bin(), lab, dir, extra)
    }

    /// [`Agent::start`] with a given binary.
    pub fn start_with(
        bin: &std::path::Path,
        lab: &Lab,
        dir: &std::path::Path,
        extra: &[&str],
    ) -> Agent {
        let eve = dir.join("eve.json");
        let listen = "127.0.0.1:9727";
        let bin = bin.to_str().expect("UTF-8 path");
        let eve_s = eve.to_str().expect("UTF-8 path");
        // Each agent its own control socket: labs run side by side.
        let socket = dir.join("control.sock");
        let socket_s = socket.to_str().expect("UTF-8 path").to_string();
        let mut args = vec![
            bin,
            "run",
            "--iface",
            &lab.portal_if,
            "--eve",
            eve_s,
            "--metrics-listen",
            listen,
            "--socket",
            &socket_s,
        ];
        args.extend_from_slice(extra);
        let child = lab.spawn(&lab.portal_ns, &args).expect("start precinct");
        let mut agent = Agent {
            child: Some(child),
            eve,
            metrics_url: format!("http://{listen}/metrics"),
            portal_ns: lab.portal_ns.clone(),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if agent.try_metrics().is_some() {
                return agent;
            }
            if let Some(child) = agent.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let out = agent
                        .child
                        .take()
                        .expect("child")
                        .wait_with_output()
                        .expect("output");
                    panic!(
                        "precinct exited early ({status}): {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "precinct did not serve metrics within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_metrics(&self) -> Option<String> {
        let script = format!(
            "import urllib.request,sys\ntry:\n print(urllib.request.urlopen('{}', timeout=5).read().decode())\nexcept Exception as e:\n sys.exit(1)",
            self.metrics_url
        );
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.portal_ns, "python3", "-c", &script])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The agent's process id (`ip netns exec` execs it in place).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// The current `/metrics` page.
    pub fn metrics(&self) -> Metrics {
        Metrics(self.try_metrics().expect("metrics endpoint answers"))
    }

    /// Runs `precinct ARGS --socket SOCKET` (a control command) and returns its output.
    pub fn control(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(precinct_bin());
        cmd.args(args).arg("--socket").arg(&self.socket);
        cmd.output().expect("run precinct")
    }

    /// Sends SIGKILL and reaps the agent: what a crash looks like.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("agent running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends `signal` (such as `libc::SIGHUP`) to the running agent.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("agent running");
        // SAFETY: kill(2) on our own child's pid (`ip netns exec` execs the agent in place).
        let rc = unsafe { libc::kill(child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Sends SIGTERM and waits (up to 30 s) for a clean exit; returns its stderr.
    pub fn stop(&mut self) -> String {
        let mut child = self.child.take().expect("agent running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("precinct did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("output");
        assert!(
            out.status.success(),
            "precinct exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Every EVE record written so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.eve).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("EVE line is not JSON ({e}): {l}"))
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `/metrics` page.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the series written exactly as `series` (name and labels). Panics when the
    /// page has no such series: a renamed metric or label must fail the test that reads it,
    /// not read as 0.
    pub fn value(&self, series: &str) -> u64 {
        self.find(series).unwrap_or_else(|| {
            panic!(
                "no series {series} on the metrics page (renamed, or never created?):\n{}",
                self.0
            )
        })
    }

    /// The value of `series`, or 0 when the page does not have it: for labelled series that
    /// appear with their first event (an alert, a drop), where "none so far" is what the test
    /// means. It cannot tell a renamed series from one with no events yet, so a test that uses
    /// it also reads the series with [`Metrics::value`] once it must exist.
    pub fn value_or_zero(&self, series: &str) -> u64 {
        self.find(series).unwrap_or(0)
    }

    fn find(&self, series: &str) -> Option<u64> {
        self.0
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|v| v.trim().parse::<f64>().expect("numeric sample") as u64)
    }
}
