//! `GET /v1/processing-record`: the record of processing activities (GDPR Art. 30) as
//! far as optin can state it, as JSON or, with `?format=markdown`, as a document.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

#[derive(Deserialize)]
pub struct RecordQuery {
    format: Option<String>,
}

pub async fn show_processing_record(
    state: web::Data<AppState>,
    _caller: AdminKey,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, Problem> {
    let markdown = match query.format.as_deref() {
        None | Some("json") => false,
        Some("markdown") => true,
        Some(_) => {
            return Err(Problem::invalid_field(
                "format",
                "format is json (the default) or markdown",
            ))
        }
    };
    let record = state.subscriptions.processing_record().await?;
    Ok(if markdown {
        HttpResponse::Ok()
            .content_type("text/markdown; charset=utf-8")
            .body(record.to_markdown())
    } else {
        HttpResponse::Ok().json(record)
    })
}
