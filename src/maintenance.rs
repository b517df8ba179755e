//! The store commands of the command line (`backup`, `restore`, `migrate`, `verify`):
//! each opens the stores the configuration names, wires them to [`crate::backup`] and
//! tells its progress on the terminal.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backup::migrate::MigrateReport;
use crate::backup::verify::{BrokenChain, VerifyReport};
use crate::backup::{
    dump, index_fingerprint, open_dump, BackupError, DumpOptions, DumpStream, Erasures, Identities,
    MemberKeys, Progress, Recipients, RestoreReport, Target,
};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::MAIL_ALLOWANCE_WINDOW_SECS;
use crate::domain::{Contact, ContactWrite, MemberIndexChange};
use crate::service::Subscriptions;
use crate::store::SharedStore;

/// How often plain progress lines are written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

fn allowance_window() -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(MAIL_ALLOWANCE_WINDOW_SECS).unwrap_or(i64::MAX))
}

/// What a dump written to a file held.
pub struct BackupReport {
    pub bytes: u64,
    pub elapsed: Duration,
    pub counts: BTreeMap<&'static str, u64>,
    pub encrypted: bool,
}

/// `optin backup`: a dump of the configured store, written to a temporary name beside
/// `to` (mode 0600) and renamed to `to` once complete.
pub async fn backup(
    config: &Config,
    to: &Path,
    encrypt_to: &[String],
) -> anyhow::Result<BackupReport> {
    let recipients = if encrypt_to.is_empty() {
        config.backup_recipients.clone()
    } else {
        Recipients::parse(encrypt_to).map_err(|reason| anyhow::anyhow!("--encrypt-to: {reason}"))?
    };
    let encrypted = !recipients.is_empty();
    let store = crate::store::open_for_walk(&config.settings.store.url).await?;
    let progress = Arc::new(Terminal::new("backup"));
    let started = Instant::now();
    let view = store.backup_view().await?;
    let stream = dump::start(
        view,
        DumpOptions {
            index_fingerprint: index_fingerprint(&config.index),
            recipients,
            allowance_window: allowance_window(),
            created_at: SystemClock.now(),
        },
        progress.clone(),
    );
    let bytes = write_file(stream, to).await?;
    progress.finish();
    Ok(BackupReport {
        bytes,
        elapsed: started.elapsed(),
        counts: progress.counts(),
        encrypted,
    })
}

/// Writes the dump to a temporary file beside `to` and renames it to `to` once every
/// byte is on disk; removes the temporary file when the dump fails.
async fn write_file(mut stream: DumpStream, to: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = to
        .file_name()
        .with_context(|| format!("{} names no file", to.display()))?;
    let folder = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary = folder.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = stream.recv().await {
            let chunk = chunk?;
            file.write_all(&chunk)
                .map_err(|e| BackupError::Write(e.to_string()))?;
            written += chunk.len() as u64;
        }
        file.sync_all()
            .map_err(|e| BackupError::Write(e.to_string()))?;
        Ok::<_, BackupError>(())
    }
    .await;
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(error.into());
    }
    std::fs::rename(&temporary, to)
        .with_context(|| format!("cannot rename the dump to {}", to.display()))?;
    // The rename itself must reach the disk too.
    std::fs::File::open(&folder)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync {}", folder.display()))?;
    Ok(written)
}

/// The member index entries of the service, for contacts written by a restore.
fn member_keys(subscriptions: Subscriptions) -> Box<MemberKeys> {
    Box::new(
        move |before: Option<&Contact>, write: &ContactWrite| -> MemberIndexChange {
            subscriptions.member_index_change(before, write)
        },
    )
}

fn subscriptions_on(store: SharedStore, config: &Config) -> Subscriptions {
    Subscriptions::new(
        store,
        Arc::new(config.clone()),
        Arc::new(SystemClock),
        Arc::new(tokio::sync::Notify::new()),
    )
}

pub struct RestoreOutcome {
    pub report: RestoreReport,
    pub elapsed: Duration,
}

/// `optin restore`: loads a dump into the configured store, which must be empty.
pub async fn restore(
    config: &Config,
    from: &Path,
    identity: Option<&Path>,
    erasures_from: Option<&Path>,
) -> anyhow::Result<RestoreOutcome> {
    let identities = identity.map(Identities::load).transpose()?;
    let reader = open_dump(from, identities.as_ref())?;
    let fingerprint = index_fingerprint(&config.index);
    crate::backup::restore::check_fingerprint(
        &reader.header().index_key_fingerprint,
        &fingerprint,
    )?;
    // A later source is read whole (and checked) before anything is written.
    let erasures = erasures_from
        .map(|path| {
            Erasures::load(
                path,
                identities.as_ref(),
                &fingerprint,
                reader.header().created_at,
            )
        })
        .transpose()?;
    let store = crate::store::open_for_walk(&config.settings.store.url).await?;
    let keys = member_keys(subscriptions_on(store.clone(), config));
    let progress = Terminal::new("restore");
    let target = Target {
        store: store.as_ref(),
        catalog: &config.catalog,
        index_fingerprint: &fingerprint,
        member_keys: keys.as_ref(),
        progress: &progress,
    };
    let started = Instant::now();
    let report =
        crate::backup::restore::restore(&target, reader, erasures, SystemClock.now()).await?;
    progress.finish();
    Ok(RestoreOutcome {
        report,
        elapsed: started.elapsed(),
    })
}

pub struct MigrateOutcome {
    pub report: MigrateReport,
    pub elapsed: Duration,
}

/// `optin migrate`: copies the configured store into the empty store at `to`.
pub async fn migrate(config: &Config, to: &str) -> anyhow::Result<MigrateOutcome> {
    let source = crate::store::open_for_walk(&config.settings.store.url).await?;
    let target = crate::store::open_for_walk(to).await?;
    let keys = member_keys(subscriptions_on(target.clone(), config));
    let fingerprint = index_fingerprint(&config.index);
    let progress = Terminal::new("migrate");
    let target = Target {
        store: target.as_ref(),
        catalog: &config.catalog,
        index_fingerprint: &fingerprint,
        member_keys: keys.as_ref(),
        progress: &progress,
    };
    let started = Instant::now();
    let report = crate::backup::migrate::migrate(
        source.as_ref(),
        &target,
        allowance_window(),
        SystemClock.now(),
    )
    .await?;
    progress.finish();
    Ok(MigrateOutcome {
        report,
        elapsed: started.elapsed(),
    })
}

/// `optin verify`: every chain of the configured store, or of a dump file.
pub async fn verify(
    config: Option<&Config>,
    dump_file: Option<(&Path, Option<&Path>)>,
    broken: &mut (dyn FnMut(BrokenChain) + Send),
) -> anyhow::Result<VerifyReport> {
    let progress = Terminal::new("verify");
    let report = match (dump_file, config) {
        (Some((path, identity)), _) => {
            let identities = identity.map(Identities::load).transpose()?;
            let reader = open_dump(path, identities.as_ref())?;
            crate::backup::verify::verify_dump(reader, &progress, broken)?
        }
        (None, Some(config)) => {
            let store = crate::store::open_for_walk(&config.settings.store.url).await?;
            let view = store.backup_view().await?;
            crate::backup::verify::verify_store(view.as_ref(), &progress, broken).await?
        }
        (None, None) => anyhow::bail!("nothing to verify"),
    };
    progress.finish();
    Ok(report)
}

/// Progress on stderr: an `indicatif` spinner on a terminal, a plain line every two
/// seconds otherwise (a log, a pipe).
struct Terminal {
    label: &'static str,
    bar: Option<ProgressBar>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl Terminal {
    fn new(label: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            label,
            bar,
            counts: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn summary(&self) -> String {
        let counts = self.counts();
        let contacts = counts.get("contact").copied().unwrap_or(0);
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let mut parts: Vec<String> = counts
            .iter()
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect();
        if parts.is_empty() {
            parts.push("starting".into());
        }
        format!(
            "{} ({:.0} contacts/s)",
            parts.join(", "),
            contacts as f64 / seconds
        )
    }

    fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}: done: {}", self.label, self.summary()),
        }
    }
}

impl Progress for Terminal {
    fn advance(&self, kind: &'static str, records: u64) {
        if records == 0 {
            return;
        }
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(kind)
            .or_default() += records;
        match &self.bar {
            Some(bar) => bar.set_message(self.summary()),
            None => {
                let mut last = self
                    .last_line
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("{}: {}", self.label, self.summary());
                }
            }
        }
    }
}
