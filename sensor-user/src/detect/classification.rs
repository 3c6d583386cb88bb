//! Classification of rules (`classtype`): the table Suricata ships as `classification.config`,
//! built in, and a parser for operators' own files in the same format.

use std::collections::HashMap;

/// `config classification: NAME,DESCRIPTION,PRIORITY` entries Suricata ships by default.
const DEFAULT: &[(&str, &str, u8)] = &[
    ("not-suspicious", "Not Suspicious Traffic", 3),
    ("unknown", "Unknown Traffic", 3),
    ("bad-unknown", "Potentially Bad Traffic", 2),
    ("attempted-recon", "Attempted Information Leak", 2),
    ("successful-recon-limited", "Information Leak", 2),
    (
        "successful-recon-largescale",
        "Large Scale Information Leak",
        2,
    ),
    ("attempted-dos", "Attempted Denial of Service", 2),
    ("successful-dos", "Denial of Service", 2),
    ("attempted-user", "Attempted User Privilege Gain", 1),
    ("unsuccessful-user", "Unsuccessful User Privilege Gain", 1),
    ("successful-user", "Successful User Privilege Gain", 1),
    (
        "attempted-admin",
        "Attempted Administrator Privilege Gain",
        1,
    ),
    (
        "successful-admin",
        "Successful Administrator Privilege Gain",
        1,
    ),
    ("rpc-portmap-decode", "Decode of an RPC Query", 2),
    ("shellcode-detect", "Executable code was detected", 1),
    ("string-detect", "A suspicious string was detected", 3),
    (
        "suspicious-filename-detect",
        "A suspicious filename was detected",
        2,
    ),
    (
        "suspicious-login",
        "An attempted login using a suspicious username was detected",
        2,
    ),
    ("system-call-detect", "A system call was detected", 2),
    ("tcp-connection", "A TCP connection was detected", 4),
    ("trojan-activity", "A Network Trojan was detected", 1),
    (
        "unusual-client-port-connection",
        "A client was using an unusual port",
        2,
    ),
    ("network-scan", "Detection of a Network Scan", 3),
    (
        "denial-of-service",
        "Detection of a Denial of Service Attack",
        2,
    ),
    (
        "non-standard-protocol",
        "Detection of a non-standard protocol or event",
        2,
    ),
    (
        "protocol-command-decode",
        "Generic Protocol Command Decode",
        3,
    ),
    (
        "web-application-activity",
        "access to a potentially vulnerable web application",
        2,
    ),
    ("web-application-attack", "Web Application Attack", 1),
    ("misc-activity", "Misc activity", 3),
    ("misc-attack", "Misc Attack", 2),
    ("icmp-event", "Generic ICMP event", 3),
    (
        "policy-violation",
        "Potential Corporate Privacy Violation",
        1,
    ),
    (
        "default-login-attempt",
        "Attempt to login by a default username and password",
        2,
    ),
    (
        "targeted-activity",
        "Targeted Malicious Activity was Detected",
        1,
    ),
    ("exploit-kit", "Exploit Kit Activity Detected", 1),
    (
        "external-ip-check",
        "Device Retrieving External IP Address Detected",
        2,
    ),
    ("domain-c2", "Domain Observed Used for C2 Detected", 1),
    ("pup-activity", "Possibly Unwanted Program Detected", 2),
    (
        "credential-theft",
        "Successful Credential Theft Detected",
        1,
    ),
    (
        "social-engineering",
        "Possible Social Engineering Attempted",
        2,
    ),
    ("coin-mining", "Crypto Currency Mining Activity Detected", 2),
    (
        "command-and-control",
        "Malware Command and Control Activity Detected",
        1,
    ),
];

/// Where a bad line of a `classification.config` is, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassificationLine {
    /// The file, as the caller named it.
    pub origin: String,
    /// 1-based line number.
    pub line: usize,
    /// The line, trimmed.
    pub text: String,
}

/// A bad line of a `classification.config`, shown as `FILE:LINE: PROBLEM: "TEXT"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClassificationError {
    /// Not a `config classification:` line.
    #[error(
        "{}:{}: expected `config classification: name,description,priority`: {:?}",
        .0.origin, .0.line, .0.text
    )]
    NotClassification(ClassificationLine),
    /// No `,` after the name.
    #[error("{}:{}: missing description: {:?}", .0.origin, .0.line, .0.text)]
    MissingDescription(ClassificationLine),
    /// No `,` after the description.
    #[error("{}:{}: missing priority: {:?}", .0.origin, .0.line, .0.text)]
    MissingPriority(ClassificationLine),
    /// The priority is not a number from 0 to 255.
    #[error("{}:{}: priority is not a number: {:?}", .0.origin, .0.line, .0.text)]
    PriorityNotNumber(ClassificationLine),
}

/// Class name to (description, priority).
#[derive(Clone, Debug, Default)]
pub struct Classifications(HashMap<String, (String, u8)>);

impl Classifications {
    /// The built-in table.
    pub fn builtin() -> Classifications {
        Classifications(
            DEFAULT
                .iter()
                .map(|(n, d, p)| (n.to_string(), (d.to_string(), *p)))
                .collect(),
        )
    }

    /// Adds (or replaces) entries from a `classification.config` text; `origin` names the file
    /// in errors, which give the line and what is wrong.
    pub fn extend_from(&mut self, text: &str, origin: &str) -> Result<(), ClassificationError> {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let at = || ClassificationLine {
                origin: origin.to_owned(),
                line: i + 1,
                text: t.to_owned(),
            };
            let body = t
                .strip_prefix("config classification:")
                .ok_or_else(|| ClassificationError::NotClassification(at()))?;
            let (name, rest) = body
                .split_once(',')
                .ok_or_else(|| ClassificationError::MissingDescription(at()))?;
            let (desc, prio) = rest
                .rsplit_once(',')
                .ok_or_else(|| ClassificationError::MissingPriority(at()))?;
            let prio: u8 = prio
                .trim()
                .parse()
                .map_err(|_| ClassificationError::PriorityNotNumber(at()))?;
            self.0
                .insert(name.trim().to_string(), (desc.trim().to_string(), prio));
        }
        Ok(())
    }

    /// Description and priority of a class.
    pub fn get(&self, name: &str) -> Option<&(String, u8)> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_and_files() {
        let mut c = Classifications::builtin();
        assert_eq!(
            c.get("bad-unknown"),
            Some(&("Potentially Bad Traffic".to_string(), 2))
        );
        assert_eq!(c.get("trojan-activity").map(|e| e.1), Some(1));
        c.extend_from("# x\nconfig classification: mine,My class, 4\n", "f.config")
            .expect("parse");
        assert_eq!(c.get("mine"), Some(&("My class".to_string(), 4)));
        let e = c
            .extend_from("config classification: x,y,z\n", "f.config")
            .expect_err("bad");
        assert!(e.to_string().starts_with("f.config:1:"), "{e}");
    }
}
