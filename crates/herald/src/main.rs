//! The `herald` command: parses the command line and runs the chosen subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use herald::app::{App, create_organization_token, open_store};
use herald::config::{self, Config, LogFormat, Overrides};
use tokio_util::sync::CancellationToken;

/// Herald: a reliable, fast webhook server, wire-compatible with the Svix API v1.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the main job).
    Serve(ConfigArgs),
    /// Apply pending database migrations, then exit.
    Migrate(ConfigArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print Herald's OpenAPI document.
    Openapi,
    /// Encryption keys for secrets at rest.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Measure throughput, latency and memory with a load test on this machine (loopback only).
    Bench(herald::bench::BenchArgs),
    /// Receive webhooks on this machine while developing: print, verify, forward, replay.
    Listen(herald::listen::ListenArgs),
    /// Manage applications on a running server.
    App(herald::client::application::AppArgs),
    /// Manage an application's endpoints on a running server.
    Endpoint(herald::client::endpoint::EndpointArgs),
    /// Manage event types on a running server.
    EventType(herald::client::event_type::EventTypeArgs),
    /// List and show an application's messages.
    Message(herald::client::message::MessageArgs),
    /// Send a message to an application (payload from --payload or stdin).
    Send(herald::client::message::SendArgs),
    /// List delivery attempts and resend messages.
    Attempt(herald::client::attempt::AttemptArgs),
    /// Manage ingest sources (webhooks providers send to Herald for you) on a running server.
    Source(herald::client::source::SourceArgs),
    /// One screen about a running server: readiness, throughput, queue, failing endpoints.
    Status(herald::client::status::StatusArgs),
    /// Check a saved webhook's signature offline; exit status 1 when invalid.
    Verify(herald::client::verify::VerifyArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an organisation token (full access) and print it once. Works on the database
    /// directly (the server's configuration), so it needs no token.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// A note saying what the token is for.
        #[arg(long, default_value = "created with `herald token create`")]
        description: String,
    },
    /// List API tokens on a running server (ids, scopes, expiry; never their values).
    List(herald::client::token::TokenListArgs),
    /// Revoke an API token (organisation or portal) on a running server; it stops working at
    /// once on that server, within 5 seconds on the others sharing its database.
    Revoke(herald::client::token::TokenRevokeArgs),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print a new random encryption key (for `encryption_key`, shared by all nodes).
    Generate,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the commented default configuration file.
    Default,
}

/// Flags that override the configuration file and environment.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// Configuration file (default: ./herald.toml when it exists; env HERALD_CONFIG).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address:port to listen on (setting `listen`).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (setting `data_dir`).
    #[arg(long)]
    data_dir: Option<String>,
    /// Database URL (setting `database_url`).
    #[arg(long)]
    database_url: Option<String>,
    /// Log format: text or json (setting `log_format`).
    #[arg(long)]
    log_format: Option<String>,
    /// What this node does: all, api or worker (setting `role`; api and worker need PostgreSQL).
    #[arg(long)]
    role: Option<String>,
}

impl ConfigArgs {
    fn load(self) -> anyhow::Result<Config> {
        let mut overrides = Overrides { config_file: self.config, ..Default::default() };
        overrides.set("listen", "--listen", self.listen);
        overrides.set("data_dir", "--data-dir", self.data_dir);
        overrides.set("database_url", "--database-url", self.database_url);
        overrides.set("log_format", "--log-format", self.log_format);
        overrides.set("role", "--role", self.role);
        let config = Config::load(&overrides)?;
        init_logging(&config);
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }
}

/// Logs to stderr as `log_format` says, filtered by `log_level`; and, in builds with the
/// `otlp` feature, traces to `otlp_endpoint` (unaffected by `log_level`).
fn init_logging(config: &Config) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    // Colours only for a terminal: a log redirected to a file or a collector stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = match config.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
    #[cfg(feature = "otlp")]
    let registry = registry.with(config.otlp_endpoint.as_ref().map(|endpoint| {
        let spans = tracing_subscriber::filter::Targets::new()
            .with_target(herald::otlp::TARGET, tracing::Level::INFO);
        herald::otlp::layer(endpoint, "herald").with_filter(spans)
    }));
    registry.init();
    if cfg!(not(feature = "otlp")) && config.otlp_endpoint.is_some() {
        tracing::warn!(
            "otlp_endpoint is set, but this build has no OTLP exporter (build with --features otlp)"
        );
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.load()?).await,
        Command::Migrate(args) => {
            let config = args.load()?;
            let store = open_store(&config).await?;
            store.close().await;
            println!("The database is up to date.");
            Ok(())
        }
        Command::Token(TokenCommand::Create { config, description }) => {
            let store = open_store(&config.load()?).await?;
            let token = create_organization_token(store.as_ref(), &description)
                .await
                .context("could not create the token")?;
            store.close().await;
            println!("{}", token.expose());
            Ok(())
        }
        Command::Token(TokenCommand::List(args)) => herald::client::token::list(args).await,
        Command::Token(TokenCommand::Revoke(args)) => herald::client::token::revoke(args).await,
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::DEFAULT_FILE);
            Ok(())
        }
        Command::Key(KeyCommand::Generate) => {
            println!("{}", herald_core::secret::Cipher::generate_key_base64());
            Ok(())
        }
        Command::Openapi => {
            print!("{}", herald::api::openapi::document_json());
            Ok(())
        }
        Command::Bench(args) => herald::bench::run(args).await,
        Command::Listen(args) => herald::listen::run(args).await,
        Command::App(args) => herald::client::application::run(args).await,
        Command::Endpoint(args) => herald::client::endpoint::run(args).await,
        Command::EventType(args) => herald::client::event_type::run(args).await,
        Command::Message(args) => herald::client::message::run(args).await,
        Command::Send(args) => herald::client::message::send(args).await,
        Command::Attempt(args) => herald::client::attempt::run(args).await,
        Command::Status(args) => herald::client::status::run(args).await,
        Command::Source(args) => herald::client::source::run(args).await,
        Command::Verify(args) => herald::client::verify::run(&args),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    // Bound before the app is built, so a start that can't listen (the port is taken) fails
    // before it creates anything: the first start's token is made, and shown, by the start
    // that serves.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    let app = App::build(config).await?;
    let created_token = app.new_admin_token.is_some();
    if let Some(token) = &app.new_admin_token {
        println!("Created an organisation API token. It is shown only this once; keep it safe:");
        println!();
        println!("    {}", token.expose());
        println!();
        println!("(`herald token create` makes another, with the same data directory and database.)");
        println!();
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let served = app.serve(listener, shutdown).await.context("the server failed");
    if served.is_err() && created_token {
        eprintln!(
            "The organisation API token printed above was created and stays valid; \
             `herald token create` makes another."
        );
    }
    served
}

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every subcommand says what it does and every argument of every subcommand has help
    /// text, so `herald … --help` never shows a bare flag.
    #[test]
    fn every_subcommand_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{sub_path} (the subcommand)"));
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        walk(&command, "herald", &mut missing);
        assert!(missing.is_empty(), "arguments or subcommands without help text:\n{}", missing.join("\n"));
    }

    /// `herald attempt resend` takes `--msg` and `--endpoint`, as `attempt list` does, and still
    /// the positional form.
    #[test]
    fn attempt_resend_takes_the_flags_of_attempt_list_and_the_positional_form() {
        use clap::Parser as _;
        for line in [
            &["herald", "attempt", "resend", "shop", "--msg", "msg_1", "--endpoint", "ep_1"][..],
            &["herald", "attempt", "resend", "shop", "msg_1", "ep_1"][..],
            &["herald", "attempt", "resend", "shop", "msg_1", "--endpoint", "ep_1"][..],
        ] {
            let cli = Cli::try_parse_from(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            let super::Command::Attempt(args) = cli.command else { panic!("{line:?}: not attempt") };
            let herald::client::attempt::AttemptCommand::Resend {
                message,
                message_arg,
                endpoint,
                endpoint_arg,
                ..
            } = args.command
            else {
                panic!("{line:?}: not resend")
            };
            assert_eq!(message.or(message_arg).as_deref(), Some("msg_1"), "{line:?}");
            assert_eq!(endpoint.or(endpoint_arg).as_deref(), Some("ep_1"), "{line:?}");
        }
        let twice = Cli::try_parse_from(["herald", "attempt", "resend", "shop", "msg_1", "--msg", "msg_2"]);
        assert!(twice.is_err(), "a message given twice is refused");
    }
}
