//! What detection remembers of one flow: its flowbits, the buffers of the transaction in
//! progress on each side, and which rules already alerted on which transaction.

use std::collections::HashSet;

use crate::applayer::{Buffer, Dir};

/// A signature's identity across rule sets: (gid, sid).
pub(super) type RuleId = (u32, u32);

/// Detection state of one flow.
#[derive(Debug, Default)]
pub struct FlowState {
    pub(super) bits: HashSet<String>,
    /// Buffers of the current request (to server) and response (to client). A transaction
    /// holds a few dozen at most, so a list searched in place costs less than a map per flow.
    pub(super) bufs: Vec<(bool, Buffer, Vec<u8>)>,
    /// The prefilter's candidates of each held buffer's current value: (to server, buffer,
    /// the rule set's [`super::RuleSet::id`], signature indexes). Forgotten when the value
    /// changes.
    pub(super) scanned: Vec<(bool, Buffer, u64, Vec<u32>)>,
    /// The rule set's pattern-less packet rules indexed by the flow's ends and its ends'
    /// address classes ([`super::RuleSet::indexed_for`]): the same for every packet of the
    /// flow, so looked up once.
    pub(super) indexed: Option<super::ruleset::IndexedEnds>,
    pub(super) tx_req: u64,
    pub(super) tx_resp: u64,
    /// App-layer signatures that already matched a transaction: (gid, sid), request and
    /// response transaction numbers. Keyed by the rule's identity rather than its index in the
    /// rule set because the live agent swaps rule sets under running flows (SIGHUP), and
    /// indexes are not stable across sets. Clearing the set at a swap instead would alert a
    /// second time for a rule that is in both sets and already alerted on the transaction in
    /// progress, and keeping indexes would silence whichever new rule took an old one's index;
    /// (gid, sid) is the identity Suricata and SOC tooling use, and also what the loader
    /// refuses to see twice.
    pub(super) alerted: HashSet<(RuleId, u64, u64)>,
}

/// Whether buffer `b` of `app` starts a new transaction: `Some(true)` for a request or query
/// (to server), `Some(false)` for a response; `None` when it belongs to the one in progress.
pub(super) fn starts_tx(app: &str, b: Buffer, to_server: bool) -> Option<bool> {
    match (app, b) {
        ("http", Buffer::HttpMethod) | ("dns", Buffer::DnsQuery) => Some(true),
        ("http", Buffer::HttpStatCode) => Some(false),
        ("dns", Buffer::DnsQueriesRrname) if !to_server => Some(false),
        _ => None,
    }
}

impl FlowState {
    /// A buffer of the current transaction, for alert records.
    pub fn buffer(&self, to_server: bool, b: Buffer) -> Option<&[u8]> {
        self.bufs
            .iter()
            .find(|(ts, name, _)| *ts == to_server && *name == b)
            .map(|(_, _, v)| v.as_slice())
    }

    /// The flowbits that are set.
    pub fn flowbits(&self) -> impl Iterator<Item = &str> {
        self.bits.iter().map(String::as_str)
    }

    /// 0-based id of the current request transaction.
    pub fn tx_id(&self) -> u64 {
        self.tx_req.saturating_sub(1)
    }

    /// Adds buffers a parser produced to the current transactions: a new request or query
    /// starts a new one for its side (and forgets that side's buffers), a buffer seen again
    /// replaces the one before.
    pub(super) fn absorb(&mut self, app: &str, buffers: &[(Dir, Buffer, Vec<u8>)]) {
        for (dir, b, data) in buffers {
            let to_server = *dir == Dir::ToServer;
            if let Some(side) = starts_tx(app, *b, to_server) {
                self.bufs.retain(|(ts, _, _)| *ts != side);
                self.scanned.retain(|s| s.0 != side);
                if side {
                    self.tx_req += 1;
                } else {
                    self.tx_resp += 1;
                }
            }
            self.scanned.retain(|s| !(s.0 == to_server && s.1 == *b));
            match self
                .bufs
                .iter_mut()
                .find(|(ts, name, _)| *ts == to_server && name == b)
            {
                Some(slot) => slot.2.clone_from(data),
                None => self.bufs.push((to_server, *b, data.clone())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_request_starts_a_transaction_and_forgets_the_old_one() {
        let mut st = FlowState::default();
        st.absorb(
            "http",
            &[
                (Dir::ToServer, Buffer::HttpMethod, b"GET".to_vec()),
                (Dir::ToServer, Buffer::HttpUri, b"/a".to_vec()),
                (Dir::ToClient, Buffer::HttpStatCode, b"200".to_vec()),
            ],
        );
        assert_eq!(st.tx_id(), 0);
        assert_eq!(st.buffer(true, Buffer::HttpUri), Some(&b"/a"[..]));
        assert_eq!(st.buffer(false, Buffer::HttpStatCode), Some(&b"200"[..]));
        st.absorb(
            "http",
            &[(Dir::ToServer, Buffer::HttpMethod, b"POST".to_vec())],
        );
        assert_eq!(st.tx_id(), 1);
        assert_eq!(
            st.buffer(true, Buffer::HttpUri),
            None,
            "the old request's URI"
        );
        assert_eq!(st.buffer(true, Buffer::HttpMethod), Some(&b"POST"[..]));
        assert_eq!(
            st.buffer(false, Buffer::HttpStatCode),
            Some(&b"200"[..]),
            "the response side is the response's to forget"
        );
        // The same buffer again replaces its value.
        st.absorb("http", &[(Dir::ToServer, Buffer::HttpUri, b"/b".to_vec())]);
        st.absorb("http", &[(Dir::ToServer, Buffer::HttpUri, b"/c".to_vec())]);
        assert_eq!(
            st.bufs
                .iter()
                .filter(|(_, b, _)| *b == Buffer::HttpUri)
                .count(),
            1
        );
        assert_eq!(st.buffer(true, Buffer::HttpUri), Some(&b"/c"[..]));
    }

    #[test]
    fn dns_responses_start_response_transactions() {
        let mut st = FlowState::default();
        st.absorb(
            "dns",
            &[(Dir::ToServer, Buffer::DnsQuery, b"a.example".to_vec())],
        );
        st.absorb(
            "dns",
            &[(
                Dir::ToClient,
                Buffer::DnsQueriesRrname,
                b"a.example".to_vec(),
            )],
        );
        assert_eq!(st.tx_req, 1);
        assert_eq!(st.tx_resp, 1);
        // A query name sent to the server does not start a response.
        st.absorb(
            "dns",
            &[(
                Dir::ToServer,
                Buffer::DnsQueriesRrname,
                b"b.example".to_vec(),
            )],
        );
        assert_eq!(st.tx_resp, 1);
    }
}
