//! The `precinct` command line.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use precinct::{
    agent,
    config::Config,
    datapath::XdpModeChoice,
    doctor,
    protect::control::{self, Request},
    replay,
    rules::{self, RuleSources},
    rules_check, status,
};

/// The pinning flags of `precinct run`.
#[derive(Clone, Debug, Default, Args)]
struct PinArgs {
    /// Keep the programs, maps and attachments pinned in bpffs, so that a restart or upgrade
    /// carries on with the same flows, counters and blocks and traffic is never unfiltered
    /// [default: off, or `pin` in the config; the systemd unit turns it on].
    #[arg(long, overrides_with = "no_pin")]
    pin: bool,
    /// Do not pin: stopping the agent detaches the programs and reports every flow.
    #[arg(long)]
    no_pin: bool,
    /// The pin directory, on a BPF filesystem [default: /sys/fs/bpf/precinct].
    #[arg(long, value_name = "DIR")]
    pin_path: Option<PathBuf>,
    /// Discard the pinned maps first (after a refused layout change): flow counters and rate
    /// state start over, manual blocks are kept; with --pin the programs are still replaced in
    /// place, with --no-pin the pinned attachments are removed.
    #[arg(long)]
    unpin: bool,
}

impl PinArgs {
    /// Puts the flags into the configuration.
    fn apply(&self, config: &mut Config) {
        if self.pin {
            config.pin = true;
        }
        if self.no_pin {
            config.pin = false;
        }
        if let Some(p) = &self.pin_path {
            config.pin_path = p.clone();
        }
    }
}

/// Precinct: a host network security sensor (XDP/TC flow accounting, EVE JSON, Prometheus).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach to interfaces and report flows as EVE records and metrics until stopped.
    Run {
        /// Interface to attach to (repeat for several).
        #[arg(long = "iface", value_name = "IFACE")]
        ifaces: Vec<String>,
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// EVE output: a file, or - for standard output [default: /var/log/precinct/eve.json].
        #[arg(long, value_name = "FILE|-")]
        eve: Option<String>,
        /// XDP attach mode [default: auto].
        #[arg(long, value_enum)]
        xdp_mode: Option<XdpModeChoice>,
        /// Metrics listen address [default: 127.0.0.1:9727].
        #[arg(long, value_name = "ADDR:PORT")]
        metrics_listen: Option<String>,
        /// Rule file, loaded after those of [rules] in the config (repeat for several).
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Protection mode of every check without its own: monitor (count and report only)
        /// or prevent (drop) [default: monitor, or `[protect] mode`].
        #[arg(long, value_enum)]
        mode: Option<precinct::protect::settings::Mode>,
        /// Control socket for `precinct block` and `precinct lists reload`
        /// [default: /run/precinct/control.sock].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        #[command(flatten)]
        pin: PinArgs,
    },
    /// Check whether this host can run the sensor, and say how to fix what is missing.
    Doctor {
        /// Interface to check (repeat for several).
        #[arg(long = "iface", value_name = "IFACE")]
        ifaces: Vec<String>,
    },
    /// Run a capture file through the inspection pipeline and write its EVE records.
    Replay {
        /// The capture (pcap or pcapng).
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// Rule file, loaded after those of [rules] in --config (repeat for several).
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Pick up TCP sessions whose handshake is not in the capture.
        #[arg(long)]
        midstream: bool,
        /// Configuration file (TOML): its [flows.timeouts] and [rules] apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// EVE output: a file, or - for standard output.
        #[arg(long, value_name = "FILE|-")]
        eve: String,
    },
    /// Rule file tools.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Configuration file tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Block addresses in the kernel of the running agent now, by hand (needs root).
    Block {
        #[command(subcommand)]
        command: BlockCommand,
    },
    /// Address-list tools for the running agent (needs root).
    Lists {
        #[command(subcommand)]
        command: ListsCommand,
    },
    /// One screen on the running agent: interfaces, health, traffic and event rates, rules,
    /// protection, outputs, losses (read from its metrics endpoint; exits 1 when unhealthy).
    Status {
        /// The agent's metrics address [default: metrics.listen of --config, else
        /// 127.0.0.1:9727].
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<String>,
        /// The agent's configuration file, for its metrics address.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seconds between the two scrapes the rates come from (0: totals only).
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
        interval: f64,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BlockCommand {
    /// Drop traffic from an address or CIDR, for a while or until removed.
    Add {
        /// IPv4 or IPv6 address or CIDR, such as 203.0.113.0/24.
        cidr: String,
        /// Lift the block after this long: 90s, 15m, 1h, 2d, 1h30m or seconds [default: never].
        #[arg(long, value_name = "DURATION", value_parser = control::parse_ttl)]
        ttl: Option<Duration>,
        /// Why, for `precinct block list`.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Remove a block added with `precinct block add`.
    Del {
        /// The address or CIDR as added.
        cidr: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show the blocks added by hand, with their reasons and time left.
    List {
        /// Print the entries as a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Subcommand)]
enum ListsCommand {
    /// Read the list files again and swap the new tables into the kernel.
    Reload {
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Args)]
struct SocketArg {
    /// The agent's control socket, as `[protect] control_socket` in its config.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rule files and report what loaded, what did not and why.
    Check {
        /// Rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A classification.config to use instead of the built-in one.
        #[arg(long, value_name = "FILE")]
        classification: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse and validate a configuration file, and load the rules it names.
    Check {
        /// The file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("precinct: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Run {
            ifaces,
            config,
            eve,
            xdp_mode,
            metrics_listen,
            rules,
            mode,
            socket,
            pin,
        } => {
            let file = match config {
                Some(path) => {
                    let cfg = Config::load(&path)?;
                    Some((path, cfg))
                }
                None => None,
            };
            let mut cfg = file.as_ref().map(|f| f.1.clone()).unwrap_or_default();
            cfg.interfaces.extend(ifaces);
            cfg.interfaces.dedup();
            if let Some(eve) = eve {
                cfg.eve = eve;
            }
            if let Some(mode) = xdp_mode {
                cfg.xdp_mode = mode;
            }
            if let Some(listen) = metrics_listen {
                cfg.metrics.listen = listen;
            }
            if let Some(mode) = mode {
                anyhow::ensure!(
                    mode != precinct::protect::settings::Mode::Off,
                    "--mode takes monitor or prevent; turn single checks off in [protect]"
                );
                cfg.protect.mode = mode;
            }
            if let Some(socket) = socket {
                cfg.protect.control_socket = socket;
            }
            pin.apply(&mut cfg);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let result = runtime.block_on(agent::run(agent::RunOptions {
                config: cfg,
                config_file: file,
                rule_files: rules,
                unpin: pin.unpin,
            }));
            // Do not wait for a rule reload still compiling: its result has nowhere to go.
            runtime.shutdown_background();
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            pcap,
            rules,
            midstream,
            config,
            eve,
        } => {
            replay::run(&replay::ReplayOptions {
                pcap,
                rules,
                midstream,
                config,
                eve,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { ifaces } => {
            let checks = doctor::checks(&ifaces);
            let ok = doctor::report(&checks, &mut std::io::stdout().lock())
                .context("writing the report")?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Rules {
            command:
                RulesCommand::Check {
                    files,
                    classification,
                    json,
                },
        } => {
            rules_check::run(&files, classification.as_deref(), json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let cfg = Config::load(&file)?;
            let sources = RuleSources::new(&cfg.rules, &[]);
            let rules = if sources.is_empty() {
                "no rule files".to_string()
            } else {
                let set = sources.load()?;
                format!(
                    "{} rule file(s): {}",
                    sources.files.len(),
                    rules::summary(&set.report)
                )
            };
            let mut lists = Vec::new();
            for spec in &cfg.protect.lists {
                let parsed = precinct::protect::lists::load_list(&spec.file, spec.format)
                    .with_context(|| format!("[[protect.lists]] {}", spec.name))?;
                for bad in &parsed.bad {
                    eprintln!("warning: {}", bad.display(&spec.file));
                }
                lists.push(format!(
                    "{} {} entries{}",
                    spec.name,
                    parsed.prefixes.len(),
                    if parsed.bad.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} bad lines skipped)", parsed.bad.len())
                    }
                ));
            }
            let protect = format!(
                "protection {} mode{}",
                cfg.protect.mode.as_str(),
                if lists.is_empty() {
                    String::new()
                } else {
                    format!(", lists: {}", lists.join(", "))
                }
            );
            println!(
                "{}: ok ({} interface(s), EVE to {}, metrics {}, {rules}, {protect})",
                file.display(),
                cfg.interfaces.len(),
                cfg.eve,
                if cfg.metrics.enabled {
                    cfg.metrics.listen.as_str()
                } else {
                    "off"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Block { command } => block(command),
        Command::Lists {
            command: ListsCommand::Reload { socket },
        } => control_call(&socket.socket, &Request::ListsReload),
        Command::Status {
            metrics,
            config,
            interval,
            json,
        } => {
            let cfg = config.as_deref().map(Config::load).transpose()?;
            let address = status::address(metrics.as_deref(), cfg.as_ref())?;
            let interval = Duration::try_from_secs_f64(interval)
                .context("--interval takes a number of seconds, 0 or more")?;
            let st = status::collect(&address, interval)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&st).context("encoding the status")?
                );
            } else {
                print!("{}", status::render(&st));
            }
            Ok(if st.healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn block(command: BlockCommand) -> anyhow::Result<ExitCode> {
    let cidr = |s: &str| {
        control::parse_cidr(s)
            .map(|p| p.to_string())
            .map_err(anyhow::Error::from)
    };
    match command {
        BlockCommand::Add {
            cidr: c,
            ttl,
            reason,
            socket,
        } => {
            let req = Request::BlockAdd {
                cidr: cidr(&c)?,
                ttl_secs: ttl.map(|t| t.as_secs()),
                reason,
            };
            control_call(&socket.socket, &req)
        }
        BlockCommand::Del { cidr: c, socket } => {
            control_call(&socket.socket, &Request::BlockDel { cidr: cidr(&c)? })
        }
        BlockCommand::List { json, socket } => {
            let r = control::call(&socket.socket, &Request::BlockList)?;
            if !r.ok {
                eprintln!("precinct: error: {}", r.message);
                return Ok(ExitCode::FAILURE);
            }
            if json {
                let text =
                    serde_json::to_string_pretty(&r.entries).context("encoding the entries")?;
                println!("{text}");
            } else if r.entries.is_empty() {
                println!("no manual blocks");
            } else {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                print!("{}", control::format_entries(&r.entries, now));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Sends `req` to the agent and prints its answer: to stdout on success, else to stderr with
/// a failing exit code.
fn control_call(socket: &Path, req: &Request) -> anyhow::Result<ExitCode> {
    let r = control::call(socket, req)?;
    if r.ok {
        println!("{}", r.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("precinct: error: {}", r.message);
        Ok(ExitCode::FAILURE)
    }
}
