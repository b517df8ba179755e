//! Logging and metrics setup. Logs are JSON lines by default (`log.format = "text"` for
//! people); addresses are only ever logged masked, by the code that logs them.

use std::io::{BufWriter, IsTerminal};
use std::sync::{Mutex, OnceLock, PoisonError};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Lines waiting for the log thread; past this a request waits for room rather than
/// dropping a line.
const QUEUED_LINES: usize = 32_768;

/// The log thread's guard: dropping it writes out what is queued.
static LOG_THREAD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Sets up logging. `RUST_LOG`, when set, overrides the configured filter.
///
/// Requests only format their line and queue it: one thread writes the lines to stderr,
/// through a buffer that it empties whenever the queue is, so that a busy server makes
/// one write per batch of lines instead of one per line, and none on a request's path.
/// [`finish_logging`] writes out the rest before the process ends.
pub fn init_logging(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let text = settings.format == LogFormat::Text;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("optin-log")
        .finish(BufWriter::new(std::io::stderr()));
    // Colour codes only for a person at a terminal, never into a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(writer);
    // A second initialisation (tests start several apps) is ignored, and so is its
    // thread, which ends with its guard.
    let installed = if text {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
    if installed.is_ok() {
        *LOG_THREAD.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    }
}

/// Writes out the queued log lines; the process is about to end.
pub fn finish_logging() {
    let guard = LOG_THREAD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    drop(guard);
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}
