//! The record of processing (GDPR Art. 30) in the console: the same document
//! `GET /v1/processing-record?format=markdown` gives, shown, and downloadable.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::request::Console;
use crate::web::pages::AdminRecord;

/// `GET /admin/processing-record`, and with `?format=markdown` the document itself.
pub async fn show_record(console: Console) -> HttpResponse {
    let result = async {
        let record = console.state.subscriptions.processing_record().await?;
        let markdown = record.to_markdown();
        let download = url::form_urlencoded::parse(console.req.query_string().as_bytes())
            .any(|(key, value)| key == "format" && value == "markdown");
        if download {
            return Ok(HttpResponse::Ok()
                .content_type("text/markdown; charset=utf-8")
                .insert_header((
                    "Content-Disposition",
                    "attachment; filename=\"processing-record.md\"",
                ))
                .insert_header(("Cache-Control", "no-store"))
                .body(markdown));
        }
        let data = AdminRecord {
            nav: console.nav(),
            markdown,
            download_url: "/admin/processing-record?format=markdown".to_string(),
        };
        Ok(console.render(StatusCode::OK, &data))
    }
    .await;
    console.respond(result)
}
