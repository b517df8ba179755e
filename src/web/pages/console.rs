//! The data of the hosted signup form and of the admin console's pages, one type a page,
//! like [`super::data`]. Dates arrive formatted; statuses arrive as the string key that
//! names them (`admin_status_opted_in`), so that templates stay free of logic.

use serde::Serialize;

use super::data::{Embed, Page, Samples};
use crate::service::TypeView;

pub const SIGNUP: &str = "signup";
pub const ADMIN_LOGIN: &str = "admin_login";
pub const ADMIN_SEARCH: &str = "admin_search";
pub const ADMIN_CONTACT: &str = "admin_contact";
pub const ADMIN_ERASE: &str = "admin_erase";
pub const ADMIN_STATS: &str = "admin_stats";
pub const ADMIN_DELIVERIES: &str = "admin_deliveries";
pub const ADMIN_FUNNEL: &str = "admin_funnel";
pub const ADMIN_RECORD: &str = "admin_record";
pub const ADMIN_QUARANTINE: &str = "admin_quarantine";

/// optin's own signup form (`GET /signup`), and the same form again after a post it
/// could not take (a message beside the field, what was typed and ticked kept) or with
/// "Did you mean …?". Each type carries the notice shown beside its checkbox and that
/// notice's version, posted back as `notice_version.<type>`.
#[derive(Clone, Debug, Serialize)]
pub struct Signup<'a> {
    pub action_url: String,
    /// The page's locale, posted back so that the notice recorded is the one shown.
    pub locale: String,
    /// Each type's `opted_in` is whether its box is ticked.
    pub types: &'a [TypeView],
    /// The address as typed.
    pub email: String,
    /// The form's `?types=`, posted back so that the form again shows the same boxes.
    pub shown_types: String,
    /// Evidence an operator's form posted, kept for the post that follows.
    pub form_id: Option<String>,
    pub page_url: Option<String>,
    pub errors: FormErrors,
    /// "Did you mean …?": each spelling is a button that posts the form with it.
    pub suggestions: Vec<String>,
    /// With `server.thank_you_url` the form posts to the top window, which lands there.
    pub target_top: bool,
    pub embed: Option<Embed>,
    /// Where the solver fetches its challenge, when `signup.proof_of_work` is on.
    pub challenge_url: Option<&'static str>,
    /// The signed render time, when `signup.min_fill_seconds` is on.
    pub rendered_at: Option<String>,
}

/// The string keys of the messages beside the form's fields.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FormErrors {
    pub email: Option<&'static str>,
    pub types: Option<&'static str>,
    /// About the form as a whole (a changed notice, a field the page did not make).
    pub form: Option<&'static str>,
}

/// One source's funnel on the console's confirmations page.
#[derive(Clone, Debug, Serialize)]
pub struct FunnelSource {
    pub key: String,
    pub chart: Chart,
    pub requested: i64,
    pub mailed: i64,
    pub reminded: i64,
    pub same_browser: i64,
    pub button: i64,
    pub code: i64,
    pub confirmed: i64,
    pub expired: i64,
    pub cancelled: i64,
    /// Confirmed of requested, as a whole percentage (`67 %`); `None` with nothing
    /// requested.
    pub conversion: Option<String>,
    /// `42 s`; `None` with nothing confirmed.
    pub median: Option<String>,
}

/// The confirmation funnel of the signups of a window of days.
#[derive(Clone, Debug, Serialize)]
pub struct AdminFunnel {
    pub nav: ConsoleNav,
    pub since: String,
    pub until: String,
    pub sources: Vec<FunnelSource>,
    /// The string key of what was wrong with the window asked for.
    pub message: Option<&'static str>,
}

/// What every console page shows around its content: who is signed in, and the CSRF
/// token of the logout form.
#[derive(Clone, Debug, Serialize)]
pub struct ConsoleNav {
    pub key_name: String,
    pub csrf: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AdminLogin {
    /// The key was wrong, or not an `admin` key.
    pub refused: bool,
    pub rate_limited: bool,
}

/// The console's start page: the search by address.
#[derive(Clone, Debug, Serialize)]
pub struct AdminSearch {
    pub nav: ConsoleNav,
    /// The string key of a message above the form: no such contact, an address that is
    /// not valid, or an erasure just done.
    pub message: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContactType {
    pub id: String,
    pub name: String,
    pub status_key: String,
    pub since: Option<String>,
    pub lawful_basis: Option<String>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContactPending {
    pub types: String,
    pub created_at: String,
    pub expires_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContactUnreachable {
    pub since: String,
    pub reason: String,
    pub detail: Option<String>,
}

/// One event of the timeline, as stored (codes, not prose: they are the evidence).
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEvent {
    pub id: String,
    pub at: String,
    pub kind: String,
    /// The type's name, in the console's language.
    pub subscription_type: Option<String>,
    pub change: Option<String>,
    pub source: String,
    pub lawful_basis: Option<String>,
    pub explanation: Option<String>,
    pub consent_evidence: Option<String>,
    pub notice: Option<String>,
    pub actor: Option<String>,
    pub broken: bool,
}

/// A choice of a `<select>`: its value and the string key of its label.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AdminContact {
    pub nav: ConsoleNav,
    /// `/admin/contacts/{id}`: the actions post below it.
    pub contact_url: String,
    pub email: String,
    pub locale: String,
    pub created_at: String,
    pub types: Vec<ContactType>,
    pub pending: Vec<ContactPending>,
    pub restricted_since: Option<String>,
    pub signup_blocked_since: Option<String>,
    pub unreachable: Option<ContactUnreachable>,
    pub recent_soft_bounces: usize,
    pub events: Vec<TimelineEvent>,
    pub chain_valid: bool,
    /// The string key of the message about the last action.
    pub message: Option<&'static str>,
    pub message_is_error: bool,
    pub statuses: Vec<Choice>,
    pub lawful_bases: Vec<String>,
}

/// Asks before an erasure.
#[derive(Clone, Debug, Serialize)]
pub struct AdminErase {
    pub nav: ConsoleNav,
    pub contact_url: String,
    pub email: String,
}

/// One bar of a chart, placed by [`crate::web::admin::svg`].
#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub class: String,
    pub value: i64,
}

/// A labelled row of bars.
#[derive(Clone, Debug, Serialize)]
pub struct BarRow {
    pub label: String,
    pub label_y: u32,
    pub bars: Vec<Bar>,
    pub total_x: u32,
    pub total: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub label_width: u32,
    pub rows: Vec<BarRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TypeStatsRow {
    pub name: String,
    pub opted_in: i64,
    pub unsubscribed: i64,
    pub not_subscribed: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AdminStats {
    pub nav: ConsoleNav,
    pub marketing_contacts: i64,
    pub non_marketing_contacts: i64,
    pub pending_confirmations: i64,
    pub unreachable_contacts: i64,
    pub contacts_chart: Chart,
    pub types_chart: Chart,
    pub by_type: Vec<TypeStatsRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub kind: String,
    /// A mail's masked recipient, or a webhook's endpoint and event type.
    pub target: String,
    pub created_at: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    pub pending: u64,
    pub dead: u64,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    pub last_status: Option<u16>,
}

/// Dead letters with retry, and the webhook endpoints with enable.
#[derive(Clone, Debug, Serialize)]
pub struct AdminDeliveries {
    pub nav: ConsoleNav,
    pub dead_letters: Vec<DeadLetter>,
    pub webhooks: Vec<WebhookRow>,
    pub message: Option<&'static str>,
}

/// The record of processing, as its document.
#[derive(Clone, Debug, Serialize)]
pub struct AdminRecord {
    pub nav: ConsoleNav,
    pub markdown: String,
    pub download_url: String,
}

/// One held signup: its address in full (the admin judges it), types, reason and times.
#[derive(Clone, Debug, Serialize)]
pub struct HeldRow {
    pub id: String,
    pub email: String,
    pub types: String,
    /// The `t` key naming the reason (`admin_reason_too_fast`).
    pub reason: String,
    /// The `t` key naming the door (`admin_source_signup_form`).
    pub source: String,
    pub at: String,
    pub expires_at: String,
}

/// The signups the firewall held, with release and drop.
#[derive(Clone, Debug, Serialize)]
pub struct AdminQuarantine {
    pub nav: ConsoleNav,
    pub held: Vec<HeldRow>,
    pub message: Option<&'static str>,
    pub is_error: bool,
}

super::data::pages! {
    Signup<'_> => SIGNUP,
    AdminLogin => ADMIN_LOGIN,
    AdminSearch => ADMIN_SEARCH,
    AdminContact => ADMIN_CONTACT,
    AdminErase => ADMIN_ERASE,
    AdminStats => ADMIN_STATS,
    AdminDeliveries => ADMIN_DELIVERIES,
    AdminFunnel => ADMIN_FUNNEL,
    AdminRecord => ADMIN_RECORD,
    AdminQuarantine => ADMIN_QUARANTINE,
}

/// Every console page in each of its shapes, for the check at load.
pub(super) fn add_samples(samples: &mut Samples) {
    let text = |s: &str| s.to_string();
    let some_text = |flag: bool, s: &str| flag.then(|| s.to_string());
    let types = [TypeView {
        id: text("sample-type"),
        name: text("Sample"),
        description: text("A sample."),
        purpose: crate::domain::Purpose::Marketing,
        status: crate::domain::Status::NotSubscribed,
        opted_in: false,
        notice_version: text("1"),
        notice_text: text("A sample notice."),
    }];
    for flag in [true, false] {
        samples.add(&Signup {
            action_url: text("signup"),
            locale: text("en"),
            types: &types,
            email: text("ann@gmial.com"),
            shown_types: if flag {
                text("sample-type")
            } else {
                String::new()
            },
            form_id: some_text(flag, "footer"),
            page_url: some_text(flag, "https://shop.example/"),
            errors: FormErrors {
                email: flag.then_some("signup_error_email_invalid"),
                types: flag.then_some("signup_error_no_types"),
                form: flag.then_some("signup_error_form"),
            },
            suggestions: if flag {
                vec![text("ann@gmail.com")]
            } else {
                Vec::new()
            },
            target_top: flag,
            embed: flag.then(|| Embed {
                origins: text("https://shop.example"),
                nonce: text("bm9uY2U="),
            }),
            challenge_url: flag.then_some("v1/signup-challenge"),
            rendered_at: some_text(flag, "1767225600.00"),
        });
    }
    for flag in [true, false] {
        samples.add(&AdminLogin {
            refused: flag,
            rate_limited: !flag,
        });
    }
    let nav = || ConsoleNav {
        key_name: text("admin"),
        csrf: text("token"),
    };
    for message in [Some("admin_not_found"), None] {
        samples.add(&AdminSearch {
            nav: nav(),
            message,
        });
    }
    let some = |flag: bool, s: &str| flag.then(|| text(s));
    for flag in [true, false] {
        samples.add(&AdminContact {
            nav: nav(),
            contact_url: text("/admin/contacts/0"),
            email: text("a@example.com"),
            locale: text("en"),
            created_at: text("2026-01-01 00:00 UTC"),
            types: vec![ContactType {
                id: text("sample-type"),
                name: text("Sample"),
                status_key: text("admin_status_opted_in"),
                since: some(flag, "2026-01-01 00:00 UTC"),
                lawful_basis: some(flag, "consent"),
                source: some(flag, "confirm_link"),
            }],
            pending: vec![ContactPending {
                types: text("Sample"),
                created_at: text("2026-01-01 00:00 UTC"),
                expires_at: text("2026-01-08 00:00 UTC"),
            }],
            restricted_since: some(flag, "2026-01-01 00:00 UTC"),
            signup_blocked_since: some(flag, "2026-01-01 00:00 UTC"),
            unreachable: flag.then(|| ContactUnreachable {
                since: text("2026-01-01 00:00 UTC"),
                reason: text("hard_bounce"),
                detail: some(flag, "5.1.1"),
            }),
            recent_soft_bounces: 1,
            events: vec![TimelineEvent {
                id: text("0"),
                at: text("2026-01-01 00:00 UTC"),
                kind: text("status_changed"),
                subscription_type: some(flag, "Sample"),
                change: some(flag, "not_subscribed → opted_in"),
                source: text("confirm_link"),
                lawful_basis: some(flag, "consent"),
                explanation: some(flag, "asked by phone"),
                consent_evidence: some(flag, "ticket 1"),
                notice: some(flag, "v1 (en) sha256 00"),
                actor: some(flag, "admin"),
                broken: flag,
            }],
            chain_valid: flag,
            message: flag.then_some("admin_done_restricted"),
            message_is_error: flag,
            statuses: vec![Choice {
                value: text("opted_in"),
                label: text("admin_status_opted_in"),
            }],
            lawful_bases: vec![text("consent")],
        });
    }
    samples.add(&AdminErase {
        nav: nav(),
        contact_url: text("/admin/contacts/0"),
        email: text("a@example.com"),
    });
    // The contacts chart's labels are string keys; the types chart's are type names.
    let chart = |label: &str| Chart {
        width: 600,
        height: 60,
        label_width: 160,
        rows: vec![BarRow {
            label: text(label),
            label_y: 20,
            bars: vec![Bar {
                x: 160,
                y: 8,
                width: 100,
                height: 24,
                class: text("bar-opted-in"),
                value: 3,
            }],
            total_x: 270,
            total: 3,
        }],
    };
    samples.add(&AdminStats {
        nav: nav(),
        marketing_contacts: 1,
        non_marketing_contacts: 2,
        pending_confirmations: 0,
        unreachable_contacts: 0,
        contacts_chart: chart("admin_stats_marketing"),
        types_chart: chart("Sample"),
        by_type: vec![TypeStatsRow {
            name: text("Sample"),
            opted_in: 1,
            unsubscribed: 1,
            not_subscribed: 1,
        }],
    });
    samples.add(&AdminRecord {
        nav: nav(),
        markdown: text("# Record of processing activities\n"),
        download_url: text("/admin/processing-record?format=markdown"),
    });
    for flag in [true, false] {
        samples.add(&AdminFunnel {
            nav: nav(),
            since: text("2026-01-01"),
            until: text("2026-01-30"),
            sources: vec![FunnelSource {
                key: text("hosted"),
                chart: chart("admin_funnel_requested"),
                requested: 3,
                mailed: 3,
                reminded: 1,
                same_browser: 1,
                button: 0,
                code: 1,
                confirmed: 2,
                expired: 0,
                cancelled: 1,
                conversion: some_text(flag, "67 %"),
                median: some_text(flag, "42 s"),
            }],
            message: flag.then_some("admin_funnel_bad_window"),
        });
    }
    for flag in [true, false] {
        samples.add(&AdminDeliveries {
            nav: nav(),
            dead_letters: vec![DeadLetter {
                id: text("0"),
                kind: text("mail"),
                target: text("a***@example.com"),
                created_at: text("2026-01-01 00:00 UTC"),
                attempts: 8,
                last_error: some(flag, "refused"),
            }],
            webhooks: vec![WebhookRow {
                id: text("crm"),
                url: text("https://crm.example/hook"),
                enabled: flag,
                pending: 0,
                dead: 1,
                last_success_at: some(flag, "2026-01-01 00:00 UTC"),
                last_failure_at: some(flag, "2026-01-01 00:00 UTC"),
                last_status: flag.then_some(410),
            }],
            message: flag.then_some("admin_done_retried"),
        });
    }
    for flag in [true, false] {
        samples.add(&AdminQuarantine {
            nav: nav(),
            held: if flag {
                ["disposable_domain", "too_fast", "ip_burst"]
                    .into_iter()
                    .zip(["signup_form", "signup_api", "signup_form"])
                    .map(|(reason, source)| HeldRow {
                        id: text("00aa.0193"),
                        email: text("a@example.com"),
                        types: text("Sample"),
                        reason: format!("admin_reason_{reason}"),
                        source: format!("admin_source_{source}"),
                        at: text("2026-01-01 00:00 UTC"),
                        expires_at: text("2026-01-08 00:00 UTC"),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            message: Some(if flag {
                "admin_done_released"
            } else {
                "admin_err_mail_limit"
            }),
            is_error: !flag,
        });
    }
}
