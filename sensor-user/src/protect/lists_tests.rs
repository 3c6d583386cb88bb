use super::*;

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn ps(list: &[&str]) -> Vec<Prefix> {
    list.iter().map(|s| p(s)).collect()
}

/// The line numbers of the bad lines.
fn bad_lines(l: &ParsedList) -> Vec<usize> {
    l.bad.iter().map(|b| b.line).collect()
}

#[test]
fn prefix_parse_and_display() {
    assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
    assert_eq!(p("2001:db8::1/32").to_string(), "2001:db8::/32");
    assert_eq!(p("192.0.2.1").len, 32);
    assert_eq!(p("2001:db8::1").len, 128);
    assert_eq!(p("0.0.0.0/0").addr, [0; 16]);
    assert_eq!(p("1.2.3.4/0").to_string(), "0.0.0.0/0");
    assert_eq!(p("::/0").to_string(), "::/0");
    assert_eq!(p("10.1.2.3/31").to_string(), "10.1.2.2/31");
    assert!("1.2.3.4/33".parse::<Prefix>().is_err());
    assert!("::/129".parse::<Prefix>().is_err());
}

#[test]
fn prefix_contains_and_covers() {
    let net = p("10.1.0.0/16");
    assert!(net.contains(4, &p("10.1.255.255").addr));
    assert!(!net.contains(4, &p("10.2.0.0").addr));
    assert!(!net.contains(6, &p("10.1.0.0").addr));
    assert!(net.covers(&p("10.1.2.0/24")));
    assert!(net.covers(&net));
    assert!(!p("10.1.2.0/24").covers(&net));
    assert!(p("::/0").contains(6, &p("ffff::1").addr));
    assert!(p("2001:db8::1/128").contains(6, &p("2001:db8::1").addr));
}

#[test]
fn plain_with_comments_blank_lines_and_bare_addresses() {
    let text = "# a list\n\n  192.0.2.0/24  \n198.51.100.7 # one host\n\t2001:db8::/32\n#\n::1\n";
    let l = parse_list(text, Format::Plain);
    assert_eq!(
        l.prefixes,
        ps(&[
            "192.0.2.0/24",
            "198.51.100.7/32",
            "2001:db8::/32",
            "::1/128"
        ])
    );
    assert!(l.bad.is_empty(), "{:?}", l.bad);
    assert_eq!(l.lines, 7);
}

#[test]
fn host_bits_are_cleared() {
    let l = parse_list("10.1.2.3/8\n2001:db8::ffff/32\n", Format::Plain);
    assert_eq!(l.prefixes, ps(&["10.0.0.0/8", "2001:db8::/32"]));
    assert_eq!(l.prefixes[0].addr[1..], [0; 15]);
}

#[test]
fn zero_length_prefixes() {
    let l = parse_list("0.0.0.0/0\n::/0\n", Format::Auto);
    assert_eq!(l.prefixes.len(), 2);
    assert!(l.prefixes.iter().all(|x| x.len == 0));
    assert_eq!(l.prefixes[0].family, 4);
    assert_eq!(l.prefixes[1].family, 6);
}

#[test]
fn plain_malformed_lines_are_reported_by_number() {
    let text = "192.0.2.0/24\n\
                999.1.1.1\n\
                10.0.0.0/33\n\
                192.0.2.1 extra\n\
                10.0.0.1-10.0.0.9\n\
                ::/129\n\
                10.0.0.0/255.255.255.0\n\
                203.0.113.0/24 ; SBL1\n\
                {\"cidr\":\"1.2.3.0/24\"}\n\
                10.0.0.5 - 10.0.0.7\n\
                198.51.100.0/24\n";
    let l = parse_list(text, Format::Plain);
    assert_eq!(l.prefixes, ps(&["192.0.2.0/24", "198.51.100.0/24"]));
    assert_eq!(bad_lines(&l), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let reason = |n: usize| &l.bad.iter().find(|b| b.line == n).unwrap().reason;
    assert!(
        reason(2).contains("not an IPv4 or IPv6 address"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("0 to 32"), "{}", reason(3));
    assert!(
        reason(4).contains("text after the address"),
        "{}",
        reason(4)
    );
    assert!(reason(5).contains("address range"), "{}", reason(5));
    assert!(reason(6).contains("0 to 128"), "{}", reason(6));
    assert!(reason(7).contains("netmask"), "{}", reason(7));
    assert!(reason(8).contains("spamhaus"), "{}", reason(8));
    assert!(reason(9).contains("JSON"), "{}", reason(9));
    assert!(reason(10).contains("address range"), "{}", reason(10));
    assert_eq!(l.bad[0].text, "999.1.1.1");
    assert_eq!(l.lines, 11);
    // A line of words is reported for its first word, not for the words after it.
    let l = parse_list("garbage here\n", Format::Plain);
    assert!(
        l.bad[0].reason.contains("not an IPv4"),
        "{}",
        l.bad[0].reason
    );
}

#[test]
fn crlf_and_lone_cr_line_endings() {
    let l = parse_list(
        "# x\r\n192.0.2.0/24\r\nbad\r\n2001:db8::/48\r\n",
        Format::Plain,
    );
    assert_eq!(l.prefixes, ps(&["192.0.2.0/24", "2001:db8::/48"]));
    assert_eq!(bad_lines(&l), [3]);
    assert_eq!(l.bad[0].text, "bad");
    assert_eq!(l.lines, 4);
    let l = parse_list("192.0.2.0/24\r198.51.100.0/24\rbad", Format::Plain);
    assert_eq!(l.prefixes.len(), 2);
    assert_eq!(bad_lines(&l), [3]);
}

#[test]
fn empty_input() {
    for text in ["", "\n", "# only a comment\n", "   \n\t\n"] {
        let l = parse_list(text, Format::Auto);
        assert!(l.prefixes.is_empty() && l.bad.is_empty(), "{text:?}");
    }
    assert_eq!(parse_list("", Format::Plain).lines, 0);
    assert_eq!(parse_list("\n\n", Format::Plain).lines, 2);
}

#[test]
fn spamhaus_drop() {
    let text = "; Spamhaus DROP List 2024/06/01 - (c) 2024 The Spamhaus Project SLU\n\
                ; https://www.spamhaus.org/drop/drop.txt\n\
                ; Last-Modified: Sat, 01 Jun 2024 12:00:00 GMT\n\
                ; Expires: Sat, 01 Jun 2024 13:00:00 GMT\n\
                1.10.16.0/20 ; SBL256894\n\
                1.19.0.0/16 ; SBL434604\n\
                2a06:e480::/29 ; SBL301771\n\
                5.134.128.0/33 ; SBL270738\n\
                # not spamhaus\n";
    let l = parse_list(text, Format::Spamhaus);
    assert_eq!(
        l.prefixes,
        ps(&["1.10.16.0/20", "1.19.0.0/16", "2a06:e480::/29"])
    );
    assert_eq!(bad_lines(&l), [8, 9]);
    assert!(l.bad[1].reason.contains("`#`"), "{}", l.bad[1].reason);
    // Auto reads the same file, taking `#` as a comment.
    let l = parse_list(text, Format::Auto);
    assert_eq!(l.prefixes.len(), 3);
    assert_eq!(bad_lines(&l), [8]);
}

#[test]
fn spamhaus_json_lines() {
    let text = "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\n\
                {\"cidr\":\"2001:db8::/32\",\"sblid\":\"SBL1\",\"rir\":\"ripencc\"}\n\
                {\"cidr\":\"1.2.3.0/99\",\"sblid\":\"SBL2\"}\n\
                {\"sblid\":\"SBL3\"}\n\
                {\"cidr\":17}\n\
                {\"cidr\":\"1.2.3.0/24\"\n\
                {\"type\":\"metadata\",\"timestamp\":1717243200,\"size\":123,\"records\":2,\
                 \"copyright\":\"(c) 2024 The Spamhaus Project SLU\",\"terms\":\"https://x\"}\n";
    for format in [Format::Spamhaus, Format::Auto] {
        let l = parse_list(text, format);
        assert_eq!(
            l.prefixes,
            ps(&["1.10.16.0/20", "2001:db8::/32"]),
            "{format}"
        );
        assert_eq!(bad_lines(&l), [3, 4, 5, 6], "{format}");
        assert!(l.bad[1].reason.contains("\"cidr\""), "{}", l.bad[1].reason);
        assert!(l.bad[3].reason.contains("JSON"), "{}", l.bad[3].reason);
        assert_eq!(l.lines, 7);
    }
}

#[test]
fn firehol_netset() {
    let text = "#\n\
                # firehol_level1\n\
                #\n\
                # ipv4 hash:net ipset\n\
                #\n\
                # Source: https://iplists.firehol.org/\n\
                # This File Date : Sat Jun  1 12:00:00 UTC 2024\n\
                #\n\
                0.0.0.0/8\n\
                1.10.16.0/20\n\
                223.254.0.0/16\n\
                1.2.3.4\n\
                1.2.3.0-1.2.3.255\n";
    let l = parse_list(text, Format::Firehol);
    assert_eq!(
        l.prefixes,
        ps(&["0.0.0.0/8", "1.10.16.0/20", "223.254.0.0/16", "1.2.3.4/32"])
    );
    assert_eq!(bad_lines(&l), [13]);
    assert!(l.bad[0].reason.contains("CIDR"), "{}", l.bad[0].reason);
}

#[test]
fn cymru_fullbogons() {
    let v4 = "# last updated 1717243201 (Sat Jun  1 12:00:01 2024 GMT)\n\
              0.0.0.0/8\n\
              10.0.0.0/8\n\
              100.64.0.0/10\n";
    let l = parse_list(v4, Format::Cymru);
    assert_eq!(
        l.prefixes,
        ps(&["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10"])
    );
    assert!(l.bad.is_empty());
    let v6 = "# last updated 1717243201 (Sat Jun  1 12:00:01 2024 GMT)\n\
              ::/8\n\
              100::/8\n\
              2001:2::/48\n\
              2001:db8::/32\n\
              fe80::/10\n\
              fec0::/10\n\
              ff00::/8\n\
              2001:zz::/32\n";
    let l = parse_list(v6, Format::Cymru);
    assert_eq!(l.prefixes.len(), 7);
    assert!(l.prefixes.iter().all(|x| x.family == 6));
    assert_eq!(bad_lines(&l), [9]);
}

#[test]
fn non_utf8_lines() {
    let bytes = b"# caf\xe9 header in Latin-1\n192.0.2.0/24\n10.0.\xff.0/24\n\x00\x01\x02\n";
    let l = parse_bytes(bytes, Format::Plain);
    assert_eq!(l.prefixes, ps(&["192.0.2.0/24"]));
    assert_eq!(bad_lines(&l), [3, 4]);
    assert!(l.bad[0].reason.contains("UTF-8"), "{}", l.bad[0].reason);
    assert!(
        l.bad[1].reason.contains("not an IPv4"),
        "{}",
        l.bad[1].reason
    );
    // A byte-order mark is not part of the first address.
    let l = parse_bytes(b"\xef\xbb\xbf192.0.2.0/24\n", Format::Plain);
    assert_eq!(l.prefixes, ps(&["192.0.2.0/24"]));
}

#[test]
fn never_panics_on_odd_input() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet = b"0123456789abcdef:./-#;{}\"\r\n \t\xff\x00cidr";
    for _ in 0..2000 {
        let mut bytes = Vec::new();
        for _ in 0..(seed % 64) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        for format in Format::ALL {
            let l = parse_bytes(&bytes, format);
            assert!(l.bad.iter().all(|b| b.line >= 1 && b.line <= l.lines));
        }
    }
    let long = "x".repeat(10_000);
    let l = parse_list(&long, Format::Plain);
    assert!(l.bad[0].text.chars().count() <= SHOWN_CHARS + 1);
}

#[test]
fn bad_line_display() {
    let l = parse_list("ok\n", Format::Plain);
    let b = &l.bad[0];
    assert_eq!(
        b.display(Path::new("/etc/precinct/drop.txt")),
        format!("/etc/precinct/drop.txt:1: {}: ok", b.reason)
    );
}

#[test]
fn format_names() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        let json = format!("\"{f}\"");
        assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), f);
    }
    assert_eq!("Spamhaus".parse::<Format>(), Ok(Format::Spamhaus));
    assert!("netset"
        .parse::<Format>()
        .unwrap_err()
        .to_string()
        .contains("firehol"));
    assert!(serde_json::from_str::<Format>("\"csv\"").is_err());
    assert_eq!(Format::default(), Format::Auto);
}

#[test]
fn load_list_reads_files_and_names_them_in_errors() {
    let dir = std::env::temp_dir().join(format!("precinct-lists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("drop.txt");
    std::fs::write(&path, b"; c\n1.10.16.0/20 ; SBL256894\nnope\n").unwrap();
    let l = load_list(&path, Format::Spamhaus).unwrap();
    assert_eq!(l.prefixes, ps(&["1.10.16.0/20"]));
    assert_eq!(bad_lines(&l), [3]);
    let missing = dir.join("missing.txt");
    let err = format!("{:#}", load_list(&missing, Format::Auto).unwrap_err());
    assert!(err.contains("missing.txt"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
