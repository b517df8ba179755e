//! Consent receipts: `GET /v1/contacts/{email}/receipts` (admin) and the preference
//! center's download, `GET /preferences/{token}/receipts`. Both give every receipt of
//! the person as the compact JWS they were given, with what it states.

use actix_web::HttpResponse;
use serde_json::json;

use crate::web::extract::contact_request::ContactRequest;
use crate::web::extract::link_page::LinkPage;
use crate::web::problem::Problem;

pub async fn show_receipts(contact: ContactRequest) -> Result<HttpResponse, Problem> {
    let receipts = contact.state.subscriptions.receipts(&contact.email).await?;
    Ok(HttpResponse::Ok().json(json!({ "receipts": receipts })))
}

/// A download: the page's link reached the person by mail, and a GET changes nothing.
pub async fn download_own_receipts(link: LinkPage) -> HttpResponse {
    let receipts = link.state.subscriptions.own_receipts(&link.token).await;
    link.answer(receipts, |receipts| {
        HttpResponse::Ok()
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"consent-receipts.json\"",
            ))
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({ "receipts": receipts }))
    })
}
