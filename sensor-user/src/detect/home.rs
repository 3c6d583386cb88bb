//! Which side of `$HOME_NET` each end of a packet is on, and which of those a rule's
//! addresses allow: the packet prefilters are split by it, as Suricata's signature groups are
//! split by address.
//!
//! Most packet rules are written from the home network's point of view (`$EXTERNAL_NET any ->
//! $HOME_NET any`, or the reverse). Traffic between two home hosts, or between two outside
//! hosts, can match none of them, yet one prefilter per transport and direction searched it
//! for all of their patterns. On the merged real-traffic corpus more than half of the TCP
//! payload bytes are such traffic, and a database of a few dozen patterns is searched several
//! times faster than one of two thousand. A rule goes into the prefilter of every class its
//! addresses may match in, so the split hides no rule from a packet it could match; the full
//! address check still runs on every candidate.

use std::{collections::HashMap, net::IpAddr};

use super::{
    addr::{parse_addr, AddrExpr},
    sig::Signature,
};

/// Address classes: (source in `$HOME_NET`, destination in `$HOME_NET`).
pub(super) const CLASSES: usize = 4;

/// `$HOME_NET`, as the rules were compiled with it.
#[derive(Debug)]
pub(super) struct HomeNet(AddrExpr);

impl HomeNet {
    /// `$HOME_NET` of `vars`; `None` when it is not defined (every packet is then of one
    /// class).
    pub(super) fn from_vars(vars: &HashMap<String, String>) -> Option<HomeNet> {
        vars.contains_key("HOME_NET")
            .then(|| parse_addr("$HOME_NET", vars).ok())
            .flatten()
            .map(HomeNet)
    }

    /// Whether `ip` is in the home network.
    pub(super) fn holds(&self, ip: IpAddr) -> bool {
        self.0.matches(ip)
    }

    /// The class of a packet whose source is (`src_home`) and destination is (`dst_home`)
    /// in the home network.
    pub(super) fn class(src_home: bool, dst_home: bool) -> usize {
        usize::from(src_home) * 2 + usize::from(dst_home)
    }

    /// Which home-network sides (index 0: outside, 1: inside) an address expression allows:
    /// only inside for `$HOME_NET` itself, only outside for its negation (`!$HOME_NET`, the
    /// default `$EXTERNAL_NET`), both for anything else.
    fn sides(&self, e: &AddrExpr) -> [bool; 2] {
        match e {
            e if *e == self.0 => [false, true],
            AddrExpr::Not(inner) if **inner == self.0 => [true, false],
            _ => [true, true],
        }
    }

    /// The classes of packets `s`'s addresses may match (either way round when the rule is
    /// bidirectional).
    pub(super) fn classes(&self, s: &Signature) -> impl Iterator<Item = usize> {
        let (src, dst) = (self.sides(&s.src), self.sides(&s.dst));
        let bidirectional = s.bidirectional;
        (0..CLASSES).filter(move |&c| {
            let (sh, dh) = (c / 2, c % 2);
            (src[sh] && dst[dh]) || (bidirectional && src[dh] && dst[sh])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{addr::default_vars, classification::Classifications, RuleSet};
    use std::net::IpAddr;

    fn classes_of(rule: &str) -> Vec<usize> {
        let vars = default_vars();
        let set = RuleSet::from_texts(
            &[("t.rules".into(), rule.into())],
            &vars,
            &Classifications::builtin(),
        );
        let home = HomeNet::from_vars(&vars).expect("HOME_NET");
        home.classes(&set.signatures()[0]).collect()
    }

    #[test]
    fn a_rule_is_in_the_classes_its_addresses_allow() {
        let (ee, eh, he, hh) = (0, 1, 2, 3);
        let r = |h: &str| format!("alert tcp {h} (msg:\"x\"; content:\"abcd\"; sid:1;)");
        assert_eq!(classes_of(&r("$EXTERNAL_NET any -> $HOME_NET any")), [eh]);
        assert_eq!(classes_of(&r("$HOME_NET any -> $EXTERNAL_NET any")), [he]);
        assert_eq!(classes_of(&r("$HOME_NET any -> any any")), [he, hh]);
        // Server variables are the home network by default.
        assert_eq!(classes_of(&r("any any -> $HTTP_SERVERS 80")), [eh, hh]);
        assert_eq!(classes_of(&r("any any -> any any")), [ee, eh, he, hh]);
        assert_eq!(
            classes_of(&r("$EXTERNAL_NET any <> $HOME_NET any")),
            [eh, he]
        );
        // Anything else may match on either side.
        assert_eq!(
            classes_of(&r("[10.0.0.0/8,!10.1.0.0/16] any -> !$HTTP_SERVERS any")),
            [ee, he]
        );
        assert_eq!(
            classes_of(&r("192.0.2.1 any -> [$HOME_NET,192.0.2.9] any")),
            [ee, eh, he, hh]
        );
    }

    #[test]
    fn traffic_inside_or_outside_the_home_network_is_not_searched_for_rules_across_it() {
        use crate::detect::prefilter::Seen;
        // Inbound rules, outbound rules, and one rule on any traffic: a class of far fewer
        // rules than the slot gets its own prefilter.
        let mut text: String = (0..8)
            .map(|i| {
                format!(
                    "alert tcp $EXTERNAL_NET any -> $HOME_NET any (msg:\"in\"; content:\"inbound{i}\"; sid:{};)\n",
                    100 + i
                )
            })
            .collect();
        text.push_str("alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:\"out\"; content:\"outbound\"; sid:200;)\n");
        text.push_str(
            "alert tcp any any -> any any (msg:\"any\"; content:\"anywhere\"; sid:300;)\n",
        );
        let set = RuleSet::from_texts(
            &[("t.rules".into(), text)],
            &default_vars(),
            &Classifications::builtin(),
        );
        assert!(set.report.skipped.is_empty(), "{:?}", set.report.skipped);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let (home, home2, out, out2) = (
            ip("10.0.0.1"),
            ip("192.168.0.9"),
            ip("8.8.8.8"),
            ip("1.1.1.1"),
        );
        let payload: &[u8] = b"inbound0 outbound anywhere";
        let cands = |src: IpAddr, dst: IpAddr| {
            let mut v = Vec::new();
            let seen = &mut Seen::default();
            set.candidates(Some(payload), (src, 40000, dst, 80, 6, true), seen, &mut v);
            let mut sids: Vec<u32> = v
                .iter()
                .map(|&i| set.signatures()[i as usize].sid)
                .collect();
            sids.sort_unstable();
            sids
        };
        // Within the home network and outside it: only the rule on any traffic.
        assert_eq!(cands(home, home2), [300]);
        assert_eq!(cands(out, out2), [300]);
        // Across it: every rule whose pattern is there and whose addresses may match is a
        // candidate (the slot's whole prefilter may offer more; the header check decides).
        for (src, dst, must) in [(out, home, [100, 300]), (home, out, [200, 300])] {
            let got = cands(src, dst);
            assert!(
                must.iter().all(|m| got.contains(m)),
                "{src} -> {dst}: {got:?}"
            );
        }
    }

    #[test]
    fn the_class_is_each_ends_side_and_no_home_network_is_one_class() {
        let home = HomeNet::from_vars(&default_vars()).expect("HOME_NET");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(home.holds(ip("10.1.2.3")));
        assert!(!home.holds(ip("8.8.8.8")));
        assert!(!home.holds(ip("2001:db8::1")));
        assert_eq!(HomeNet::class(false, true), 1);
        assert_eq!(HomeNet::class(true, false), 2);
        let mut vars = default_vars();
        vars.remove("HOME_NET");
        assert!(HomeNet::from_vars(&vars).is_none());
        // Without it, every packet is searched with its slot's prefilter.
        let set = RuleSet::from_texts(
            &[(
                "t.rules".into(),
                "alert tcp any any -> 10.0.0.0/8 any (msg:\"x\"; content:\"anywhere\"; sid:300;)\n"
                    .into(),
            )],
            &vars,
            &Classifications::builtin(),
        );
        assert!(set.report.skipped.is_empty(), "{:?}", set.report.skipped);
        let mut v = Vec::new();
        let seen = &mut crate::detect::prefilter::Seen::default();
        let ends = (ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80, 6, true);
        set.candidates(Some(&b"xx anywhere"[..]), ends, seen, &mut v);
        assert_eq!(v.len(), 1, "the rule is a candidate");
    }
}
