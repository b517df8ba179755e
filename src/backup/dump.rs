//! Streams a store into a dump: page by page from one [`BackupView`], each page written as
//! lines, compressed (and encrypted), and handed on as chunks of bytes through a small
//! channel. Memory stays bounded whatever the store holds: one page of records, the
//! compressor's window and a few chunks waiting to be written.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::mpsc;

use super::encrypt::{Recipients, Sealed};
use super::format::{
    ContactLine, EndpointStateLine, HashedEvent, Header, JobLine, JobStanding, LineWriter,
    MailAllowanceLine, Record, TombstoneLine, FORMAT, VERSION,
};
use super::{BackupError, Progress, PAGE};
use crate::store::{
    BackupView, ContactRead, ContactRecord, EndpointState, JobRecord, JobState, MailAllowance,
};

/// zstd's default level: most of the gain of the higher ones at a fraction of the CPU.
const LEVEL: i32 = 3;
/// Chunks waiting for the reader (the HTTP client, the file): the rest waits in the store.
const CHUNKS_IN_FLIGHT: usize = 4;

pub struct DumpOptions {
    pub index_fingerprint: String,
    /// Encrypt to these (none: a plain dump).
    pub recipients: Recipients,
    /// How long a mail taken from an address's allowance counts (see
    /// `domain::MAIL_ALLOWANCE_WINDOW_SECS`): an allowance expires that long after its
    /// newest mail.
    pub allowance_window: Duration,
    pub created_at: DateTime<Utc>,
}

/// The dump's bytes, chunk by chunk; an error ends it (and the dump has no trailer).
pub type DumpStream = mpsc::Receiver<Result<Vec<u8>, BackupError>>;

/// Starts writing the dump of `view` and answers its bytes as they come.
pub fn start(
    view: Box<dyn BackupView>,
    options: DumpOptions,
    progress: Arc<dyn Progress>,
) -> DumpStream {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::spawn(async move {
        let failed = sender.clone();
        if let Err(error) = write_dump(view.as_ref(), &options, progress.as_ref(), sender).await {
            // The reader may be gone already (a client that hung up).
            let _ = failed.send(Err(error)).await;
        }
    });
    receiver
}

/// What the compressor wrote so far, taken out after each page.
#[derive(Clone, Default)]
struct Chunks(Arc<Mutex<Vec<u8>>>);

impl Chunks {
    fn take(&self) -> Vec<u8> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Lines = LineWriter<zstd::stream::write::Encoder<'static, Sealed<Chunks>>>;

/// Where [`each_record`] hands the records of a view.
#[async_trait::async_trait]
pub(super) trait RecordSink: Send {
    async fn take(&mut self, record: Record) -> Result<(), BackupError>;

    /// A page of records has been handed over.
    async fn page_done(&mut self) -> Result<(), BackupError> {
        Ok(())
    }
}

/// Every record of `view` (but its contacts when `with_contacts` is false), as a dump
/// holds them, in the dump's order, page by page.
pub(super) async fn each_record(
    view: &dyn BackupView,
    allowance_window: Duration,
    with_contacts: bool,
    sink: &mut dyn RecordSink,
) -> Result<(), BackupError> {
    let mut cursor = None;
    if with_contacts {
        loop {
            let page = view.contacts(cursor, PAGE).await?;
            for read in page.items {
                sink.take(contact_line(read)?).await?;
            }
            sink.page_done().await?;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let mut cursor = None;
    loop {
        let page = view.tombstones(cursor, PAGE).await?;
        for (contact_id, tombstone) in page.items {
            let line = TombstoneLine {
                contact_id,
                tombstone,
            };
            sink.take(Record::Tombstone(line)).await?;
        }
        sink.page_done().await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut cursor = None;
    loop {
        let page = view.mail_allowances(cursor, PAGE).await?;
        for allowance in page.items {
            if let Some(record) = allowance_line(allowance, allowance_window) {
                sink.take(record).await?;
            }
        }
        sink.page_done().await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut cursor = None;
    loop {
        let page = view.jobs(cursor, PAGE).await?;
        for record in page.items {
            sink.take(job_line(record)).await?;
        }
        sink.page_done().await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut cursor = None;
    loop {
        let page = view.endpoint_states(cursor, PAGE).await?;
        for (endpoint, state) in page.items {
            if let Some(record) = endpoint_line(endpoint, state) {
                sink.take(record).await?;
            }
        }
        sink.page_done().await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(())
}

/// Writes records as compressed lines and hands on what the compressor produced after
/// each page, waiting while the reader is behind.
struct Writer<'a> {
    lines: Lines,
    chunks: Chunks,
    sender: mpsc::Sender<Result<Vec<u8>, BackupError>>,
    progress: &'a dyn Progress,
    /// Records per kind since the last page.
    page: Vec<(&'static str, u64)>,
}

impl Writer<'_> {
    async fn pass_on(&self, chunk: Vec<u8>) -> Result<(), BackupError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.sender
            .send(Ok(chunk))
            .await
            .map_err(|_| BackupError::Write("the reader of the dump went away".into()))
    }
}

#[async_trait::async_trait]
impl RecordSink for Writer<'_> {
    async fn take(&mut self, record: Record) -> Result<(), BackupError> {
        self.lines.write(&record)?;
        match self.page.last_mut() {
            Some((kind, count)) if *kind == record.kind() => *count += 1,
            _ => self.page.push((record.kind(), 1)),
        }
        Ok(())
    }

    async fn page_done(&mut self) -> Result<(), BackupError> {
        for (kind, count) in self.page.drain(..) {
            self.progress.advance(kind, count);
        }
        let chunk = self.chunks.take();
        self.pass_on(chunk).await
    }
}

async fn write_dump(
    view: &dyn BackupView,
    options: &DumpOptions,
    progress: &dyn Progress,
    sender: mpsc::Sender<Result<Vec<u8>, BackupError>>,
) -> Result<(), BackupError> {
    let chunks = Chunks::default();
    let sealed = options.recipients.wrap(chunks.clone())?;
    let compressor = zstd::stream::write::Encoder::new(sealed, LEVEL)
        .map_err(|e| BackupError::Write(e.to_string()))?;
    let mut writer = Writer {
        lines: LineWriter::new(compressor),
        chunks,
        sender,
        progress,
        page: Vec::new(),
    };
    writer.lines.write(&Record::Header(Header {
        format: FORMAT.into(),
        version: VERSION,
        created_at: options.created_at,
        source: view.kind(),
        consistency: view.consistency(),
        index_key_fingerprint: options.index_fingerprint.clone(),
        optin_version: env!("CARGO_PKG_VERSION").into(),
    }))?;
    each_record(view, options.allowance_window, true, &mut writer).await?;
    let (compressor, _) = writer.lines.finish()?;
    let sealed = compressor
        .finish()
        .map_err(|e| BackupError::Write(e.to_string()))?;
    sealed.finish()?;
    let last = writer.chunks.take();
    let sender = writer.sender;
    if !last.is_empty() {
        sender
            .send(Ok(last))
            .await
            .map_err(|_| BackupError::Write("the reader of the dump went away".into()))?;
    }
    Ok(())
}

/// A contact's line: each event with the hash its successor links to. A contact that
/// cannot be read stops the dump: a backup that leaves out a contact would look whole.
pub(super) fn contact_line(read: ContactRead) -> Result<Record, BackupError> {
    let ContactRecord { contact, events } = read.map_err(|unreadable| {
        BackupError::Contact(format!(
            "contact {} cannot be read ({}); `optin verify` lists every such contact",
            unreadable.id, unreadable.reason
        ))
    })?;
    let events = events
        .into_iter()
        .map(|event| HashedEvent {
            hash: event.hash(),
            event,
        })
        .collect();
    Ok(Record::Contact(ContactLine { contact, events }))
}

/// The allowance with its expiry: its newest mail plus the window. One with no mail
/// left holds nothing.
pub(super) fn allowance_line(allowance: MailAllowance, window: Duration) -> Option<Record> {
    let newest = allowance.taken_at.iter().max().copied()?;
    Some(Record::MailAllowance(MailAllowanceLine {
        contact_id: allowance.contact_id,
        taken_at: allowance.taken_at,
        expires_at: newest + window,
    }))
}

pub(super) fn job_line(record: JobRecord) -> Record {
    let (state, due_at) = match record.state {
        JobState::Queued { due } => (JobStanding::Queued, Some(due)),
        JobState::Dead => (JobStanding::Dead, None),
    };
    Record::Job(JobLine {
        state,
        due_at,
        job: record.job,
    })
}

/// An endpoint's state; the default state (nothing recorded) is no record.
pub(super) fn endpoint_line(endpoint: String, state: EndpointState) -> Option<Record> {
    (state != EndpointState::default())
        .then_some(Record::EndpointState(EndpointStateLine { endpoint, state }))
}
