//! The command-line front end: parses arguments, builds the engine, runs one
//! command and renders its result. The only module that prints.

mod access;
mod apps;
pub mod args;
mod backup;
mod commands;
mod import;
mod logs;
mod market;
mod market_catalog;
mod market_install;
pub mod metrics;
mod metrics_plot;
mod metrics_show;
mod metrics_view;
mod plan_view;
mod reconcile;
mod releases;
pub mod render;
mod servers;

use std::io::Write;

use clap::Parser;

use crate::config::{Config, ConfigArgs, LogFormat, ProcessEnv};
use crate::engine::Engine;
use crate::error::Error;
use args::{Cli, Command};

/// Runs tomo with the process arguments; returns the exit code.
pub fn run() -> i32 {
    crate::engine::mark_process_start();
    let cli = Cli::parse();
    let styled = render::stderr_styled();
    let done = dispatch(cli);
    crate::engine::syslog::flush(std::time::Duration::from_secs(2));
    match done {
        Ok(code) => code,
        Err(e) => {
            let _ = std::io::stderr().write_all(render::error(&e, styled).as_bytes());
            e.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, Error> {
    // Commands that need no configuration.
    if let Command::Completions(a) = &cli.command {
        return commands::completions(a);
    }
    let config =
        Config::load(&ConfigArgs { config: cli.global.config.clone(), dir: cli.global.dir.clone() }, &ProcessEnv)?;
    // Daemons log JSON (stderr), whatever the configured format.
    let mut config = config;
    if matches!(cli.command, Command::Serve(_) | Command::Watch(_)) {
        config.log_format = LogFormat::Json;
    }
    init_logging(&config);
    let engine = Engine::new(config);
    if cli.global.reinit {
        let made = runtime()?.block_on(engine.reinit_store())?;
        let _ = std::io::stderr().write_all(render::reinitialised(&made).as_bytes());
    }
    match cli.command {
        Command::Validate(a) => commands::validate(&engine, &a),
        Command::Plan(a) => reconcile::plan(&engine, &a),
        Command::Apply(a) => reconcile::apply(&engine, &a),
        Command::Graph(a) => reconcile::graph(&engine, &a),
        Command::Status(a) => reconcile::status(&engine, &a),
        Command::Server(c) => servers::run(&engine, c),
        Command::Schema(a) => commands::schema(&a),
        Command::Secret(c) => commands::secret(&engine, c),
        Command::Watch(a) => access::watch(engine, &a),
        Command::Serve(a) => access::serve(engine, &a),
        Command::User(c) => access::user(&engine, c),
        Command::Token(c) => access::token(&engine, c),
        Command::Proposal(c) => access::proposal(&engine, c),
        Command::App(c) => apps::run(&engine, c),
        Command::History(a) => releases::history(&engine, &a),
        Command::Rollback(a) => releases::rollback(&engine, &a),
        Command::Import(c) => import::run(&engine, c),
        Command::Market(c) => market::run(&engine, c),
        Command::Backup(c) => backup::run(&engine, c),
        Command::Metrics(a) => metrics::run(&engine, a),
        Command::Logs(a) => logs::run(&engine, a),
        Command::Completions(_) => unreachable!("handled above"),
    }
}

/// Writes to standard output (an error when it is closed).
fn out(text: &str) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes()).and_then(|_| o.flush()).map_err(|source| Error::write("standard output", source))
}

/// Writes JSON text and a line break to standard output, with the
/// characters a terminal acts on that JSON leaves raw escaped (`term::json`).
fn out_json(text: &str) -> Result<(), Error> {
    out(&format!("{}\n", crate::term::json(text)))
}

/// The async runtime of one command.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)
}

fn init_logging(config: &Config) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOMO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.log_level.as_str()));
    // rmcp logs whole requests and results below `info` (passwords of
    // `auth_login`, environment values): never let those through, whatever
    // TOMO_LOG names (a directive for `rmcp::service` would beat `rmcp=info`).
    let rmcp_capped = tracing_subscriber::filter::filter_fn(|m| {
        !(m.target().starts_with("rmcp") && *m.level() > tracing::Level::INFO)
    });
    // Log lines carry what servers said (names, errors): in text, every
    // field passes `term::line` (escaped, bounded, one line per event); in
    // JSON, serde escapes C0 and the writer the rest (`term::json`).
    let layer = tracing_subscriber::fmt::layer();
    let layer = match config.log_format {
        LogFormat::Json => layer.json().with_writer(|| SafeJson).boxed(),
        LogFormat::Text => {
            layer.fmt_fields(escaped_fields()).with_ansi(render::stderr_styled()).with_writer(std::io::stderr).boxed()
        }
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(rmcp_capped))
        .with(crate::mcp::call_events())
        .with(crate::engine::syslog::layer())
        .try_init();
}

/// Text log fields as tracing's default formatter writes them (`message`
/// bare, others `name=value`, space-separated), each value through
/// `term::line`.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let value = format!("{value:?}");
        match field.name() {
            "message" => write!(w, "{}", crate::term::line(&value)),
            name => write!(w, "{name}={}", crate::term::line(&value)),
        }
    })
    .delimited(" ")
}

/// Standard error for JSON log lines, each written whole with `term::json`
/// applied (the fmt layer writes one event per `write_all`).
struct SafeJson;

impl Write for SafeJson {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        match std::str::from_utf8(buf) {
            Ok(text) => err.write_all(crate::term::json(text).as_bytes())?,
            Err(_) => err.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
