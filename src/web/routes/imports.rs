//! `POST /v1/imports`: NDJSON, one manual change per line, streamed. Each line is applied
//! as it arrives and answered with its own result line, so 100,000 lines never sit in
//! memory and the caller sees progress. Re-running an import is harmless: a line whose
//! status is already set answers `unchanged`.

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::io::StreamReader;

use crate::domain::{RequestMeta, Source};
use crate::service::{RequestError, StoreError};
use crate::web::extract::api_key::AdminKey;
use crate::web::extract::json_body::from_object;
use crate::web::extract::manual_change::{parse_email, ManualChangeBody};
use crate::web::problem::Problem;
use crate::web::AppState;

/// A longer line is refused on its own, without reading it whole.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The body framed into lines. `AnyDelimiterCodec` on `\n` is `LinesCodec` without its
/// UTF-8 check, so a line that is not UTF-8 is answered by the JSON parser as before.
type Lines =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, AnyDelimiterCodecError>>>>;

fn frame_lines(payload: web::Payload) -> Lines {
    let reader = StreamReader::new(payload.map_err(std::io::Error::other));
    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), MAX_LINE_BYTES);
    Box::pin(FramedRead::new(reader, codec))
}

#[derive(Deserialize)]
pub(super) struct ImportLine {
    email: Option<String>,
    subscription_type: Option<String>,
    #[serde(flatten)]
    change: ManualChangeBody,
}

struct Import {
    state: web::Data<AppState>,
    lines: Lines,
    meta: RequestMeta,
    /// Set after an overlong line: `FramedRead` then answers one `None` that does not
    /// mean the end of the body, and reading goes on with the next line.
    resume: bool,
    line: u64,
    succeeded: u64,
    failed: u64,
    finished: bool,
}

enum LineResult {
    Output(serde_json::Value),
    /// The store is down: stop, the caller re-runs the import later.
    Abort(serde_json::Value),
}

impl Import {
    async fn apply(&self, raw: &[u8]) -> Result<serde_json::Value, (Problem, bool)> {
        let value: serde_json::Value = serde_json::from_slice(raw)
            .map_err(|e| (Problem::malformed_body(e.to_string()), false))?;
        let line: ImportLine = from_object(value, "line").map_err(|p| (p, false))?;
        let email = line
            .email
            .ok_or_else(|| (Problem::invalid_field("email", "email is required"), false))?;
        let email = parse_email(&email, "email").map_err(|p| (p, false))?;
        let type_id = line.subscription_type.ok_or_else(|| {
            (
                Problem::invalid_field("subscription_type", "subscription_type is required"),
                false,
            )
        })?;
        let change = line
            .change
            .parse(self.state.subscriptions.catalog(), &type_id, Source::Import)
            .map_err(|p| (p, false))?;
        match self
            .state
            .subscriptions
            .change_manually(&email, &change, &self.meta)
            .await
        {
            Ok(result) => Ok(json!({ "outcome": result.outcome, "status": result.status })),
            Err(RequestError::Store(e @ StoreError::Unavailable(_))) => Err((e.into(), true)),
            Err(other) => Err((other.into(), false)),
        }
    }

    async fn process(&mut self, raw: Vec<u8>) -> Option<LineResult> {
        // Lines are numbered as the file has them, blank ones included, so that a result
        // points at the line an editor shows.
        self.line += 1;
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            return None;
        }
        let processed = self.succeeded + self.failed + 1;
        let result = match self.apply(trimmed).await {
            Ok(mut ok) => {
                self.succeeded += 1;
                ok["line"] = json!(self.line);
                ok["ok"] = json!(true);
                ok["processed"] = json!(processed);
                LineResult::Output(ok)
            }
            Err((problem, abort)) => {
                self.failed += 1;
                let line = json!({ "line": self.line, "ok": false, "processed": processed, "error": problem.detail.clone().unwrap_or_else(|| problem.title.to_string()), "field": problem.field });
                if abort {
                    LineResult::Abort(line)
                } else {
                    LineResult::Output(line)
                }
            }
        };
        metrics::counter!("optin_import_lines_total", "result" => if matches!(&result, LineResult::Output(v) if v["ok"] == json!(true)) { "ok" } else { "error" }).increment(1);
        Some(result)
    }

    fn summary(&mut self, aborted: bool) -> Bytes {
        self.finished = true;
        tracing::info!(
            lines = self.line,
            succeeded = self.succeeded,
            failed = self.failed,
            aborted,
            "import finished"
        );
        ndjson(
            &json!({ "done": true, "aborted": aborted, "processed": self.succeeded + self.failed, "succeeded": self.succeeded, "failed": self.failed }),
        )
    }

    /// The next output line: reads the next input line, applies it.
    async fn next_output(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        loop {
            match self.lines.next().await {
                Some(Ok(raw)) => match self.process(raw.to_vec()).await {
                    Some(LineResult::Output(value)) => return Some(ndjson(&value)),
                    Some(LineResult::Abort(value)) => {
                        let mut bytes = ndjson(&value).to_vec();
                        bytes.extend_from_slice(&self.summary(true));
                        return Some(Bytes::from(bytes));
                    }
                    None => continue,
                },
                Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
                    // The codec skips the rest of the line itself.
                    self.resume = true;
                    self.line += 1;
                    self.failed += 1;
                    return Some(ndjson(
                        &json!({ "line": self.line, "ok": false, "error": format!("the line is longer than {MAX_LINE_BYTES} bytes") }),
                    ));
                }
                Some(Err(AnyDelimiterCodecError::Io(error))) => {
                    tracing::warn!(%error, "import body could not be read");
                    return Some(self.summary(true));
                }
                None if std::mem::take(&mut self.resume) => continue,
                None => return Some(self.summary(false)),
            }
        }
    }
}

fn ndjson(value: &serde_json::Value) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub async fn import(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    payload: web::Payload,
) -> HttpResponse {
    let meta = state.meta(&req, Some(&caller.0.name));
    let import = Import {
        state,
        lines: frame_lines(payload),
        meta,
        resume: false,
        line: 0,
        succeeded: 0,
        failed: 0,
        finished: false,
    };
    let body = futures_util::stream::unfold(import, |mut import| async move {
        import
            .next_output()
            .await
            .map(|bytes| (Ok::<_, actix_web::Error>(bytes), import))
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body)
}
