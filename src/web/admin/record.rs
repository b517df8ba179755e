//! The record of processing (GDPR Art. 30) in the console: the same document
//! `GET /v1/processing-record?format=markdown` gives, shown, and downloadable.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::request::Console;
use super::ConsoleError;
use crate::web::pages::AdminRecord;
use crate::web::routes::processing_record::{markdown_download, RecordFormat};

/// `GET /admin/processing-record`, and with `?format=markdown` the document itself.
pub async fn show_record(console: Console) -> HttpResponse {
    let result = async {
        let asked = url::form_urlencoded::parse(console.req.query_string().as_bytes())
            .find(|(key, _)| key == "format")
            .map(|(_, value)| value.into_owned());
        let format =
            RecordFormat::from_query(asked.as_deref()).map_err(|_| ConsoleError::BadRequest)?;
        let record = console.state.subscriptions.processing_record().await?;
        if format == RecordFormat::Markdown {
            return Ok(markdown_download(&record));
        }
        let data = AdminRecord {
            nav: console.nav(),
            markdown: record.to_markdown(),
            download_url: "/admin/processing-record?format=markdown".to_string(),
        };
        Ok(console.render(StatusCode::OK, &data))
    }
    .await;
    console.respond(result)
}
