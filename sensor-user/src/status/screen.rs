//! The fixed-width screen of `precinct status`.

use std::fmt::Write as _;

use super::{Counted, Status};

/// A count, short: 1234, 12.3k, 4.56M.
fn num(x: f64) -> String {
    let a = x.abs();
    if a < 10_000.0 {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    } else if a < 1e6 {
        format!("{:.1}k", x / 1e3)
    } else if a < 1e9 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.2}G", x / 1e9)
    }
}

/// Bytes with SI units.
fn bytes(x: f64) -> String {
    match x.abs() {
        a if a < 1e3 => format!("{x:.0} B"),
        a if a < 1e6 => format!("{:.1} kB", x / 1e3),
        a if a < 1e9 => format!("{:.1} MB", x / 1e6),
        _ => format!("{:.2} GB", x / 1e9),
    }
}

fn rate(c: &Counted) -> String {
    format!("{}/s", num(c.per_second))
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `label` (padded to 13 columns) and `items` joined with " · ", wrapped at 100 columns.
fn list(w: &mut String, label: &str, items: &[String], empty: &str) -> std::fmt::Result {
    let mut line = format!("{label:<13}");
    if items.is_empty() {
        line.push_str(empty);
    }
    for (i, item) in items.iter().enumerate() {
        let sep = if i == 0 { "" } else { " · " };
        if i > 0 && line.chars().count() + sep.len() + item.chars().count() > 100 {
            writeln!(w, "{}", line.trim_end())?;
            line = format!("{:13}{item}", "");
        } else {
            line.push_str(sep);
            line.push_str(item);
        }
    }
    writeln!(w, "{}", line.trim_end())
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// Every part of `status` as text, 100 columns at most (beyond for long names only).
pub fn render(st: &Status) -> String {
    let mut o = String::new();
    let w = &mut o;
    let _ = header(w, st);
    let _ = traffic(w, st);
    let _ = protection(w, st);
    let _ = outputs(w, st);
    let _ = losses(w, st);
    o
}

fn header(w: &mut String, st: &Status) -> std::fmt::Result {
    let who: Vec<String> = [
        ("sensor_id", ""),
        ("organization", ""),
        ("asset_role", ""),
        ("tags", "tags "),
    ]
    .iter()
    .filter_map(|(k, prefix)| {
        st.sensor
            .get(*k)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{prefix}{v}"))
    })
    .collect();
    writeln!(
        w,
        "Precinct {} · sensor {}",
        st.version.as_deref().unwrap_or("(version unknown)"),
        if who.is_empty() {
            "(no identity)".to_string()
        } else {
            who.join(" · ")
        }
    )?;
    writeln!(
        w,
        "agent {} · up {} · programs pinned: {}",
        st.address,
        st.uptime_seconds.map_or("unknown".into(), duration),
        yes_no(st.programs_pinned)
    )?;
    if st.healthy {
        writeln!(w, "health       OK")?;
    } else {
        writeln!(w, "health       FAILING")?;
        for p in &st.problems {
            writeln!(w, "  {p}")?;
        }
    }
    writeln!(w)?;
    writeln!(w, "{:<16} {:<10} attached", "INTERFACE", "XDP mode")?;
    if st.interfaces.is_empty() {
        writeln!(w, "  (none reported)")?;
    }
    for i in &st.interfaces {
        writeln!(
            w,
            "  {:<14} {:<10} {}",
            i.name,
            i.xdp_mode,
            yes_no(i.attached)
        )?;
    }
    Ok(())
}

fn traffic(w: &mut String, st: &Status) -> std::fmt::Result {
    writeln!(w)?;
    writeln!(
        w,
        "{:<10} {:>12} {:>12} {:>12} {:>12}   {}",
        "TRAFFIC",
        "packets/s",
        "bytes/s",
        "packets",
        "bytes",
        if st.interval_seconds > 0.0 {
            format!("(rates over {:.1} s)", st.interval_seconds)
        } else {
            "(no rates: --interval 0)".to_string()
        }
    )?;
    for t in &st.traffic {
        writeln!(
            w,
            "  {:<8} {:>12} {:>12} {:>12} {:>12}",
            t.hook,
            num(t.packets.per_second),
            format!("{}/s", bytes(t.bytes.per_second)),
            num(t.packets.total),
            bytes(t.bytes.total)
        )?;
    }
    let protocols: Vec<String> = st
        .protocols
        .iter()
        .filter(|(_, c)| c.total > 0.0)
        .map(|(p, c)| format!("{p} {}", rate(c)))
        .collect();
    if !protocols.is_empty() {
        list(w, "  protocols", &protocols, "")?;
    }
    let of = if st.flows.capacity > 0.0 {
        format!(" of {}", num(st.flows.capacity))
    } else {
        String::new()
    };
    writeln!(
        w,
        "flows        {} active{of} · {} created · {} ended",
        num(st.flows.active),
        rate(&st.flows.created),
        rate(&st.flows.ended)
    )?;
    writeln!(
        w,
        "inspection   {} flow-head records ({} in all)",
        rate(&st.inspected_records),
        num(st.inspected_records.total)
    )?;
    let events: Vec<String> = st
        .events
        .iter()
        .filter(|(_, c)| c.total > 0.0)
        .map(|(k, c)| format!("{k} {} ({})", rate(c), num(c.total)))
        .collect();
    list(w, "events", &events, "none yet")?;
    let r = &st.rules;
    writeln!(
        w,
        "rules        {} loaded · {} skipped · reloads {} ok, {} failed · last load {}",
        num(r.loaded),
        num(r.skipped),
        num(r.reloads_ok),
        num(r.reloads_failed),
        match r.last_reload_successful {
            Some(true) => "ok",
            Some(false) => "FAILED (previous rules in use)",
            None => "unknown",
        }
    )
}

fn protection(w: &mut String, st: &Status) -> std::fmt::Result {
    let Some(p) = &st.protection else {
        return Ok(());
    };
    writeln!(w)?;
    let modes: Vec<String> = p.modes.iter().map(|(c, m)| format!("{c} {m}")).collect();
    list(w, "PROTECTION", &modes, "")?;
    writeln!(
        w,
        "  {:<16} {:>9} {:>10} {:>11} {:>13} {:>10} {:>11}",
        "list", "entries", "bad lines", "dropped/s", "would drop/s", "dropped", "would drop"
    )?;
    for l in &p.lists {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), num);
        writeln!(
            w,
            "  {:<16} {:>9} {:>10} {:>11} {:>13} {:>10} {:>11}",
            l.name,
            opt(l.entries),
            opt(l.bad_lines),
            num(l.dropped.per_second),
            num(l.would_drop.per_second),
            num(l.dropped.total),
            num(l.would_drop.total)
        )?;
    }
    let tables: Vec<String> = p
        .table_prefixes
        .iter()
        .map(|(f, n)| format!("{f} {}", num(*n)))
        .collect();
    writeln!(
        w,
        "  tables     {} prefixes · {} manual entries · {} failed updates",
        if tables.is_empty() {
            "no".to_string()
        } else {
            tables.join(", ")
        },
        num(p.manual_entries),
        num(p.table_updates_failed)
    )?;
    let drops: Vec<String> = p
        .drops
        .iter()
        .map(|d| {
            format!(
                "{} {} {} ({})",
                d.reason,
                d.action,
                rate(&d.packets),
                num(d.packets.total)
            )
        })
        .collect();
    list(w, "  drops", &drops, "none")
}

fn outputs(w: &mut String, st: &Status) -> std::fmt::Result {
    if st.outputs.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(
        w,
        "{:<16} {:>12} {:>9} {:>9} {:>7} {:>8} {:>10} {:>8}  last sent",
        "OUTPUT", "delivered/s", "dropped", "failed", "queue", "spooled", "spool", "lost"
    )?;
    for o in &st.outputs {
        writeln!(
            w,
            "  {:<14} {:>12} {:>9} {:>9} {:>7} {:>8} {:>10} {:>8}  {}",
            o.name,
            num(o.delivered.per_second),
            num(o.dropped.total),
            num(o.failed.total),
            num(o.queue_depth),
            num(o.spool_events),
            bytes(o.spool_bytes),
            num(o.spool_lost.total),
            o.seconds_since_delivery
                .map_or("never".to_string(), |s| format!("{} ago", duration(s)))
        )?;
    }
    Ok(())
}

fn losses(w: &mut String, st: &Status) -> std::fmt::Result {
    writeln!(w)?;
    let lossy: Vec<_> = st.losses.iter().filter(|l| l.count.total > 0.0).collect();
    if lossy.is_empty() {
        return writeln!(w, "LOSSES       none");
    }
    writeln!(w, "{:<44} {:>12} {:>12}", "LOSSES", "in all", "per second")?;
    for l in lossy {
        writeln!(
            w,
            "  {:<42} {:>12} {:>12}",
            l.what,
            num(l.count.total),
            num(l.count.per_second)
        )?;
    }
    Ok(())
}
