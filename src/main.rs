//! The `optin` command line: `serve`, `keys new`, `keys dkim`, `keys webhook`,
//! `keys receipt`, `check-config`, `health`, `reindex-members`, `backup`, `restore`,
//! `migrate`, `verify`.

/// mimalloc instead of the system allocator: a request allocates many small, short-lived
/// buffers (headers, JSON, tokens), which glibc's malloc served at about a tenth of the
/// CPU of an eligibility check under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use optin::auth::{generate_key, Scope};
use optin::clock::SystemClock;
use optin::config::{Config, DevKeys, Settings};
use optin::mail::dkim::KeyAlgorithm;
use optin::mail::templates::MailTemplates;
use optin::mail::transport::MailTransport;
use optin::maintenance;
use optin::service::Subscriptions;
use optin::startup::{Application, Background};
use optin::web::pages::Pages;
use optin::web::routes::ops::probe_readiness;

#[derive(Parser)]
#[command(
    name = "optin",
    version,
    about = "Double opt-in email subscriptions with GDPR provenance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Make keys and secrets: API keys, DKIM keys, webhook secrets, receipt keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Validate the configuration and exit non-zero with a message when it is wrong.
    /// Writes nothing and contacts nothing.
    CheckConfig {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Exit 0 when the service on the configured `server.bind` answers `GET /readyz` with
    /// 200 within 3 seconds, non-zero otherwise (for a container HEALTHCHECK).
    Health {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Give every stored contact its entry in the member index, by which the Mailchimp
    /// API finds members by hash. Run once on a store written before that index existed;
    /// safe to run again, and on Redis while the service runs (the embedded store's file
    /// belongs to one process: stop the service first).
    ReindexMembers {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a dump of the configured store (zstd JSON lines; see docs/backup.md) to
    /// FILE: a temporary name first, renamed once complete, mode 0600. On the embedded
    /// store, stop the service first, or download `GET /v1/backup` from it instead.
    Backup {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to write the dump.
        #[arg(long)]
        to: PathBuf,
        /// Encrypt to this age recipient (`age1…`); repeat for several. Without it,
        /// `backup.age_recipients` is used, and with neither the dump is not encrypted.
        #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
        encrypt_to: Vec<String>,
    },
    /// Load a dump into the configured store, which must be empty (any kind: embedded,
    /// Redis, Redis Cluster). Until it finishes, `optin serve` refuses that store.
    Restore {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The dump to load.
        #[arg(long)]
        from: PathBuf,
        /// The age identity file (from `age-keygen`) of an encrypted dump.
        #[arg(long)]
        identity: Option<PathBuf>,
        /// A later dump, or the JSON of `GET /v1/tombstones`: erasures made after the
        /// dump was taken are applied after loading it.
        #[arg(long = "erasures-from", value_name = "FILE")]
        erasures_from: Option<PathBuf>,
    },
    /// Copy the configured store into the empty store at STORE_URL, then compare the
    /// counts and every contact's chain head. Stop the service first: changes made
    /// during the copy make the comparison fail.
    Migrate {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// `redis://…`, `redis+cluster://h1:p1,…` or a file path for an embedded store.
        #[arg(long, value_name = "STORE_URL")]
        to: String,
    },
    /// Check every contact's hash chain in the configured store (or, with --from, in a
    /// dump, without a store) and exit non-zero naming each contact whose chain is
    /// broken (masked).
    Verify {
        /// Configuration file (default: ./optin.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A dump to check instead of the store.
        #[arg(long)]
        from: Option<PathBuf>,
        /// The age identity file of an encrypted dump.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new API key and the line to add to `security.api_keys`.
    New {
        /// What the key may do.
        #[arg(long, value_enum)]
        scope: Scope,
        /// A name for the key, recorded as the actor of changes made with it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Generate a DKIM key (mode 0600) and print the DNS TXT record to publish.
    Dkim {
        /// The signing domain: the From domain or a parent of it.
        #[arg(long)]
        domain: String,
        /// The selector; the record goes to <selector>._domainkey.<domain>.
        #[arg(long)]
        selector: String,
        /// The key type; RSA (2048 bits) is verified by every receiver.
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: KeyAlgorithm,
        /// Where to write the private key (PEM); an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a new webhook signing secret (`whsec_…`) for `[[webhooks.endpoints]]`.
    Webhook,
    /// Generate an Ed25519 key (PKCS#8 PEM, mode 0600) that signs consent receipts.
    Receipt {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let code = run(Cli::parse());
    optin::telemetry::finish_logging();
    code
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Keys {
            command: KeysCommand::New { scope, name },
        } => new_key(scope, name),
        Command::Keys {
            command:
                KeysCommand::Dkim {
                    domain,
                    selector,
                    algorithm,
                    out,
                },
        } => match optin::mail::dkim::generate_key_file(&domain, &selector, algorithm, &out) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("optin: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Keys {
            command: KeysCommand::Webhook,
        } => match optin::webhooks::SigningKey::generate() {
            Ok(secret) => {
                println!("{secret}");
                eprintln!("Set it as `secret` of the endpoint in [[webhooks.endpoints]], and give the same secret to the receiver, which verifies with it.");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("optin: no randomness for a secret: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Keys {
            command: KeysCommand::Receipt { out },
        } => new_receipt_key(&out),
        Command::CheckConfig { config } => check_config(config),
        Command::Health { config } => health(config),
        Command::ReindexMembers { config } => reindex_members(config),
        Command::Backup {
            config,
            to,
            encrypt_to,
        } => backup(config, to, encrypt_to),
        Command::Restore {
            config,
            from,
            identity,
            erasures_from,
        } => restore(config, from, identity, erasures_from),
        Command::Migrate { config, to } => migrate(config, to),
        Command::Verify {
            config,
            from,
            identity,
        } => verify(config, from, identity),
    }
}

/// Runs one store command on a configured runtime; its error ends the process with 1.
fn run_store_command<T>(
    config_path: Option<PathBuf>,
    command: impl AsyncFnOnce(&Config) -> anyhow::Result<T>,
    report: impl FnOnce(T) -> ExitCode,
) -> ExitCode {
    let (config, runtime) = match configured_runtime(config_path) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    match runtime.block_on(command(&config)) {
        Ok(done) => report(done),
        Err(error) => {
            eprintln!("optin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn counts_line<K: std::fmt::Display>(counts: &std::collections::BTreeMap<K, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(0.001)
}

fn backup(config: Option<PathBuf>, to: PathBuf, encrypt_to: Vec<String>) -> ExitCode {
    run_store_command(
        config,
        async |config| maintenance::backup(config, &to, &encrypt_to).await,
        |report| {
            let contacts = report.counts.get("contact").copied().unwrap_or(0);
            println!(
                "Backup written to {} ({} bytes{}): {} in {:.1} s ({:.0} contacts/s).",
                to.display(),
                report.bytes,
                if report.encrypted {
                    ", age-encrypted"
                } else {
                    ""
                },
                counts_line(&report.counts),
                report.elapsed.as_secs_f64(),
                per_second(contacts, report.elapsed)
            );
            ExitCode::SUCCESS
        },
    )
}

fn restore(
    config: Option<PathBuf>,
    from: PathBuf,
    identity: Option<PathBuf>,
    erasures_from: Option<PathBuf>,
) -> ExitCode {
    run_store_command(
        config,
        async |config| {
            maintenance::restore(config, &from, identity.as_deref(), erasures_from.as_deref()).await
        },
        |outcome| {
            let report = outcome.report;
            let contacts = report.counts.get("contact").copied().unwrap_or(0);
            println!(
                "Restored {}: {} in {:.1} s ({:.0} contacts/s).",
                from.display(),
                counts_line(&report.counts),
                outcome.elapsed.as_secs_f64(),
                per_second(contacts, outcome.elapsed)
            );
            if erasures_from.is_some() {
                println!(
                    "Later erasures applied: {} contacts erased again, {} tombstones added.",
                    report.erased, report.tombstones_added
                );
            }
            ExitCode::SUCCESS
        },
    )
}

fn migrate(config: Option<PathBuf>, to: String) -> ExitCode {
    run_store_command(
        config,
        async |config| maintenance::migrate(config, &to).await,
        |outcome| {
            let report = outcome.report;
            println!(
                "Copied {} in {:.1} s.",
                counts_line(&report.copied),
                outcome.elapsed.as_secs_f64()
            );
            println!("The target holds {}.", counts_line(&report.found));
            if report.matches() {
                println!("The stores match: the same counts, and every contact has the same version and chain head.");
                ExitCode::SUCCESS
            } else {
                println!(
                    "The stores DO NOT match: {} contacts differ{}{}. The target keeps its restore mark, so `optin serve` refuses it; empty it and copy again with the service stopped.",
                    report.mismatches,
                    if report.named.is_empty() { "" } else { ", among them " },
                    report.named.join(", ")
                );
                ExitCode::FAILURE
            }
        },
    )
}

fn verify(
    config_path: Option<PathBuf>,
    from: Option<PathBuf>,
    identity: Option<PathBuf>,
) -> ExitCode {
    let mut broken = |chain: optin::backup::verify::BrokenChain| println!("BROKEN {chain}");
    let result = match &from {
        // A dump needs no configuration at all: it is checked offline.
        Some(dump) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(maintenance::verify(
                None,
                Some((dump.as_path(), identity.as_deref())),
                &mut broken,
            )),
            Err(error) => Err(error.into()),
        },
        None => {
            let (config, runtime) = match configured_runtime(config_path) {
                Ok(ready) => ready,
                Err(code) => return code,
            };
            runtime.block_on(maintenance::verify(Some(&config), None, &mut broken))
        }
    };
    match result {
        Ok(report) => {
            println!(
                "{} contacts, {} events: {} chains broken.",
                report.contacts, report.events, report.broken
            );
            if report.broken == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("optin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration, with logging set up from it, and a runtime to run on; or the exit
/// code of a command that cannot start.
fn configured_runtime(
    config_path: Option<PathBuf>,
) -> Result<(Config, tokio::runtime::Runtime), ExitCode> {
    let config = match Config::load(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("optin: invalid configuration: {error}");
            return Err(ExitCode::from(2));
        }
    };
    optin::telemetry::init_logging(&config.settings.log);
    if config.development_setup {
        tracing::warn!(
            keys = %DevKeys::path().display(),
            public_url = %config.public_url,
            "DEVELOPMENT SETUP: no configuration found, using generated development keys and example subscription types. Not for production."
        );
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok((config, runtime)),
        Err(error) => {
            eprintln!("optin: cannot start the runtime: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn serve(config_path: Option<PathBuf>) -> ExitCode {
    let (config, runtime) = match configured_runtime(config_path) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    // What `check-config` refuses, `serve` refuses before it opens anything.
    if let Err(error) = check_parts(&config) {
        eprintln!("optin: invalid configuration: {error:#}");
        return ExitCode::from(2);
    }
    match &config.receipts {
        Some(receipts) => tracing::info!(
            kid = receipts.signing_kid(),
            "consent receipts are signed and published at /.well-known/jwks.json"
        ),
        None => tracing::warn!(
            "consent.receipt_keys is not set: no consent receipts are issued (`optin keys receipt --out FILE` makes a key)"
        ),
    }
    let result = runtime.block_on(async {
        let app = Application::build(config, Arc::new(SystemClock), Background::default()).await?;
        tracing::info!(port = app.port(), "listening");
        app.run_until_stopped().await?;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "optin stopped with an error");
            eprintln!("optin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn reindex_members(config_path: Option<PathBuf>) -> ExitCode {
    let (config, runtime) = match configured_runtime(config_path) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let store = optin::store::open(&config.settings.store.url).await?;
        let subscriptions = Subscriptions::new(
            store,
            Arc::new(config),
            Arc::new(SystemClock),
            Arc::new(tokio::sync::Notify::new()),
        );
        anyhow::Ok(subscriptions.reindex_members().await?)
    });
    match result {
        Ok(report) => {
            println!(
                "Member index: {} contacts indexed; {} kept changing while read (run again to index them).",
                report.indexed, report.moved_on
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("optin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A health probe needs only the bind address: it reads the settings without building
/// the configuration, so it never generates development keys or needs the secrets.
fn health(config_path: Option<PathBuf>) -> ExitCode {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let settings = match Settings::load(config_path.as_deref()) {
        Ok((settings, _)) => settings,
        Err(error) => {
            eprintln!("optin: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    match probe_readiness(&settings.server.bind, TIMEOUT) {
        Ok(()) => {
            println!("ready");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("optin: not ready: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn new_key(scope: Scope, name: Option<String>) -> ExitCode {
    let name = name.unwrap_or_else(|| format!("{}-key", scope.as_str()));
    if name.is_empty() || name.contains([':', ',']) {
        eprintln!("optin: a key name must not be empty or contain ':' or ','");
        return ExitCode::from(2);
    }
    match generate_key(&name, scope) {
        Ok(new) => {
            println!(
                "API key (give it to the client; it is not stored anywhere): {}",
                new.key
            );
            println!("Add this entry to security.api_keys (OPTIN_SECURITY__API_KEYS, comma-separated): {}", new.config_entry);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("optin: {error}");
            ExitCode::FAILURE
        }
    }
}

fn new_receipt_key(out: &std::path::Path) -> ExitCode {
    match optin::receipts::generate_key_file(out) {
        Ok(kid) => {
            println!(
                "Wrote the Ed25519 receipt key to {} (mode 0600); its kid is {kid}.",
                out.display()
            );
            println!(
                "Add it to consent.receipt_keys (OPTIN_CONSENT__RECEIPT_KEYS, comma-separated): first to sign with it, after the others to only publish it."
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("optin: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Checks what `serve` would check, and writes nothing: the development setup's keys
/// are read when they exist and made up in memory when not.
fn check_config(config_path: Option<PathBuf>) -> ExitCode {
    let config = match Config::load_to_check(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("optin: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = check_parts(&config) {
        eprintln!("optin: invalid configuration: {error}");
        return ExitCode::from(2);
    }
    if config.development_setup {
        println!(
            "No configuration found: `optin serve` would start the development setup, with links to {}.",
            config.public_url
        );
        if !DevKeys::exist() {
            println!(
                "It would make its keys in {} on first start; this check wrote nothing.",
                DevKeys::path().display()
            );
        }
    } else {
        println!(
            "Configuration is valid: {} subscription types, {} signing keys, {} API keys, {} webhook endpoints; links start with {}.",
            config.catalog.all().len(),
            config.settings.security.signing_keys.0.len(),
            config.settings.security.api_keys.0.len(),
            config.webhook_endpoints.len(),
            config.public_url
        );
    }
    println!("Checked: the settings, mail.url, mail.dkim, the mail and page templates and store.url (the store and the mail server were not contacted).");
    match &config.receipts {
        Some(receipts) => println!(
            "Consent receipts: signed with kid {}, {} key(s) published.",
            receipts.signing_kid(),
            receipts.jwks().keys.len()
        ),
        None if config.development_setup => {
            println!("Consent receipts: signed with a key `optin serve` makes on first start.");
        }
        None => println!("Consent receipts: off (consent.receipt_keys is not set)."),
    }
    if let Ok(Some(dkim)) = optin::mail::dkim::DkimSigner::from_config(&config) {
        println!(
            "DKIM: publish this TXT record at {} ({}):\n{}",
            dkim.record_name(),
            optin::mail::dkim::SPLIT_NOTE,
            dkim.txt_record_strings()
        );
    }
    ExitCode::SUCCESS
}

/// What `serve` would refuse at start beyond the settings themselves: the mail URL and
/// the operator's templates. (The store is not contacted.)
fn check_parts(config: &Config) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let settings = &config.settings;
    MailTransport::check_url(settings.mail.url.expose_secret()).map_err(|e| {
        optin::config::ConfigError::Invalid {
            setting: "mail.url".into(),
            reason: e.to_string(),
        }
    })?;
    MailTemplates::load(
        settings.mail.templates_dir.as_deref(),
        &settings.signup.default_locale,
    )?;
    Pages::load(
        settings.server.pages_dir.as_deref(),
        &settings.mail.service_name,
    )?;
    optin::mail::dkim::DkimSigner::from_config(config)
        .map_err(|e| anyhow::anyhow!("mail.dkim: {e}"))?;
    optin::store::check_url(&settings.store.url)
}
