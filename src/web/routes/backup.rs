//! `GET /v1/backup`: the whole store as a dump, streamed (scope `backup`); `GET
//! /v1/tombstones`: every tombstone, for a restore of an older dump to apply the
//! erasures made since (scope `admin`).

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::auth::Scope;
use crate::backup::BackupError;
use crate::web::extract::api_key::{authorize, AdminKey};
use crate::web::problem::Problem;
use crate::web::AppState;

pub async fn download_backup(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    authorize(&req, Scope::Backup, false)?;
    let dump = state.subscriptions.dump().await.map_err(problem)?;
    let (content_type, extension) = if dump.encrypted {
        ("application/octet-stream", "optin.zst.age")
    } else {
        ("application/zstd", "optin.zst")
    };
    let name = format!(
        "optin-{}.{extension}",
        state.subscriptions.now().format("%Y%m%dT%H%M%SZ")
    );
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name)],
        })
        .streaming(body(dump.chunks)))
}

#[derive(serde::Deserialize)]
pub struct TombstonesQuery {
    since: Option<String>,
}

pub async fn list_tombstones(
    state: web::Data<AppState>,
    _caller: AdminKey,
    query: web::Query<TombstonesQuery>,
) -> Result<HttpResponse, Problem> {
    let since = query
        .since
        .as_deref()
        .map(|since| {
            DateTime::parse_from_rfc3339(since)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| Problem::invalid_field("since", "an RFC 3339 time is expected"))
        })
        .transpose()?;
    let chunks = state
        .subscriptions
        .tombstones(since)
        .await
        .map_err(problem)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body(chunks)))
}

/// The chunks as a body. An error after the first bytes can only end the body early:
/// a dump cut short has no trailer, and every reader refuses it.
fn body(
    chunks: mpsc::Receiver<Result<Vec<u8>, BackupError>>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    })
    .map(|chunk| {
        chunk.map(Bytes::from).map_err(|error| {
            tracing::error!(%error, "a streamed backup failed; the answer ends without its trailer");
            actix_web::error::ErrorInternalServerError("the backup failed")
        })
    })
}

fn problem(error: BackupError) -> Problem {
    match error {
        BackupError::Store(error) => error.into(),
        other => {
            tracing::error!(error = %other, "a backup could not start");
            Problem::internal()
        }
    }
}
