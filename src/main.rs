//! The `evsite` command line: thin — parse arguments, set up logging, hand over to the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Default config location on a device (a dpkg conffile).
const DEFAULT_CONFIG: &str = "/etc/evsite/evsite.toml";
/// sysexits.h EX_CONFIG: the configuration is wrong.
const EX_CONFIG: u8 = 78;
/// sysexits.h EX_UNAVAILABLE: a part of the site did not answer as it must.
const EX_UNAVAILABLE: u8 = 69;

#[derive(Parser)]
#[command(
    name = "evsite",
    version,
    about = "Edge site controller for EV charging"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Config file (TOML).
    #[arg(long, short, env = "EVSITE_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the site controller (the daemon).
    Run(ConfigArg),
    /// Validate the config and the files it names; print every error as file:line:col: key:
    /// reason (exit 78). With --live, then try the site once (exit 69 if a part fails).
    CheckConfig(CheckConfigArgs),
    /// Read every configured device once and print what it reports; or, with --read, --scan
    /// or --model, read a device named on the command line (see docs/devices.md).
    Probe(ProbeArgs),
    /// List the supported meter and charger models with their link and defaults.
    Models(ModelsArgs),
    /// Watch the controller manage a simulated site (no config, no hardware needed).
    Demo(DemoArgs),
    /// List recorded charging sessions (read from the store; filters by charger and time).
    Sessions(evsite::app::history::HistoryArgs),
    /// Usage report: energy, cost and sessions per charger and day, peak hours, utilisation;
    /// or per user, group or charger (--by); or a user's monthly statement (--statement).
    Report(evsite::app::history::ReportArgs),
    /// The live state from the running daemon (its local API on `[api] listen`).
    Status(StatusArgs),
    /// Remove a person's identity (token, user, vehicle) from every stored session, keeping
    /// energy and cost for the accounts. The daemon must be stopped (it holds the database).
    Forget(evsite::app::forget::ForgetArgs),
    /// The daemon's trial open of its database, in a child process (exit 0, or 65 when sled
    /// refuses it; a crash means sled cannot read the files).
    #[command(hide = true)]
    StoreTrial { path: PathBuf },
    /// Writes the manual pages (evsite.1 and one per subcommand, gzipped) into DIR, from
    /// these very definitions, so the pages cannot drift from the program. Run when the
    /// package is built.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(clap::Args)]
struct CheckConfigArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Also try the site once: read every device (a wrong model or unit is named), connect to
    /// the MQTT broker with the configured TLS and credentials and publish to P/status and
    /// read it back, bind the API address. Prints one table; exit 0, or 69 when a part fails.
    #[arg(long)]
    live: bool,
}

#[derive(clap::Args)]
struct ProbeArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    tools: evsite::app::probe::tools::ToolArgs,
}

#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long, value_enum, default_value_t = evsite::app::status::StatusFormat::Table)]
    format: evsite::app::status::StatusFormat,
}

#[derive(clap::Args)]
struct ModelsArgs {
    /// `text`: one line per model; `markdown`: the device tables of docs/devices.md.
    #[arg(long, value_enum, default_value_t = ModelsFormat::Text)]
    format: ModelsFormat,
    /// Print the model file of this built-in model, ready to copy into a models directory and
    /// change (see docs/devices.md).
    #[arg(long, value_name = "ID")]
    show: Option<String>,
    /// The installer's own models to list too (default: /etc/evsite/models.d, if it exists).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelsFormat {
    Text,
    Markdown,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Stop after this many seconds and print a summary (default: run until Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS", value_parser = evsite::app::demo::parse_seconds)]
    run_for: Option<std::time::Duration>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = evsite::app::demo::DEFAULT_SPEED)]
    speed: f64,
    /// Also publish sessions, alerts, status and telemetry to this MQTT broker
    /// (mqtt://host:port or mqtts://host:port), and take commands from it.
    #[arg(long, value_name = "URL")]
    mqtt: Option<String>,
    /// Where the live page and the local API listen (a taken port falls back to a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    api: std::net::SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's live view must not be garbled by routine log lines.
    let level = match &cli.command {
        Command::Demo(_) => "warn",
        // A scan's silent ids are its normal case, not news: the tools report failures.
        Command::Probe(a) if a.tools.any() => "error",
        _ => "info",
    };
    // The daemon sets up its own logging (journal or stdout, level from its config).
    if !matches!(cli.command, Command::Run(_) | Command::StoreTrial { .. }) {
        evsite::app::logging::init_stderr(level);
    }
    let result = match cli.command {
        Command::Models(ModelsArgs { show: Some(id), .. }) => {
            match evsite::app::models::show(&id) {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("evsite: {e}");
                    // EX_USAGE: the id given is not a model.
                    Ok(ExitCode::from(64))
                }
            }
        }
        Command::Models(a) => {
            match a.format {
                ModelsFormat::Text => {
                    let (table, notes, ok) = evsite::app::models::listing(a.models_dir.as_deref());
                    print!("{table}");
                    notes.iter().for_each(|n| eprintln!("{n}"));
                    if !ok {
                        return ExitCode::from(EX_CONFIG);
                    }
                }
                ModelsFormat::Markdown => print!("{}", evsite::devices::docs::markdown()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig(a) => check_config(&a.config.config, a.live),
        Command::Probe(a) if a.tools.any() => {
            runtime().map(
                |rt| match rt.block_on(evsite::app::probe::tools::run(&a.tools)) {
                    Ok((text, code)) => {
                        print!("{text}");
                        ExitCode::from(code)
                    }
                    Err(e) => {
                        eprintln!("evsite: {}", e.message);
                        ExitCode::from(e.code)
                    }
                },
            )
        }
        Command::Probe(a) => {
            // A model's warnings (a charger with no fallback of its own) belong beside what
            // the probe reads from it.
            let checked = evsite::config::check(&a.config.config, evsite::config::FileScope::None);
            warn(&checked.warnings);
            match checked.result {
                Ok(cfg) => runtime().map(|rt| {
                    print!("{}", rt.block_on(evsite::app::probe::probe(&cfg)));
                    ExitCode::SUCCESS
                }),
                Err(errors) => {
                    eprint!("{errors}");
                    Ok(ExitCode::from(EX_CONFIG))
                }
            }
        }
        Command::Demo(a) => runtime().and_then(|rt| {
            let mut opts = evsite::app::demo::Options::new(a.run_for, a.speed);
            opts.mqtt = a.mqtt;
            opts.api = a.api;
            let summary = rt.block_on(evsite::app::demo::run(opts))?;
            print!("{summary}");
            Ok(ExitCode::SUCCESS)
        }),
        Command::Sessions(a) => Ok(history(evsite::app::history::sessions(&a))),
        Command::Report(a) => Ok(history(evsite::app::history::report(
            &a,
            chrono::Utc::now(),
        ))),
        Command::Status(a) => with_config(&a.config.config, |cfg| {
            runtime()?.block_on(async {
                match evsite::app::status::status(&cfg, a.format).await {
                    Ok(text) => {
                        print!("{text}");
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("evsite: {e}");
                        Ok(ExitCode::from(e.exit_code()))
                    }
                }
            })
        }),
        Command::Forget(a) => {
            runtime().map(|rt| match rt.block_on(evsite::app::forget::forget(&a)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("evsite: {e}");
                    ExitCode::from(e.exit_code())
                }
            })
        }
        Command::Manpages { dir } => manpages(&dir).map(|()| ExitCode::SUCCESS),
        Command::StoreTrial { path } => Ok(match evsite::store::schema::trial_open(&path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(evsite::store::schema::TRIAL_REFUSED as u8),
        }),
        Command::Run(a) => {
            // The cloud link's files are the link's own business: it raises
            // `cloud_link_down` and retries, while the site runs.
            let checked = evsite::config::check(&a.config, evsite::config::FileScope::Site);
            warn(&checked.warnings);
            match checked.result {
                Ok(cfg) => runtime()
                    .and_then(|rt| Ok(rt.block_on(evsite::app::run::run(cfg, a.config.clone()))?))
                    .map(|()| ExitCode::SUCCESS),
                Err(errors) => {
                    eprint!("{errors}");
                    Ok(ExitCode::from(EX_CONFIG))
                }
            }
        }
    };
    result.unwrap_or_else(|e: anyhow::Error| {
        eprintln!("evsite: {e:#}");
        ExitCode::FAILURE
    })
}

/// `evsite.1.gz` and `evsite-SUBCOMMAND.1.gz` for every subcommand shown in `--help`, gzipped
/// as Debian wants them: maximum compression, no name or time in the header, so the same
/// definitions always give the same bytes.
fn manpages(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let mut pages = vec![(cmd.get_name().to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        pages.push((
            name.clone(),
            sub.clone().name(name).version(version.clone()),
        ));
    }
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .source(format!("evsite {version}"))
            .manual("evsite manual")
            .render(&mut roff)?;
        let file = std::fs::File::create(dir.join(format!("{name}.1.gz")))?;
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(file, flate2::Compression::best());
        gz.write_all(&roff)?;
        gz.finish()?.sync_all()?;
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Prints a history command's output, or its error with the matching exit code.
fn history(result: Result<String, evsite::app::history::HistoryError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(evsite::app::history::HistoryError::Config(errors)) => {
            eprint!("{errors}");
            ExitCode::from(EX_CONFIG)
        }
        Err(e) => {
            eprintln!("evsite: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints the warnings of a check, in the errors' `file:line:col: key: warning: reason` shape.
fn warn(warnings: &[evsite::config::ConfigError]) {
    for w in warnings {
        eprintln!("{}: {}: warning: {}", w.location, w.key, w.reason);
    }
}

fn check_config(path: &std::path::Path, live: bool) -> anyhow::Result<ExitCode> {
    let checked = evsite::config::check(path, evsite::config::FileScope::All);
    warn(&checked.warnings);
    match checked.result {
        Ok(cfg) if live => {
            let parts = runtime()?.block_on(evsite::app::live::check(&cfg));
            print!("{}", evsite::app::live::render(&parts));
            Ok(if parts.iter().all(|p| p.ok) {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{}: {} of {} parts failed",
                    path.display(),
                    parts.iter().filter(|p| !p.ok).count(),
                    parts.len()
                );
                ExitCode::from(EX_UNAVAILABLE)
            })
        }
        Ok(cfg) => {
            println!(
                "{}: ok — site {}, {} A per phase, meter {}, {} chargers, {} circuits",
                path.display(),
                cfg.site.id,
                cfg.site.grid_limit_a,
                cfg.meter.model.name,
                cfg.chargers.len(),
                cfg.circuits.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprint!("{errors}");
            Ok(ExitCode::from(EX_CONFIG))
        }
    }
}

fn with_config(
    path: &std::path::Path,
    f: impl FnOnce(evsite::config::Config) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    match evsite::config::load(path) {
        Ok(cfg) => f(cfg),
        Err(errors) => {
            eprint!("{errors}");
            Ok(ExitCode::from(EX_CONFIG))
        }
    }
}
