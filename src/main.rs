//! The `tollgate` command line: run | check | demo | hash-secret | healthcheck | completions.
//! Exit codes: 0 success,
//! 1 refused config or runtime failure, 2 usage error.

mod cli;

use clap::{CommandFactory as _, Parser as _};
use cli::{Cli, Command, LogFormat};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use tollgate::config::{RuntimeConfig, RuntimeFlavour};

/// Logs go to stderr through a writer thread that batches them (one `write` per batch, not per
/// line); the guard flushes what is left when it is dropped at exit.
fn init_logs(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Never drop a line: a full queue makes the request wait instead.
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    // Colour only for a terminal: a file or a pipe gets plain text (NO_COLOR is honoured too).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    // Access lines are formatted by tollgate itself, batched per worker, into the same writer.
    let access = match format {
        LogFormat::Json => Some(tollgate::access_log::Format::Json),
        LogFormat::Text if !ansi => Some(tollgate::access_log::Format::Text),
        LogFormat::Text => None,
    };
    let b = b.with_writer(writer.clone());
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Text => b.init(),
    }
    if let Some(f) = access {
        tollgate::access_log::install(f, move |batch| {
            let _ = std::io::Write::write_all(&mut writer.clone(), batch);
        });
    }
    guard
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::HashSecret) => hash_secret(),
        Some(Command::Healthcheck { config }) => healthcheck(&config),
        Some(Command::Check { config }) => check(&config),
        Some(Command::Explain {
            config,
            method,
            path,
            headers,
        }) => match load(&config) {
            Ok(cfg) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                match rt.block_on(tollgate::admin::explain::offline(
                    cfg, method, path, &headers,
                )) {
                    Ok(v) => emit(&format!("{v:#}\n")),
                    Err(e) => {
                        eprintln!("{}: {e}", config.display());
                        ExitCode::from(1)
                    }
                }
            }
            Err(code) => code,
        },
        Some(Command::Completions { shell }) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tollgate", &mut out);
            emit(&String::from_utf8_lossy(&out))
        }
        Some(Command::Demo {
            listen,
            log_format,
            config,
        }) => {
            if config.is_some() {
                eprintln!("error: demo runs its own bundled config; to run yours: tollgate run --config FILE");
                return ExitCode::from(2);
            }
            let _logs = init_logs(log_format);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let rt = RuntimeConfig {
                workers: cores,
                flavour: RuntimeFlavour::MultiThread,
            };
            runtime(rt, async move { tollgate::demo::run(listen).await })
        }
        Some(Command::Run { config, log_format }) => run(config, log_format),
        None => match cli.config {
            Some(config) => run(config, cli.log_format),
            None => {
                eprintln!("error: --config FILE is required (or a command: tollgate --help)");
                ExitCode::from(2)
            }
        },
    }
}

fn run(path: PathBuf, format: LogFormat) -> ExitCode {
    let _logs = init_logs(format);
    // The runtime is built from the config, so the config is read first.
    let config = match tollgate::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    runtime(config.runtime, async move {
        tollgate::server::run(path, config)
            .await
            .map_err(anyhow::Error::from)
    })
}

fn runtime(
    cfg: RuntimeConfig,
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let mut b = match cfg.flavour {
        RuntimeFlavour::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(cfg.workers);
            b
        }
        RuntimeFlavour::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    let rt = b
        .enable_all()
        // A worker's batched access lines go out before it sleeps and when it stops.
        .on_thread_park(tollgate::access_log::flush_thread)
        .on_thread_stop(tollgate::access_log::flush_thread)
        .build()
        .expect("tokio runtime");
    let done = rt.block_on(fut);
    tollgate::access_log::flush_thread();
    drop(rt);
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The config at `path`, or its problems printed and exit 1.
fn load(path: &std::path::Path) -> Result<tollgate::config::Config, ExitCode> {
    tollgate::config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })
}

fn healthcheck(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(admin) = config.admin else {
        eprintln!("{}: no admin listener to ask", path.display());
        return ExitCode::from(1);
    };
    let mut addr = admin.address;
    // A wildcard bind is reached on the loopback of its family.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let asked = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tollgate::admin::probe::readyz(addr),
        )
        .await
    });
    match asked {
        Ok(Ok(200)) => {
            println!("ready");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            eprintln!("not ready: http://{addr}/readyz answered {status}");
            ExitCode::from(1)
        }
        Ok(Err(e)) => {
            eprintln!("not ready: http://{addr}/readyz: {e}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("not ready: http://{addr}/readyz did not answer within 3 s");
            ExitCode::from(1)
        }
    }
}

fn hash_secret() -> ExitCode {
    // On a terminal: a prompt, and the secret not echoed. Piped: read as sent.
    let input = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        match rpassword::prompt_password("secret (not echoed): ") {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading the secret: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        let mut input = String::new();
        if std::io::stdin().read_to_string(&mut input).is_err() {
            eprintln!("error: stdin is not UTF-8 text");
            return ExitCode::from(1);
        }
        input
    };
    let secret = input
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&input);
    if secret.is_empty() {
        eprintln!("error: empty secret on stdin");
        return ExitCode::from(1);
    }
    println!("{}", tollgate::issue::core::hash_secret(secret));
    ExitCode::SUCCESS
}

fn check(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let served = match config.listen.tls.as_ref().map(tollgate::tls::server_config) {
        Some(Err(e)) => {
            eprintln!("{}: listen.tls: {e}", path.display());
            return ExitCode::from(1);
        }
        Some(Ok(tls)) => tls.served,
        None => Vec::new(),
    };
    if let Some(key) = &config.signing.key_file {
        let text = std::fs::read_to_string(key).unwrap_or_default();
        if let Err(e) = tollgate::token::jwt::JwtKeys::from_material(&config.signing, &text) {
            eprintln!("{}: signing.key_file: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    for u in config.upstreams.iter().filter(|u| u.https) {
        if let Err(e) = tollgate::tls::client_config(&u.tls) {
            eprintln!("{}: upstreams.{}.tls: {e}", path.display(), u.name);
            return ExitCode::from(1);
        }
    }
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    // Written at once; a reader that stops early (`| head`) ends the output, not the process.
    emit(&tollgate::report::check_report(path, &config, &served))
}

/// Writes `text` to stdout; a closed pipe is a reader that has seen enough (exit 0).
fn emit(text: &str) -> ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the output: {e}");
            ExitCode::from(1)
        }
    }
}
