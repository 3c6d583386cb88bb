//! Reading a Prometheus text exposition (what the agent's `/metrics` serves) into samples, and
//! fetching it: just enough HTTP/1.0 over a `TcpStream` for a local agent.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{TcpStream, ToSocketAddrs as _},
    time::Duration,
};

use anyhow::{bail, Context as _};

/// One sample: a series and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Every sample of an exposition, in order.
#[derive(Clone, Debug, Default)]
pub struct Scrape(pub Vec<Sample>);

impl Scrape {
    /// Parses the text format; comment lines and lines that do not parse are skipped.
    pub fn parse(text: &str) -> Scrape {
        Scrape(text.lines().filter_map(parse_line).collect())
    }

    /// The samples of metric `name`.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.0.iter().filter(move |s| s.name == name)
    }

    /// The sum of the samples of `name` whose labels include every pair of `with`; `None`
    /// when there is none.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for s in self.series(name) {
            if with
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }

    /// Whether any metric's name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.iter().any(|s| s.name.starts_with(prefix))
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            // Skip separators, then a name up to '=' or the closing brace.
            while chars.next_if(|(_, c)| *c == ',' || *c == ' ').is_some() {}
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            let key_end = if c == '=' {
                start
            } else {
                chars.by_ref().find(|(_, c)| *c == '=')?.0
            };
            let key = inner[start..key_end].trim().to_string();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        }
    }
    // The value, then an optional timestamp.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `GET path` from `addr` (`host:port`): the status code and the body.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let target = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout).with_context(|| {
        format!(
            "connecting to the agent's metrics endpoint at {addr}; is `precinct run` running, \
             with metrics on (see --metrics and --config)?"
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write: a server may answer and close after the first segment it reads.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending the request to {addr}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{addr} did not answer with HTTP");
    };
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("{addr} answered without a status code"))?;
    Ok((code, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values() {
        let s = Scrape::parse(
            "# HELP x y\n# TYPE precinct_a_total counter\nprecinct_a_total{hook=\"ingress\",b=\"q\\\"u,o}te\"} 12 1700000000000\nprecinct_b 3.5\nprecinct_c{} +Inf\n\nbroken{x=1} 2\n",
        );
        assert_eq!(s.0.len(), 3, "{s:?}");
        assert_eq!(s.0[0].name, "precinct_a_total");
        assert_eq!(s.0[0].labels["hook"], "ingress");
        assert_eq!(s.0[0].labels["b"], "q\"u,o}te");
        assert_eq!(s.0[0].value, 12.0);
        assert_eq!(s.sum("precinct_b", &[]), Some(3.5));
        assert_eq!(s.sum("precinct_c", &[]), Some(f64::INFINITY));
        assert_eq!(s.sum("precinct_a_total", &[("hook", "egress")]), None);
        assert_eq!(
            s.sum("precinct_a_total", &[("hook", "ingress")]),
            Some(12.0)
        );
    }
}
