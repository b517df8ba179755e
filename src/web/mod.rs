//! Everything actix: the shared [`AppState`], the route table ([`configure`]), request
//! extractors, problem answers, middleware, typed pages and one route file per resource.
//! Routes parse the request, call one service operation and map its result; they hold
//! no business rules and never reach the store.

pub mod admin;
pub mod compat;
pub mod extract;
pub mod middleware;
pub mod page_policy;
pub mod pages;
pub mod problem;
pub mod routes;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::{web, HttpRequest};
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::ApiKeys;
use crate::config::Config;
use crate::domain::RequestMeta;
use crate::service::Subscriptions;
use crate::tokens::TokenSigner;
use crate::web::pages::Pages;
use routes::{
    backup, confirm, contacts, eligibility, feedback, funnel, home, imports, jwks, manage, ops,
    outbox, page, preferences, processing_record, quarantine, receipts, received, renew, rights,
    signup, signup_challenge, subscription_types, unsubscribe, webhooks,
};

/// Everything handlers need, shared by all workers.
pub struct AppState {
    /// The service: the same one the outbox worker uses.
    pub subscriptions: Arc<Subscriptions>,
    /// Also registered on its own, for the deadline middleware.
    pub pages: web::Data<Pages>,
    pub metrics: Option<PrometheusHandle>,
    /// What the routes need of the configuration, taken once at start.
    pub site: Site,
}

/// The settings the doors themselves use; every rule's settings stay with the service.
#[derive(Clone)]
pub struct Site {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Clients that may read `GET /metrics` without a key.
    pub metrics_allowed_ips: Vec<IpNet>,
    /// Record IP address and user agent as evidence (`privacy.record_ip`).
    pub record_ip: bool,
    /// Where `POST /signup` sends the browser afterwards.
    pub thank_you_url: Option<String>,
    /// Where an expired link's page sends people to sign up again.
    pub signup_page_url: Option<String>,
    /// Origins whose pages may frame the hosted form.
    pub embed_allowed_origins: Vec<String>,
    /// Origins whose pages may post to `POST /v1/signups` from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// The largest body read.
    pub body_limit_bytes: usize,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
    /// The console's sign-in: the keys it accepts, how its cookie is signed, how long it
    /// lasts and whether it needs HTTPS.
    pub api_keys: ApiKeys,
    pub signer: TokenSigner,
    pub session_minutes: u32,
    pub secure_cookies: bool,
    /// Consent receipts are issued (`consent.receipt_keys`): the preference center
    /// offers their download.
    pub receipts: bool,
}

impl Site {
    pub fn from_config(config: &Config) -> Self {
        let server = &config.settings.server;
        Self {
            trusted_proxies: config.trusted_proxies.clone(),
            metrics_allowed_ips: config.metrics_allowed_ips.clone(),
            record_ip: config.settings.privacy.record_ip,
            thank_you_url: server.thank_you_url.clone(),
            signup_page_url: server.signup_page_url.clone(),
            embed_allowed_origins: server.embed_allowed_origins.0.clone(),
            cors_allowed_origins: server.cors_allowed_origins.0.clone(),
            body_limit_bytes: server.body_limit_bytes,
            request_timeout_secs: server.request_timeout_secs,
            api_keys: config.api_keys.clone(),
            signer: config.signer.clone(),
            session_minutes: config.settings.admin.session_minutes,
            secure_cookies: config.public_url.scheme() == "https",
            receipts: config.receipts.is_some(),
        }
    }
}

impl AppState {
    /// The client's address: the socket peer, or the forwarded client behind a trusted
    /// proxy.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        extract::request_meta::client_ip(req, &self.site.trusted_proxies)
    }

    /// What events record about a request; `actor` is the key's name, where one was used.
    pub fn meta(&self, req: &HttpRequest, actor: Option<&str>) -> RequestMeta {
        extract::request_meta::request_meta(req, &self.site, actor)
    }

    /// The language the catalog falls back to.
    pub fn default_locale(&self) -> &str {
        self.subscriptions.catalog().default_locale()
    }
}

/// Pages never need more than this; a strict CSP keeps injected markup inert.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Largest batch of addresses one eligibility request may carry.
pub const MAX_BATCH: usize = 10_000;

/// Browsers on the allowed origins may post signups from their own pages (and fetch the
/// signup challenge, with `GET`). With no origins configured no CORS headers are sent
/// and browsers keep to the same origin.
fn signup_cors(
    origins: &[String],
    method: &'static str,
) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let cors = origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin.trim_end_matches('/'))
        })
        .allowed_methods([method])
        .allowed_header(actix_web::http::header::CONTENT_TYPE)
        .max_age(3600);
    actix_web::middleware::Condition::new(!origins.is_empty(), cors)
}

pub fn configure(cfg: &mut web::ServiceConfig, body_limit: usize, cors_origins: &[String]) {
    let json = web::JsonConfig::default()
        .limit(body_limit)
        .error_handler(problem::json_error);
    // A full batch of 10,000 long addresses is larger than the default body limit.
    let batch_json = web::JsonConfig::default()
        .limit(body_limit.max(MAX_BATCH * 300))
        .error_handler(problem::json_error);
    cfg.app_data(json)
        .app_data(web::QueryConfig::default().error_handler(problem::query_error))
        .app_data(web::PayloadConfig::new(body_limit))
        // First: resources are tried in the order registered, and the senders' check is
        // the hottest path; every `{token}` pattern before it costs a regex match.
        .service(
            personal_resource("/v1/eligibility", "GET, POST")
                .app_data(batch_json)
                .route(web::get().to(eligibility::check_eligibility))
                .route(web::post().to(eligibility::check_eligibility_batch)),
        )
        .service(
            resource("/v1/signups", "POST")
                .wrap(signup_cors(cors_origins, "POST"))
                .route(web::post().to(signup::subscribe_json)),
        )
        .service(
            resource("/v1/signup-challenge", "GET")
                .wrap(signup_cors(cors_origins, "GET"))
                .route(web::get().to(signup_challenge::issue_challenge)),
        )
        .service(
            resource("/signup", "GET, POST")
                .route(web::get().to(signup::show_signup_form))
                .route(web::post().to(signup::subscribe_form)),
        )
        .service(
            resource("/signup/received", "GET, POST")
                .route(web::get().to(received::signup_received))
                .route(web::post().to(received::confirm_by_code)),
        )
        .service(
            resource("/confirm/{token}", "GET, POST")
                .route(web::get().to(confirm::show_confirm_page))
                .route(web::post().to(confirm::confirm)),
        )
        .service(
            resource("/unsubscribe/{token}", "GET, POST")
                .route(web::get().to(unsubscribe::show_unsubscribe_page))
                .route(web::post().to(unsubscribe::unsubscribe)),
        )
        .service(
            resource("/unsubscribe/{token}/resubscribe", "POST")
                .route(web::post().to(unsubscribe::resubscribe)),
        )
        .service(
            resource("/manage/{token}", "GET, POST")
                .route(web::get().to(manage::show_manage_page))
                .route(web::post().to(manage::mail_preferences_link)),
        )
        .service(
            resource("/preferences/{token}", "GET, POST")
                .route(web::get().to(preferences::show_preferences))
                .route(web::post().to(preferences::save_preferences)),
        )
        .service(
            resource("/preferences/{token}/export", "POST")
                .route(web::post().to(preferences::export_own_data)),
        )
        .service(
            resource("/preferences/{token}/erase", "GET, POST")
                .route(web::get().to(preferences::ask_to_erase))
                .route(web::post().to(preferences::erase_own_data)),
        )
        .service(
            resource("/preferences/{token}/fresh-link", "POST")
                .route(web::post().to(preferences::mail_fresh_link)),
        )
        .service(
            resource("/preferences/{token}/receipts", "GET")
                .route(web::get().to(receipts::download_own_receipts)),
        )
        .service(
            resource("/renew/{token}", "GET, POST")
                .route(web::get().to(renew::show_renewal_page))
                .route(web::post().to(renew::renew)),
        )
        .service(
            resource("/v1/subscription-types", "GET")
                .route(web::get().to(subscription_types::list_subscription_types)),
        )
        .service(
            personal_resource("/v1/contacts/{email}", "GET, DELETE")
                .route(web::get().to(contacts::show_contact))
                .route(web::delete().to(rights::erase)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/subscriptions/{type}", "PUT")
                .route(web::put().to(rights::change_subscription)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/events", "GET")
                .route(web::get().to(rights::show_events)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/export", "GET")
                .route(web::get().to(rights::export)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/receipts", "GET")
                .route(web::get().to(receipts::show_receipts)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/rectification", "POST")
                .route(web::post().to(rights::rectify)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/restriction", "POST, DELETE")
                .route(web::post().to(rights::restrict))
                .route(web::delete().to(rights::lift_restriction)),
        )
        .service(
            personal_resource("/v1/contacts/{email}/signup-block", "DELETE")
                .route(web::delete().to(rights::lift_signup_block)),
        )
        .configure(feedback_routes)
        .configure(compat::configure)
        .configure(admin::routes)
        .service(personal_resource("/v1/imports", "POST").route(web::post().to(imports::import)))
        .service(resource("/v1/stats", "GET").route(web::get().to(contacts::show_stats)))
        .service(
            resource("/v1/stats/confirmations", "GET")
                .route(web::get().to(funnel::show_confirmation_funnel)),
        )
        .service(
            resource("/v1/processing-record", "GET")
                .route(web::get().to(processing_record::show_processing_record)),
        )
        .service(
            personal_resource("/v1/quarantine", "GET")
                .route(web::get().to(quarantine::list_quarantine)),
        )
        .service(
            personal_resource("/v1/quarantine/{id}/release", "POST")
                .route(web::post().to(quarantine::release)),
        )
        .service(
            personal_resource("/v1/quarantine/{id}", "DELETE")
                .route(web::delete().to(quarantine::drop_held)),
        )
        .service(
            personal_resource("/v1/outbox/dead", "GET")
                .route(web::get().to(outbox::list_dead_letters)),
        )
        .service(
            personal_resource("/v1/outbox/dead/{id}/retry", "POST")
                .route(web::post().to(outbox::retry_dead_letter)),
        )
        .service(
            personal_resource("/v1/backup", "GET").route(web::get().to(backup::download_backup)),
        )
        .service(
            personal_resource("/v1/tombstones", "GET")
                .route(web::get().to(backup::list_tombstones)),
        )
        .service(resource("/v1/webhooks", "GET").route(web::get().to(webhooks::list_webhooks)))
        .service(
            resource("/v1/webhooks/{id}/test", "POST").route(web::post().to(webhooks::send_test)),
        )
        .service(
            resource("/v1/webhooks/{id}/enable", "POST").route(web::post().to(webhooks::enable)),
        )
        .service(resource("/", "GET").route(web::get().to(home::show_home)))
        .service(resource("/favicon.ico", "GET").route(web::get().to(home::favicon)))
        .service(resource("/healthz", "GET").route(web::get().to(ops::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(ops::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(ops::metrics)))
        .service(resource("/openapi.yaml", "GET").route(web::get().to(ops::openapi)))
        .service(
            resource("/.well-known/jwks.json", "GET")
                .route(web::get().to(jwks::publish_receipt_keys)),
        );
}

/// Bounces and complaints: the provider inputs and the admin's clearing.
fn feedback_routes(cfg: &mut web::ServiceConfig) {
    type MakeRoute = fn() -> actix_web::Route;
    let inputs: [(&str, MakeRoute); 5] = [
        ("/v1/feedback", || web::post().to(feedback::receive_own)),
        ("/v1/feedback/ses", || web::post().to(feedback::receive_ses)),
        ("/v1/feedback/postmark", || {
            web::post().to(feedback::receive_postmark)
        }),
        ("/v1/feedback/sendgrid", || {
            web::post().to(feedback::receive_sendgrid)
        }),
        ("/v1/feedback/message", || {
            web::post().to(feedback::receive_message)
        }),
    ];
    for (path, route) in inputs {
        cfg.service(resource(path, "POST").route(route()));
    }
    cfg.service(
        personal_resource("/v1/contacts/{email}/unreachable", "DELETE")
            .route(web::delete().to(feedback::clear_unreachable)),
    );
}

/// A resource whose answers carry personal data: never to be kept by a cache.
fn personal_resource(
    path: &str,
    allow: &'static str,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    resource(path, allow).wrap(middleware::no_store::no_store())
}

/// A resource that answers other methods with 405, the `Allow` header and our error shapes.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(
        move |state: web::Data<AppState>, req: HttpRequest| method_not_allowed(state, req, allow),
    ))
}

async fn method_not_allowed(
    state: web::Data<AppState>,
    req: HttpRequest,
    allow: &'static str,
) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    let mut response = if req.path().starts_with("/v1/") {
        problem::Problem::method_not_allowed().error_response()
    } else {
        page::error_page(
            &state,
            &req,
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            pages::ErrorKey::BadRequest,
        )
    };
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}

/// Unknown paths: problem+json under `/v1`, a page elsewhere.
pub async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    if let Some(response) = compat::not_found(&req) {
        response
    } else if req.path().starts_with("/v1/") {
        problem::Problem::not_found().error_response()
    } else {
        page::error_page(
            &state,
            &req,
            actix_web::http::StatusCode::NOT_FOUND,
            pages::ErrorKey::NotFound,
        )
    }
}
