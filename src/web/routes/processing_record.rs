//! `GET /v1/processing-record`: the record of processing activities (GDPR Art. 30) as
//! far as optin can state it, as JSON or, with `?format=markdown`, as a document. The
//! console's record page answers its download here too.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::service::processing_record::ProcessingRecord;
use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

#[derive(Deserialize)]
pub struct RecordQuery {
    format: Option<String>,
}

/// The two shapes the record is given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::web) enum RecordFormat {
    Json,
    Markdown,
}

impl RecordFormat {
    /// `?format=`: `json` (also when absent) or `markdown`, else refused naming `format`.
    pub(in crate::web) fn from_query(format: Option<&str>) -> Result<Self, Problem> {
        match format {
            None | Some("json") => Ok(Self::Json),
            Some("markdown") => Ok(Self::Markdown),
            Some(_) => Err(Problem::invalid_field(
                "format",
                "format is json (the default) or markdown",
            )),
        }
    }
}

/// The record as a Markdown document, to keep as a file.
pub(in crate::web) fn markdown_download(record: &ProcessingRecord) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"processing-record.md\"",
        ))
        .body(record.to_markdown())
}

pub async fn show_processing_record(
    state: web::Data<AppState>,
    _caller: AdminKey,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, Problem> {
    let format = RecordFormat::from_query(query.format.as_deref())?;
    let record = state.subscriptions.processing_record().await?;
    Ok(match format {
        RecordFormat::Json => HttpResponse::Ok().json(record),
        RecordFormat::Markdown => markdown_download(&record),
    })
}
