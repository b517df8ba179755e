//! The signups the firewall held, with release and drop: the same service operations as
//! `/v1/quarantine`, with the signed-in key as `actor`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::csrf::TokenOnly;
use super::request::{Console, ConsolePost};
use super::{message_from_query, see_other, when, ConsoleError};
use crate::domain::{ManualChangeError, OptInRefused, QuarantineId, Source};
use crate::service::{Quarantined, RequestError, MAX_QUARANTINE_PAGE};
use crate::web::pages::{AdminQuarantine, HeldRow};

const DONE: [&str; 2] = ["admin_done_released", "admin_done_dropped"];

pub async fn show_quarantine(console: Console) -> HttpResponse {
    let message = message_from_query(&console.req, &DONE);
    let result = quarantine_page(&console, message, false, StatusCode::OK).await;
    console.respond(result)
}

async fn quarantine_page(
    console: &Console,
    message: Option<&'static str>,
    is_error: bool,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let subscriptions = &console.state.subscriptions;
    let catalog = subscriptions.catalog();
    let locale = console.locale();
    let name = |id: &str| {
        catalog.get(id).map_or_else(
            || id.to_string(),
            |t| t.name_in(&locale, catalog.default_locale()),
        )
    };
    let held = subscriptions
        .quarantine(MAX_QUARANTINE_PAGE)
        .await?
        .into_iter()
        .map(|held| row(held, name))
        .collect();
    let data = AdminQuarantine {
        nav: console.nav(),
        held,
        message,
        is_error,
    };
    Ok(console.render(status, &data))
}

fn row(held: Quarantined, name: impl Fn(&str) -> String) -> HeldRow {
    HeldRow {
        types: held
            .types
            .iter()
            .map(|id| name(id))
            .collect::<Vec<_>>()
            .join(", "),
        reason: format!("admin_reason_{}", held.reason.as_str()),
        source: match held.source {
            Source::SignupApi => "admin_source_signup_api",
            _ => "admin_source_signup_form",
        }
        .to_string(),
        at: when(held.at),
        expires_at: when(held.expires_at),
        id: held.id,
        email: held.email,
    }
}

pub async fn release(post: ConsolePost<TokenOnly>, id: web::Path<String>) -> HttpResponse {
    let result = async {
        let Ok(id) = id.parse::<QuarantineId>() else {
            return Err(ConsoleError::NotFound);
        };
        let subscriptions = &post.state.subscriptions;
        let refused = match subscriptions.release_quarantined(&id, &post.meta()).await {
            Ok(()) => return Ok(see_other("/admin/quarantine?done=released".into())),
            Err(RequestError::Store(error)) => return Err(ConsoleError::Store(error)),
            Err(RequestError::Refused(ManualChangeError::OptIn(OptInRefused::Blocked))) => {
                "admin_err_signup_blocked"
            }
            Err(RequestError::Refused(ManualChangeError::OptIn(
                OptInRefused::MailLimitReached,
            ))) => "admin_err_mail_limit",
            Err(_) => "admin_err_gone",
        };
        quarantine_page(&post, Some(refused), true, StatusCode::CONFLICT).await
    }
    .await;
    post.respond(result)
}

pub async fn drop_held(post: ConsolePost<TokenOnly>, id: web::Path<String>) -> HttpResponse {
    let result = async {
        let Ok(id) = id.parse::<QuarantineId>() else {
            return Err(ConsoleError::NotFound);
        };
        match post.state.subscriptions.drop_quarantined(&id).await {
            Ok(()) => Ok(see_other("/admin/quarantine?done=dropped".into())),
            Err(RequestError::Store(error)) => Err(ConsoleError::Store(error)),
            Err(_) => {
                quarantine_page(&post, Some("admin_err_gone"), true, StatusCode::CONFLICT).await
            }
        }
    }
    .await;
    post.respond(result)
}
