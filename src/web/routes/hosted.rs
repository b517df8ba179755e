//! The hosted form and the pages that follow a post to it: the form again (with a message
//! beside the field, or "Did you mean …?"), "check your inbox" with its code field, and
//! the page of a confirmed code. With `server.embed_allowed_origins` each may be framed
//! by those origins, and then tells its parent its height (`optin:resize`, by a script
//! its own nonce allows). Also the binding cookie, `optin_bind`, that every answer of
//! `POST /signup` carries, and that the confirmation page looks for.

use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::page;
use crate::service::TypeView;
use crate::tokens::SignupRef;
use crate::web::admin::session::cookie_value;
use crate::web::page_policy::{new_nonce, origin_of, PagePolicy};
use crate::web::pages::{Embed, FormErrors, Page, Signup};
use crate::web::{AppState, Site};

/// Holds the signed reference to what a signup request created (see [`SignupRef`]).
pub const BINDING_COOKIE: &str = "optin_bind";
/// The cookie is only ever read on confirmation pages.
const BINDING_PATH: &str = "/confirm";

/// The policy of one answer of the hosted form's family, and what its template needs
/// to tell a parent frame its height.
pub struct HostedPage {
    policy: PagePolicy,
    embed: Option<Embed>,
}

impl HostedPage {
    /// A page that follows the form: frameable by the allowed origins, if any.
    pub fn follow_up(site: &Site) -> Self {
        let origins = &site.embed_allowed_origins;
        let mut policy = PagePolicy {
            framed_by: origins.clone(),
            ..PagePolicy::default()
        };
        let embed = if origins.is_empty() {
            None
        } else {
            new_nonce().map(|nonce| {
                policy = std::mem::take(&mut policy).with_nonce(&nonce);
                Embed {
                    origins: origins
                        .iter()
                        .map(|o| o.trim_end_matches('/'))
                        .collect::<Vec<_>>()
                        .join(" "),
                    nonce,
                }
            })
        };
        Self { policy, embed }
    }

    /// The form itself: as [`Self::follow_up`], and allowed to post to the thank-you
    /// URL's origin, since the redirect after its post goes there.
    pub fn form(site: &Site) -> Self {
        let mut page = Self::follow_up(site);
        if let Some(origin) = site.thank_you_url.as_deref().and_then(origin_of) {
            page.policy.form_targets.push(origin);
        }
        page
    }

    pub fn embed(&self) -> Option<Embed> {
        self.embed.clone()
    }

    pub fn render<P: Page>(
        &self,
        state: &AppState,
        req: &HttpRequest,
        status: StatusCode,
        locale: Option<&str>,
        data: &P,
    ) -> HttpResponse {
        let mut response = page::render(state, req, status, locale, data);
        self.policy.apply(&mut response);
        response
    }
}

/// Lets the allowed origins frame an answer of the form's post that has no page policy of
/// its own (the redirect after it, an error page), so that a frame shows it rather than
/// refusing it.
pub fn let_frame(site: &Site, response: &mut HttpResponse) {
    let framed = response
        .extensions()
        .get::<crate::web::middleware::frame_options::Frameable>()
        .is_some();
    if !framed && !site.embed_allowed_origins.is_empty() {
        PagePolicy {
            framed_by: site.embed_allowed_origins.clone(),
            ..PagePolicy::default()
        }
        .apply(response);
    }
}

/// What the form shows again: as it was posted.
#[derive(Clone, Debug, Default)]
pub struct FormValues {
    pub email: String,
    pub ticked: Vec<String>,
    /// The form's `?types=` (comma-separated; empty: every type).
    pub shown_types: String,
    pub locale: Option<String>,
    pub form_id: Option<String>,
    pub page_url: Option<String>,
}

impl FormValues {
    /// The type ids the form shows.
    pub fn shown_ids(&self) -> Vec<String> {
        self.shown_types
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// What the form says beside its fields.
#[derive(Clone, Debug, Default)]
pub struct FormAnswer {
    pub errors: FormErrors,
    pub suggestions: Vec<String>,
}

/// Renders the hosted form: empty, or again with what was posted and why it was not
/// taken (422), or with "Did you mean …?" (200).
pub fn render_form(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    values: &FormValues,
    answer: FormAnswer,
) -> HttpResponse {
    let locale = page::request_locale(state, req, values.locale.as_deref());
    let mut ids = values.shown_ids();
    let mut form = match state.subscriptions.signup_form(&ids, &locale) {
        Ok(form) => form,
        Err(error) => {
            tracing::debug!(%error, "signup form asked for unknown types");
            if status == StatusCode::OK && answer.suggestions.is_empty() {
                return page::error_page(
                    state,
                    req,
                    StatusCode::BAD_REQUEST,
                    crate::web::pages::ErrorKey::BadRequest,
                );
            }
            // The form again after a post naming types it never showed: show them all.
            ids.clear();
            match state.subscriptions.signup_form(&ids, &locale) {
                Ok(form) => form,
                Err(_) => {
                    return page::error_page(
                        state,
                        req,
                        StatusCode::BAD_REQUEST,
                        crate::web::pages::ErrorKey::BadRequest,
                    )
                }
            }
        }
    };
    tick(&mut form.types, values);
    let mut hosted = HostedPage::form(&state.site);
    if form.proof_of_work {
        hosted.policy = hosted.policy.with_solver();
    }
    let data = Signup {
        action_url: "signup".to_string(),
        locale: locale.clone(),
        types: &form.types,
        email: values.email.clone(),
        shown_types: ids.join(","),
        form_id: values.form_id.clone(),
        page_url: values.page_url.clone(),
        errors: answer.errors,
        suggestions: answer.suggestions,
        target_top: state.site.thank_you_url.is_some(),
        embed: hosted.embed(),
        challenge_url: form.proof_of_work.then_some("v1/signup-challenge"),
        rendered_at: form.rendered_at,
    };
    hosted.render(state, req, status, Some(&locale), &data)
}

/// Ticks the boxes that were ticked; a form of one type has it ticked from the start.
fn tick(types: &mut [TypeView], values: &FormValues) {
    let only_one = types.len() == 1 && values.email.is_empty() && values.ticked.is_empty();
    for view in types.iter_mut() {
        view.opted_in = only_one || values.ticked.contains(&view.id);
    }
}

/// The binding a request's cookie holds, when its signature verifies and it has not
/// expired.
pub fn binding(state: &AppState, req: &HttpRequest) -> Option<SignupRef> {
    let value = cookie_value(req, BINDING_COOKIE)?;
    SignupRef::verify(&state.site.signer, &value, state.subscriptions.now())
}

/// Sets the binding cookie: HttpOnly, `SameSite=Lax` (so that it is sent when the link
/// in the mail is opened from a mail client or a webmail), `Secure` with an https public
/// URL, and lasting as long as the confirmation.
pub fn set_binding(
    response: &mut HttpResponse,
    site: &Site,
    reference: &SignupRef,
    now: DateTime<Utc>,
) {
    let value = reference.sign(&site.signer);
    let max_age = (reference.expires_at - now).num_seconds().max(0);
    let secure = if site.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{BINDING_COOKIE}={value}; Path={BINDING_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    );
    if let Ok(header) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, header);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Purpose;
    use crate::domain::Status;

    fn view(id: &str) -> TypeView {
        TypeView {
            id: id.to_string(),
            name: id.to_string(),
            description: String::new(),
            purpose: Purpose::Marketing,
            status: Status::NotSubscribed,
            opted_in: false,
            notice_version: "1".to_string(),
            notice_text: String::new(),
        }
    }

    #[test]
    fn a_single_type_starts_ticked_and_the_form_again_keeps_what_was_ticked() {
        let mut one = [view("news")];
        tick(&mut one, &FormValues::default());
        assert!(one[0].opted_in, "one type, pre-ticked");
        let mut posted_without = [view("news")];
        let values = FormValues {
            email: "ann@example.com".into(),
            ..FormValues::default()
        };
        tick(&mut posted_without, &values);
        assert!(
            !posted_without[0].opted_in,
            "unticked by the person stays unticked"
        );
        let mut two = [view("news"), view("offers")];
        tick(&mut two, &FormValues::default());
        assert!(!two[0].opted_in && !two[1].opted_in);
        let values = FormValues {
            ticked: vec!["offers".into()],
            ..FormValues::default()
        };
        tick(&mut two, &values);
        assert!(!two[0].opted_in && two[1].opted_in);
    }

    #[test]
    fn the_types_shown_are_read_from_the_comma_list() {
        let values = FormValues {
            shown_types: " news, ,offers".into(),
            ..FormValues::default()
        };
        assert_eq!(values.shown_ids(), ["news", "offers"]);
    }
}
