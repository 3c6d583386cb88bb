//! Address and port expressions of rule headers: `any`, addresses and CIDRs (IPv4 and IPv6),
//! port numbers and ranges (`1:1024`, `:1024`, `1024:`), `$VARIABLES`, negation `!` and
//! groups `[...]` nested to any depth, as Suricata reads them.

use std::{collections::HashMap, net::IpAddr};

/// Why an address or port expression does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Variable expansion went more than 16 levels deep.
    #[error("variables nest more than 16 deep (a variable refers to itself?)")]
    TooDeep,
    /// A `[` without its `]`.
    #[error("{0:?}: a [group] is not closed")]
    UnclosedGroup(String),
    /// `[]`.
    #[error("{0:?}: an empty group")]
    EmptyGroup(String),
    /// A `$NAME` with no value.
    #[error("variable ${0} is not defined; define it under [rules.vars] in the config")]
    UndefinedVariable(String),
    /// An address item that is not an address, CIDR, variable or `any`.
    #[error("{0:?} is not an address, CIDR, variable or any")]
    NotAnAddress(String),
    /// A CIDR whose length is too long for its family and is not a dotted netmask either.
    #[error("{text:?}: prefix length {len} is out of range")]
    PrefixLength {
        /// The item.
        text: String,
        /// Its text after the `/`.
        len: String,
    },
    /// A port item that is not a port, range, variable or `any`.
    #[error("{0:?} is not a port, range, variable or any")]
    NotAPort(String),
    /// `HIGH:LOW`.
    #[error("{0:?}: the range is backwards")]
    BackwardsRange(String),
}

/// Suricata's default address and port variables (suricata.yaml `vars`).
pub fn default_vars() -> HashMap<String, String> {
    let mut v = HashMap::new();
    let home = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]";
    for (k, val) in [
        ("HOME_NET", home),
        ("EXTERNAL_NET", "!$HOME_NET"),
        ("HTTP_SERVERS", "$HOME_NET"),
        ("SMTP_SERVERS", "$HOME_NET"),
        ("SQL_SERVERS", "$HOME_NET"),
        ("DNS_SERVERS", "$HOME_NET"),
        ("TELNET_SERVERS", "$HOME_NET"),
        ("AIM_SERVERS", "$EXTERNAL_NET"),
        ("DC_SERVERS", "$HOME_NET"),
        ("DNP3_SERVER", "$HOME_NET"),
        ("DNP3_CLIENT", "$HOME_NET"),
        ("MODBUS_CLIENT", "$HOME_NET"),
        ("MODBUS_SERVER", "$HOME_NET"),
        ("ENIP_CLIENT", "$HOME_NET"),
        ("ENIP_SERVER", "$HOME_NET"),
        ("HTTP_PORTS", "80"),
        ("SHELLCODE_PORTS", "!80"),
        ("ORACLE_PORTS", "1521"),
        ("SSH_PORTS", "22"),
        ("DNP3_PORTS", "20000"),
        ("MODBUS_PORTS", "502"),
        ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
        ("FTP_PORTS", "21"),
        ("GENEVE_PORTS", "6081"),
        ("VXLAN_PORTS", "4789"),
        ("TEREDO_PORTS", "3544"),
    ] {
        v.insert(k.to_string(), val.to_string());
    }
    v
}

/// A parsed address expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrExpr {
    /// Every address.
    Any,
    /// One network: address bytes (IPv4 as 4, IPv6 as 16) and prefix length.
    Net(IpAddr, u8),
    /// Everything the inner expression does not match.
    Not(Box<AddrExpr>),
    /// A group: matches when some positive member matches (or there is none) and no
    /// negated member does.
    Group(Vec<AddrExpr>),
}

/// A parsed port expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortExpr {
    /// Every port.
    Any,
    /// An inclusive range.
    Range(u16, u16),
    /// Negation.
    Not(Box<PortExpr>),
    /// A group, as for addresses.
    Group(Vec<PortExpr>),
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl AddrExpr {
    /// Whether `ip` is in the expression.
    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            AddrExpr::Any => true,
            AddrExpr::Net(n, l) => in_net(ip, *n, *l),
            AddrExpr::Not(e) => !e.matches(ip),
            AddrExpr::Group(items) => {
                let mut positives = items
                    .iter()
                    .filter(|i| !matches!(i, AddrExpr::Not(_)))
                    .peekable();
                let pos = positives.peek().is_none() || positives.any(|i| i.matches(ip));
                pos && items
                    .iter()
                    .filter(|i| matches!(i, AddrExpr::Not(_)))
                    .all(|i| i.matches(ip))
            }
        }
    }
}

impl PortExpr {
    /// Whether `port` is in the expression.
    pub fn matches(&self, port: u16) -> bool {
        match self {
            PortExpr::Any => true,
            PortExpr::Range(a, b) => (*a..=*b).contains(&port),
            PortExpr::Not(e) => !e.matches(port),
            PortExpr::Group(items) => {
                let mut positives = items
                    .iter()
                    .filter(|i| !matches!(i, PortExpr::Not(_)))
                    .peekable();
                let pos = positives.peek().is_none() || positives.any(|i| i.matches(port));
                pos && items
                    .iter()
                    .filter(|i| matches!(i, PortExpr::Not(_)))
                    .all(|i| i.matches(port))
            }
        }
    }
}

/// Splits a group's inside at top-level commas.
fn split_group(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Expands variables and parses with `leaf` for single items; `depth` bounds variable
/// recursion.
fn parse_expr<T>(
    s: &str,
    vars: &HashMap<String, String>,
    depth: usize,
    leaf: &dyn Fn(&str) -> Result<T, AddrError>,
    wrap: &dyn Fn(Wrap<T>) -> T,
) -> Result<T, AddrError> {
    if depth > 16 {
        return Err(AddrError::TooDeep);
    }
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('!') {
        let inner = parse_expr(rest, vars, depth, leaf, wrap)?;
        return Ok(wrap(Wrap::Not(inner)));
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| AddrError::UnclosedGroup(s.to_owned()))?;
        let items = split_group(inner)
            .into_iter()
            .map(|p| parse_expr(p, vars, depth, leaf, wrap))
            .collect::<Result<Vec<T>, AddrError>>()?;
        if items.is_empty() {
            return Err(AddrError::EmptyGroup(s.to_owned()));
        }
        return Ok(wrap(Wrap::Group(items)));
    }
    if let Some(name) = s.strip_prefix('$') {
        let value = vars
            .get(name)
            .ok_or_else(|| AddrError::UndefinedVariable(name.to_owned()))?;
        return parse_expr(value, vars, depth + 1, leaf, wrap);
    }
    leaf(s)
}

enum Wrap<T> {
    Not(T),
    Group(Vec<T>),
}

/// Parses an address expression.
pub fn parse_addr(s: &str, vars: &HashMap<String, String>) -> Result<AddrExpr, AddrError> {
    let leaf = |t: &str| -> Result<AddrExpr, AddrError> {
        if t.eq_ignore_ascii_case("any") {
            return Ok(AddrExpr::Any);
        }
        let (ip, len) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (t, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| AddrError::NotAnAddress(t.to_owned()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                // A dotted netmask (192.168.0.0/255.255.0.0) is accepted as its prefix length.
                _ => match l.parse::<std::net::Ipv4Addr>() {
                    Ok(m) if ip.is_ipv4() => u32::from(m).count_ones() as u8,
                    _ => {
                        return Err(AddrError::PrefixLength {
                            text: t.to_owned(),
                            len: l.to_owned(),
                        })
                    }
                },
            },
        };
        Ok(AddrExpr::Net(ip, len))
    };
    let wrap = |w: Wrap<AddrExpr>| match w {
        Wrap::Not(e) => AddrExpr::Not(Box::new(e)),
        Wrap::Group(v) => AddrExpr::Group(v),
    };
    parse_expr(s, vars, 0, &leaf, &wrap)
}

/// Parses a port expression.
pub fn parse_port(s: &str, vars: &HashMap<String, String>) -> Result<PortExpr, AddrError> {
    let leaf = |t: &str| -> Result<PortExpr, AddrError> {
        if t.eq_ignore_ascii_case("any") {
            return Ok(PortExpr::Any);
        }
        let num = |x: &str| {
            x.trim()
                .parse::<u16>()
                .map_err(|_| AddrError::NotAPort(t.to_owned()))
        };
        match t.split_once(':') {
            Some((a, b)) => {
                let lo = if a.trim().is_empty() { 0 } else { num(a)? };
                let hi = if b.trim().is_empty() {
                    u16::MAX
                } else {
                    num(b)?
                };
                if lo > hi {
                    return Err(AddrError::BackwardsRange(t.to_owned()));
                }
                Ok(PortExpr::Range(lo, hi))
            }
            None => {
                let p = num(t)?;
                Ok(PortExpr::Range(p, p))
            }
        }
    };
    let wrap = |w: Wrap<PortExpr>| match w {
        Wrap::Not(e) => PortExpr::Not(Box::new(e)),
        Wrap::Group(v) => PortExpr::Group(v),
    };
    parse_expr(s, vars, 0, &leaf, &wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn addresses_variables_negation_groups() {
        let vars = default_vars();
        let home = parse_addr("$HOME_NET", &vars).expect("home");
        assert!(home.matches(ip("10.1.2.3")));
        assert!(home.matches(ip("192.168.7.7")));
        assert!(!home.matches(ip("8.8.8.8")));
        let ext = parse_addr("$EXTERNAL_NET", &vars).expect("ext");
        assert!(ext.matches(ip("8.8.8.8")));
        assert!(!ext.matches(ip("10.0.0.1")));
        let g = parse_addr("[10.0.0.0/8, !10.1.0.0/16, [2001:db8::/32]]", &vars).expect("group");
        assert!(g.matches(ip("10.2.0.1")));
        assert!(!g.matches(ip("10.1.0.1")));
        assert!(g.matches(ip("2001:db8::1")));
        assert!(!g.matches(ip("11.0.0.1")));
        let only_neg = parse_addr("[!1.2.3.4]", &vars).expect("neg");
        assert!(only_neg.matches(ip("1.2.3.5")));
        assert!(!only_neg.matches(ip("1.2.3.4")));
        assert!(parse_addr("0.0.0.0/0", &vars)
            .expect("all")
            .matches(ip("9.9.9.9")));
        assert!(!parse_addr("0.0.0.0/0", &vars)
            .expect("all")
            .matches(ip("::1")));
        assert!(parse_addr("10.0.0.0/255.0.0.0", &vars)
            .expect("mask")
            .matches(ip("10.9.9.9")));
    }

    #[test]
    fn ports_ranges_and_groups() {
        let vars = default_vars();
        let p = parse_port("[80,443,8000:8100,!8080]", &vars).expect("ports");
        assert!(p.matches(80) && p.matches(8050) && !p.matches(8080) && !p.matches(22));
        assert!(parse_port(":1024", &vars).expect("lo").matches(0));
        assert!(parse_port("1024:", &vars).expect("hi").matches(65535));
        assert!(!parse_port("!$HTTP_PORTS", &vars).expect("not").matches(80));
        assert!(parse_port("$FILE_DATA_PORTS", &vars)
            .expect("nested")
            .matches(143));
    }

    #[test]
    fn errors_explain() {
        let vars = default_vars();
        assert!(parse_addr("$NOPE", &vars)
            .unwrap_err()
            .to_string()
            .contains("not defined"));
        assert!(parse_addr("10.0.0.0/33", &vars)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse_addr("[1.2.3.4", &vars)
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        assert!(parse_port("99999", &vars).is_err());
        assert!(parse_port("90:80", &vars)
            .unwrap_err()
            .to_string()
            .contains("backwards"));
        let mut looping = HashMap::new();
        looping.insert("A".to_string(), "$A".to_string());
        assert!(parse_addr("$A", &looping)
            .unwrap_err()
            .to_string()
            .contains("nest"));
    }
}
