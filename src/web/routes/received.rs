//! `/signup/received`: "check your inbox", after a signup through a form. With the
//! signed reference of what the signup created (`?ref=`, from the redirect) it asks for
//! the code from the mail; its POST confirms with it. The page and its answers may be
//! framed like the form (see [`super::hosted`]), and a refusal is the page again (422)
//! with one message whatever the reason, so that it tells nobody whether a signup was
//! waiting.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::hosted::{self, HostedPage};
use super::page;
use crate::service::{CodeAnswer, CodeRequest};
use crate::tokens::{SignupRef, CODE_DIGITS};
use crate::web::extract::client_ip::limit_network;
use crate::web::pages::{CodeForm, Confirmed, SignupReceived};
use crate::web::AppState;

#[derive(Deserialize)]
pub struct ReceivedQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
    locale: Option<String>,
}

#[derive(Deserialize)]
pub struct CodePost {
    #[serde(rename = "ref")]
    reference: Option<String>,
    code: Option<String>,
    locale: Option<String>,
}

pub async fn signup_received(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let query =
        serde_html_form::from_str::<ReceivedQuery>(req.query_string()).unwrap_or(ReceivedQuery {
            reference: None,
            locale: None,
        });
    let reference = query
        .reference
        .as_deref()
        .and_then(|value| verified(&state, value));
    show(
        &state,
        &req,
        StatusCode::OK,
        query.locale.as_deref(),
        reference,
        None,
    )
}

/// `POST /signup/received`: the code from the mail.
pub async fn confirm_by_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Ok(post) = serde_html_form::from_bytes::<CodePost>(&body) else {
        return show(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            None,
            Some("signup_code_refused"),
        );
    };
    let locale = post.locale.as_deref();
    let Some(reference) = post
        .reference
        .as_deref()
        .and_then(|value| verified(&state, value))
    else {
        return show(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            locale,
            None,
            Some("signup_code_refused"),
        );
    };
    let Some(code) = post.code.as_deref().and_then(six_digits) else {
        return show(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            locale,
            Some(reference),
            Some("signup_code_format"),
        );
    };
    let request = CodeRequest {
        reference: reference.clone(),
        code,
        meta: state.meta(&req, None),
        client_network: state.client_ip(&req).map(limit_network),
    };
    match state.subscriptions.confirm_by_code(&request).await {
        Ok(CodeAnswer::Confirmed(done)) => {
            let locale = page::request_locale(&state, &req, Some(done.confirmed.locale()));
            let hosted = HostedPage::follow_up(&state.site);
            let data = Confirmed {
                types: page::type_names(
                    &state,
                    &locale,
                    done.confirmed
                        .types()
                        .iter()
                        .map(crate::domain::SubscriptionTypeId::as_str),
                ),
                already: matches!(done.confirmed, crate::domain::Confirmed::Already { .. }),
                preferences_url: done.preferences_url,
                embed: hosted.embed(),
            };
            hosted.render(&state, &req, StatusCode::OK, Some(&locale), &data)
        }
        Ok(CodeAnswer::Refused) => show(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            locale,
            Some(reference),
            Some("signup_code_refused"),
        ),
        // Only "too many codes from this network" and a store failure come here.
        Err(error) => {
            let mut page = page::link_refused(&state, &req, error, locale);
            hosted::let_frame(&state.site, &mut page);
            page
        }
    }
}

fn verified(state: &AppState, value: &str) -> Option<SignupRef> {
    SignupRef::verify(&state.site.signer, value, state.subscriptions.now())
}

/// The code as typed, without the spaces and dashes people put in: six digits, or none.
fn six_digits(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn show(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    locale: Option<&str>,
    reference: Option<SignupRef>,
    error: Option<&'static str>,
) -> HttpResponse {
    let locale = page::request_locale(state, req, locale);
    let hosted = HostedPage::follow_up(&state.site);
    let data = SignupReceived {
        code_form: reference.map(|reference| CodeForm {
            action_url: "received".to_string(),
            reference: reference.sign(&state.site.signer),
            locale: locale.clone(),
        }),
        error,
        embed: hosted.embed(),
    };
    hosted.render(state, req, status, Some(&locale), &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_six_digits_whatever_the_spacing() {
        assert_eq!(six_digits(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(six_digits("123-456").as_deref(), Some("123456"));
        assert_eq!(six_digits("12345"), None);
        assert_eq!(six_digits("12345a"), None);
        assert_eq!(six_digits("1234567"), None);
        assert_eq!(six_digits("١٢٣٤٥٦"), None, "only ASCII digits");
    }
}
