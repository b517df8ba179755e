//! The public pages, rendered for real: the content a visitor relies on, escaping, the
//! strict CSP (no external assets), labels for every input, and operator overrides.

use std::fs;

use optin::templating;
use optin::web::pages::{self, PageError, Pages, ERROR_KEYS, PAGES};
use serde_json::{json, Value};

const SERVICE: &str = "Example News";
const ACTION_URL: &str = "https://news.example.com/confirm/abc.def";
const PREFERENCES_URL: &str = "https://news.example.com/preferences/ghi.jkl";
const RESUBSCRIBE_URL: &str = "https://news.example.com/unsubscribe/mno.pqr/resubscribe";
const MANAGE_URL: &str = "https://news.example.com/manage/stu.vwx";
const SIGNUP_URL: &str = "https://www.example.com/newsletter";

fn pages() -> Pages {
    Pages::load(None, SERVICE).expect("the built-in pages load")
}

fn blog() -> Value {
    json!({ "id": "blog-updates", "name": "Blog updates" })
}

/// Data for each page, with every optional part present.
fn sample(page: &str) -> Value {
    match page {
        pages::CONFIRM => json!({ "action_url": ACTION_URL }),
        pages::CONFIRMED => json!({ "types": [blog()], "preferences_url": PREFERENCES_URL }),
        pages::LINK_INVALID => json!({ "expired": true, "signup_url": SIGNUP_URL }),
        pages::UNSUBSCRIBE => unsubscribe_data(blog(), true, false),
        pages::UNSUBSCRIBED => unsubscribe_data(blog(), false, false),
        pages::MANAGE | pages::FRESH_LINK_NEEDED => json!({ "action_url": ACTION_URL }),
        pages::LINK_SENT => json!({}),
        pages::PREFERENCES => preferences_data("Blog updates", true, true),
        pages::SIGNUP_RECEIVED | pages::ERASED => json!({}),
        pages::HOME => json!({ "signup_url": "signup?locale=nl" }),
        pages::ERASE_CONFIRM => json!({ "action_url": ACTION_URL, "back_url": PREFERENCES_URL }),
        pages::ERROR => json!({ "status": 404, "error_key": "not_found" }),
        pages::SIGNUP => json!({
            "action_url": "signup",
            "locale": "en",
            "types": preferences_data("Blog updates", false, false)["types"],
            "email": "",
            "shown_types": "",
            "errors": {"form": "signup_proof_failed"},
            "suggestions": [],
            "target_top": false,
            "challenge_url": "v1/signup-challenge",
            "rendered_at": "1767225600.00ff",
        }),
        pages::ADMIN_LOGIN => json!({ "refused": true, "rate_limited": false }),
        pages::ADMIN_SEARCH => json!({ "nav": nav(), "message": "admin_not_found" }),
        pages::ADMIN_CONTACT => admin_contact_data(),
        pages::ADMIN_ERASE => json!({
            "nav": nav(), "contact_url": "/admin/contacts/00ff", "email": "jane@example.com",
        }),
        pages::ADMIN_STATS => json!({
            "nav": nav(),
            "marketing_contacts": 2, "non_marketing_contacts": 1,
            "pending_confirmations": 0, "unreachable_contacts": 1,
            "contacts_chart": chart("admin_stats_marketing"),
            "types_chart": chart("Blog updates"),
            "by_type": [{ "name": "Blog updates", "opted_in": 2, "unsubscribed": 1, "not_subscribed": 0 }],
        }),
        pages::ADMIN_DELIVERIES => json!({
            "nav": nav(),
            "dead_letters": [{
                "id": "0190", "kind": "mail", "target": "j***@example.com",
                "created_at": "2026-12-01 10:00:00 UTC", "attempts": 8, "last_error": "550",
            }],
            "webhooks": [{
                "id": "crm", "url": SIGNUP_URL, "enabled": false, "pending": 1, "dead": 0,
                "last_success_at": null, "last_failure_at": "2026-12-01 10:00:00 UTC",
                "last_status": 410,
            }],
            "message": "admin_done_retried",
        }),
        pages::ADMIN_FUNNEL => json!({
            "nav": nav(),
            "since": "2026-12-01", "until": "2026-12-30",
            "sources": [{
                "key": "hosted", "chart": chart("admin_funnel_requested"),
                "requested": 4, "mailed": 4, "reminded": 1, "same_browser": 1, "button": 1,
                "code": 1, "confirmed": 3, "expired": 1, "cancelled": 0,
                "conversion": "75 %", "median": "12 s",
            }],
            "message": null,
        }),
        pages::RENEW => json!({
            "action_url": ACTION_URL, "type_name": "Blog updates",
            "notice_text": "We keep your address to send you blog updates.",
            "notice_version": "2024-05-v3", "until": "2027-01-01",
            "renewed": false, "already": false, "notice_changed": true,
        }),
        pages::ADMIN_RECORD => json!({
            "nav": nav(),
            "markdown": "# Record of processing activities\n\n- Purpose: <Blog updates>\n",
            "download_url": "/admin/processing-record?format=markdown",
        }),
        pages::ADMIN_QUARANTINE => json!({
            "nav": nav(),
            "held": [{
                "id": "00ff.0190", "email": "jane@mailinator.com", "types": "Blog updates",
                "reason": "admin_reason_disposable_domain", "source": "admin_source_signup_api",
                "at": "2026-12-01 10:00:00 UTC", "expires_at": "2026-12-08 10:00:00 UTC",
            }],
            "message": "admin_done_released",
            "is_error": false,
        }),
        other => panic!("no sample for page {other}"),
    }
}

/// What every console page shows around its content.
fn nav() -> Value {
    json!({ "key_name": "ops", "csrf": "token" })
}

fn chart(label: &str) -> Value {
    json!({
        "width": 640, "height": 40, "label_width": 200,
        "rows": [{
            "label": label, "label_y": 25, "total_x": 310, "total": 3,
            "bars": [{ "x": 200, "y": 8, "width": 100, "height": 24, "class": "bar-opted-in", "value": 3 }],
        }],
    })
}

fn admin_contact_data() -> Value {
    json!({
        "nav": nav(),
        "contact_url": "/admin/contacts/00ff",
        "email": "jane@example.com",
        "locale": "en",
        "created_at": "2026-12-01 10:00:00 UTC",
        "types": [{
            "id": "blog-updates", "name": "Blog updates", "status_key": "admin_status_opted_in",
            "since": "2026-12-01 10:00:00 UTC", "lawful_basis": "consent", "source": "confirm_link",
        }],
        "pending": [{ "types": "Blog updates", "created_at": "2026-12-01 10:00:00 UTC", "expires_at": "2026-12-08 10:00:00 UTC" }],
        "restricted_since": null,
        "signup_blocked_since": null,
        "unreachable": { "since": "2026-12-01 10:00:00 UTC", "reason": "hard_bounce", "detail": null },
        "recent_soft_bounces": 0,
        "events": [{
            "id": "0190", "at": "2026-12-01 10:00:00 UTC", "kind": "status_changed",
            "subscription_type": "blog-updates", "change": "not_subscribed → opted_in",
            "source": "confirm_link", "lawful_basis": "consent", "explanation": null,
            "consent_evidence": null, "notice": "2024-05-v3 (en) sha256 00", "actor": null,
            "broken": false,
        }],
        "chain_valid": true,
        "message": null,
        "message_is_error": false,
        "statuses": [{ "value": "opted_in", "label": "admin_status_opted_in" }],
        "lawful_bases": ["consent", "contract"],
    })
}

/// The unsubscribe pages' data: a cancelled signup, or one type's link (which offers to
/// resubscribe and to mail a preferences link).
fn unsubscribe_data(subscription_type: Value, cancel_signup: bool, already: bool) -> Value {
    json!({
        "action_url": ACTION_URL,
        "types": [subscription_type],
        "cancel_signup": cancel_signup,
        "stop_requests": false,
        "requests_blocked": false,
        "resubscribe_action": if cancel_signup { Value::Null } else { json!(RESUBSCRIBE_URL) },
        "manage_action": MANAGE_URL,
        "already_unsubscribed": already,
    })
}

fn preferences_data(name: &str, saved: bool, restricted: bool) -> Value {
    json!({
        "action_url": ACTION_URL,
        "types": [
            {
                "id": "blog-updates",
                "name": name,
                "description": "A mail when we publish a new post.",
                "purpose": "marketing",
                "opted_in": true,
                "status": "opted_in",
                "notice_version": "2024-05-v3",
                "notice_text": "We keep your address to send you blog updates until you unsubscribe.",
            },
            {
                "id": "event-info",
                "name": "Event info",
                "description": "Invitations to our events.",
                "purpose": "marketing",
                "opted_in": false,
                "status": "unsubscribed",
                "notice_version": "2024-01-v1",
                "notice_text": "We keep your address to invite you to events.",
            },
        ],
        "saved": saved,
        "restricted": restricted,
        "signups_blocked": false,
        "rights_allowed": true,
        "fresh_link_action": ACTION_URL,
        "export_action": ACTION_URL,
        "erase_url": PREFERENCES_URL,
        "receipts_url": PREFERENCES_URL,
    })
}

fn render(page: &str, locale: &str, data: Value) -> String {
    pages()
        .render(page, locale, data)
        .unwrap_or_else(|error| panic!("{page} in {locale} renders: {error}"))
}

/// Every `<tag …>` opening tag of this name, attributes included.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    html.match_indices(&open)
        .filter(|(at, _)| {
            let next = html[at + open.len()..].chars().next();
            matches!(next, Some(' ' | '>' | '\n'))
        })
        .filter_map(|(at, _)| html[at..].find('>').map(|end| &html[at..=at + end]))
        .collect()
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[test]
fn every_page_renders_in_both_locales_as_a_complete_document() {
    for page in PAGES {
        for locale in ["en", "nl"] {
            let html = render(page, locale, sample(page));
            assert!(html.starts_with("<!doctype html>"), "{page}/{locale}");
            assert!(
                html.contains(&format!("<html lang=\"{locale}\">")),
                "{page}/{locale}"
            );
            assert!(html.contains("name=\"viewport\""), "{page}/{locale}");
            assert!(html.contains("<title>"), "{page}/{locale}");
            assert!(html.contains(SERVICE), "{page}/{locale}");
            assert!(html.contains("<h1>"), "{page}/{locale}");
        }
    }
}

#[test]
fn typed_page_data_renders_like_the_same_data_as_json() {
    let blog = || pages::TypeName {
        id: "blog-updates".to_string(),
        name: "Blog updates".to_string(),
    };
    let confirmed = pages::Confirmed {
        types: vec![blog()],
        already: false,
        preferences_url: Some(PREFERENCES_URL.to_string()),
        embed: None,
    };
    assert_eq!(
        pages().render_page("nl", &confirmed).unwrap(),
        render(pages::CONFIRMED, "nl", sample(pages::CONFIRMED))
    );
    let unsubscribe = pages::Unsubscribe(pages::UnsubscribeData {
        action_url: ACTION_URL.to_string(),
        types: vec![blog()],
        cancel_signup: true,
        stop_requests: false,
        requests_blocked: false,
        resubscribe_action: None,
        manage_action: Some(MANAGE_URL.to_string()),
        already_unsubscribed: false,
        nothing_pending: false,
    });
    assert_eq!(
        pages().render_page("en", &unsubscribe).unwrap(),
        render(pages::UNSUBSCRIBE, "en", sample(pages::UNSUBSCRIBE))
    );
}

#[test]
fn confirm_page_has_exactly_one_post_form_with_the_confirm_button() {
    for locale in ["en", "nl"] {
        let html = render(pages::CONFIRM, locale, sample(pages::CONFIRM));
        let forms = tags(&html, "form");
        assert_eq!(forms.len(), 1, "{html}");
        assert_eq!(attribute(forms[0], "method"), Some("post"));
        assert_eq!(attribute(forms[0], "action"), Some(ACTION_URL));
        let buttons = tags(&html, "button");
        assert_eq!(buttons.len(), 1);
        assert_eq!(attribute(buttons[0], "id"), Some("confirm"));
        assert_eq!(attribute(buttons[0], "type"), Some("submit"));
        assert!(
            !html.contains("<a "),
            "the confirm page offers nothing else to click"
        );
    }
}

#[test]
fn confirm_page_says_one_click_confirms() {
    let en = render(pages::CONFIRM, "en", sample(pages::CONFIRM));
    assert!(en.contains("One click on the button"), "{en}");
    let nl = render(pages::CONFIRM, "nl", sample(pages::CONFIRM));
    assert!(nl.contains("Eén klik op de knop"), "{nl}");
}

#[test]
fn data_is_html_escaped_everywhere() {
    let evil = "<script>x</script>";
    let escaped = "&lt;script&gt;x&lt;/script&gt;";
    let evil_type = json!({ "id": "blog-updates", "name": evil });
    let cases = [
        (pages::PREFERENCES, preferences_data(evil, false, false)),
        (
            pages::CONFIRMED,
            json!({ "types": [evil_type], "preferences_url": null }),
        ),
        (
            pages::UNSUBSCRIBE,
            unsubscribe_data(evil_type.clone(), false, false),
        ),
        (
            pages::UNSUBSCRIBED,
            unsubscribe_data(evil_type, false, false),
        ),
    ];
    for (page, data) in cases {
        let html = render(page, "en", data);
        assert!(!html.contains(evil), "{page} shows raw markup");
        assert!(html.contains(escaped), "{page} lost the name");
    }
}

#[test]
fn attribute_values_cannot_break_out_of_their_quotes() {
    let data = json!({ "action_url": "https://x.example/\"><script>x</script>" });
    let html = render(pages::CONFIRM, "en", data);
    assert!(!html.contains("\"><script>"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
}

#[test]
fn dutch_pages_use_dutch_strings() {
    for page in PAGES {
        let en = render(page, "en", sample(page));
        let nl = render(page, "nl", sample(page));
        assert_ne!(en, nl, "{page}");
    }
    let nl = render(pages::PREFERENCES, "nl", sample(pages::PREFERENCES));
    assert!(nl.contains("Voorkeuren opslaan"), "{nl}");
    assert!(nl.contains("Afmelden voor alles"), "{nl}");
    assert!(!nl.contains("Save preferences"), "{nl}");
}

#[test]
fn unknown_locales_fall_back_to_english_and_regions_to_their_language() {
    let en = render(pages::SIGNUP_RECEIVED, "en", json!({}));
    assert_eq!(render(pages::SIGNUP_RECEIVED, "de", json!({})), en);
    assert_eq!(render(pages::SIGNUP_RECEIVED, "", json!({})), en);
    let nl = render(pages::SIGNUP_RECEIVED, "nl", json!({}));
    assert_eq!(render(pages::SIGNUP_RECEIVED, "nl-BE", json!({})), nl);
}

#[test]
fn pages_load_no_external_assets() {
    // The data's own URLs are links and form targets; nothing else may point off-site,
    // and nothing may be fetched at all (CSP `default-src 'none'`).
    let ours = [
        ACTION_URL,
        PREFERENCES_URL,
        RESUBSCRIBE_URL,
        MANAGE_URL,
        SIGNUP_URL,
    ];
    // The one script a page may hold: the hosted form's own solver, inline, which its CSP
    // allows by its hash alone.
    let solver = format!(
        "<script>{}</script>",
        optin::firewall::hosted_solver::SCRIPT
    );
    for page in PAGES {
        for locale in ["en", "nl"] {
            let mut html = render(page, locale, sample(page));
            if page == pages::SIGNUP {
                assert_eq!(html.matches("<script").count(), 1, "only the solver");
                html = html.replace(&solver, "");
            }
            for url in ours {
                html = html.replace(url, "");
            }
            for forbidden in [
                "http://", "https://", "//", "<script", "<link", "<img", "<iframe", "url(",
                "@import", " src=",
            ] {
                assert!(
                    !html.contains(forbidden),
                    "{page}/{locale} contains {forbidden}"
                );
            }
        }
    }
}

#[test]
fn every_visible_input_has_a_label() {
    for page in PAGES {
        for locale in ["en", "nl"] {
            let html = render(page, locale, sample(page));
            for input in tags(&html, "input") {
                if attribute(input, "type") == Some("hidden") {
                    continue;
                }
                let id = attribute(input, "id")
                    .unwrap_or_else(|| panic!("{page}: input without id: {input}"));
                assert!(
                    html.contains(&format!("<label for=\"{id}\"")),
                    "{page}/{locale}: no label for {input}"
                );
            }
        }
    }
}

#[test]
fn preferences_page_has_a_labelled_checkbox_and_hidden_fields_per_type() {
    let html = render(pages::PREFERENCES, "en", sample(pages::PREFERENCES));
    let forms = tags(&html, "form");
    assert_eq!(
        forms.len(),
        2,
        "the preferences form and the data download form"
    );
    assert_eq!(attribute(forms[0], "method"), Some("post"));
    assert_eq!(attribute(forms[0], "action"), Some(ACTION_URL));
    assert_eq!(
        attribute(forms[1], "method"),
        Some("post"),
        "the download is a POST: it is recorded"
    );

    let inputs = tags(&html, "input");
    let blog = inputs
        .iter()
        .find(|tag| attribute(tag, "id") == Some("type-blog-updates"))
        .expect("a checkbox for blog-updates");
    assert_eq!(attribute(blog, "type"), Some("checkbox"));
    assert_eq!(attribute(blog, "name"), Some("subscription_types"));
    assert_eq!(attribute(blog, "value"), Some("blog-updates"));
    assert!(blog.contains(" checked"), "opted in: checked");
    let events = inputs
        .iter()
        .find(|tag| attribute(tag, "id") == Some("type-event-info"))
        .expect("a checkbox for event-info");
    assert!(!events.contains(" checked"), "not opted in: unchecked");

    assert!(html.contains("<label for=\"type-blog-updates\">Blog updates</label>"));
    assert!(html.contains("<input type=\"hidden\" name=\"shown\" value=\"blog-updates\">"));
    assert!(html.contains("<input type=\"hidden\" name=\"shown\" value=\"event-info\">"));
    assert!(html.contains(
        "<input type=\"hidden\" name=\"notice_version.blog-updates\" value=\"2024-05-v3\">"
    ));
    assert!(html.contains("We keep your address to send you blog updates"));
    assert!(html.contains("Invitations to our events."));

    let buttons = tags(&html, "button");
    let save = buttons
        .iter()
        .find(|b| attribute(b, "id") == Some("save"))
        .expect("save");
    assert_eq!(attribute(save, "name"), None, "save is a plain submit");
    let all = buttons
        .iter()
        .find(|b| attribute(b, "id") == Some("unsubscribe-all"))
        .expect("unsubscribe all");
    assert_eq!(attribute(all, "name"), Some("unsubscribe_all"));
    assert_eq!(attribute(all, "value"), Some("1"));
    assert!(
        html.find("id=\"save\"") < html.find("id=\"unsubscribe-all\""),
        "Enter in the form must save, not unsubscribe from all"
    );
}

#[test]
fn preferences_page_shows_saved_and_restricted_notes_only_when_set() {
    let with = render(
        pages::PREFERENCES,
        "en",
        preferences_data("Blog", true, true),
    );
    assert!(with.contains("Your preferences have been saved."));
    assert!(with.contains("restricted the processing"));
    let without = render(
        pages::PREFERENCES,
        "en",
        preferences_data("Blog", false, false),
    );
    assert!(!without.contains("Your preferences have been saved."));
    assert!(!without.contains("restricted the processing"));
}

#[test]
fn unsubscribe_page_for_a_type_offers_unsubscribe_resubscribe_and_a_mailed_link_only() {
    let html = render(
        pages::UNSUBSCRIBE,
        "en",
        unsubscribe_data(blog(), false, false),
    );
    assert!(html.contains("Unsubscribe from these emails?"));
    assert!(html.contains("Blog updates"));
    let forms = tags(&html, "form");
    let actions: Vec<_> = forms.iter().map(|f| attribute(f, "action")).collect();
    assert_eq!(
        actions,
        [Some(ACTION_URL), Some(RESUBSCRIBE_URL), Some(MANAGE_URL)]
    );
    assert!(forms.iter().all(|f| attribute(f, "method") == Some("post")));
    let buttons = tags(&html, "button");
    assert_eq!(attribute(buttons[0], "id"), Some("unsubscribe"));
    assert!(
        tags(&html, "input").is_empty(),
        "no block option outside a signup"
    );
    assert!(!html.contains("/preferences/"), "never a preferences link");
    assert!(html.contains("Email me a link to my preferences"));
}

#[test]
fn unsubscribe_page_from_a_confirmation_mail_offers_to_block_further_requests() {
    let html = render(pages::UNSUBSCRIBE, "en", sample(pages::UNSUBSCRIBE));
    assert!(html.contains("Cancel this signup?"));
    let inputs = tags(&html, "input");
    assert_eq!(inputs.len(), 1);
    assert_eq!(attribute(inputs[0], "type"), Some("checkbox"));
    assert_eq!(attribute(inputs[0], "name"), Some("block"));
    assert_eq!(attribute(inputs[0], "value"), Some("1"));
    assert!(!inputs[0].contains(" checked"), "blocking is opt-in");
    assert!(html.contains("Don&#x27;t send me confirmation requests for these again"));
}

#[test]
fn pages_hide_links_they_were_not_given() {
    let confirmed = render(
        pages::CONFIRMED,
        "en",
        json!({ "types": [blog()], "preferences_url": null }),
    );
    assert!(!confirmed.contains("<a "), "{confirmed}");
    assert!(confirmed.contains("Blog updates"));

    let mut bare = unsubscribe_data(blog(), false, false);
    bare["resubscribe_action"] = Value::Null;
    bare["manage_action"] = Value::Null;
    let unsubscribe = render(pages::UNSUBSCRIBE, "en", bare);
    assert!(!unsubscribe.contains("<a "), "{unsubscribe}");
    assert_eq!(tags(&unsubscribe, "form").len(), 1, "{unsubscribe}");
}

#[test]
fn unsubscribed_page_offers_resubscribing_by_a_new_confirmation() {
    let html = render(pages::UNSUBSCRIBED, "en", sample(pages::UNSUBSCRIBED));
    assert!(html.contains("You&#x27;re unsubscribed"));
    let forms = tags(&html, "form");
    assert_eq!(forms.len(), 2);
    assert_eq!(attribute(forms[0], "method"), Some("post"));
    assert_eq!(attribute(forms[0], "action"), Some(RESUBSCRIBE_URL));
    assert!(
        html.contains("we&#x27;ll email you a link to confirm"),
        "{html}"
    );
    assert!(!html.contains("/preferences/"));
}

#[test]
fn unsubscribed_page_has_no_resubscribe_form_after_a_cancelled_signup() {
    let html = render(
        pages::UNSUBSCRIBED,
        "en",
        unsubscribe_data(blog(), true, false),
    );
    assert!(html.contains("Signup cancelled"), "{html}");
    assert!(!html.contains("id=\"resubscribe\""), "{html}");
}

#[test]
fn the_stop_requests_page_has_one_button_and_nothing_else() {
    let mut data = unsubscribe_data(Value::Null, false, false);
    data["types"] = json!([]);
    data["stop_requests"] = json!(true);
    let html = render(pages::UNSUBSCRIBE, "en", data);
    assert!(html.contains("Stop these emails?"), "{html}");
    assert_eq!(tags(&html, "form").len(), 1);
    assert_eq!(tags(&html, "button").len(), 1);
}

#[test]
fn link_invalid_page_tells_expired_from_invalid_and_offers_a_new_signup() {
    let expired = render(pages::LINK_INVALID, "en", sample(pages::LINK_INVALID));
    assert!(expired.contains("This link has expired"));
    assert!(expired.contains(&format!("href=\"{SIGNUP_URL}\"")));

    let invalid = render(
        pages::LINK_INVALID,
        "nl",
        json!({ "expired": false, "signup_url": null }),
    );
    assert!(invalid.contains("Deze link werkt niet"));
    assert!(invalid.contains("Meld je dan opnieuw aan"));
    assert!(!invalid.contains("<a "));
}

#[test]
fn signup_received_page_says_to_check_the_inbox() {
    let html = render(pages::SIGNUP_RECEIVED, "en", json!({}));
    assert!(html.contains("Check your inbox"));
    assert!(html.contains("in the browser you signed up with, that is all it takes"));
    assert!(
        !html.contains("<form"),
        "no code field without a signup reference"
    );
    let with_code = render(
        pages::SIGNUP_RECEIVED,
        "nl",
        json!({
            "code_form": { "action_url": "received", "reference": "cmVm.c2ln", "locale": "nl" },
            "error": "signup_code_refused",
        }),
    );
    assert!(with_code.contains(r#"<input type="hidden" name="ref" value="cmVm.c2ln">"#));
    assert!(with_code.contains(r#"name="code""#));
    assert!(with_code.contains("Die code werkte niet"));
}

#[test]
fn error_page_shows_a_localized_message_per_key_and_nothing_it_was_not_given() {
    let mut messages = std::collections::BTreeSet::new();
    for error_key in ERROR_KEYS {
        let html = render(
            pages::ERROR,
            "en",
            json!({
                "status": 503,
                "error_key": error_key,
                "detail": "connection refused at redis://10.0.0.7:6379",
            }),
        );
        assert!(!html.contains("connection refused"), "{html}");
        assert!(!html.contains("10.0.0.7"), "{html}");
        assert!(html.contains("503"));
        messages.insert(html);
    }
    assert_eq!(
        messages.len(),
        ERROR_KEYS.len(),
        "each key has its own message"
    );

    let nl = render(
        pages::ERROR,
        "nl",
        json!({ "status": 429, "error_key": "too_many_requests" }),
    );
    assert!(nl.contains("Te veel verzoeken"), "{nl}");

    let unknown = render(
        pages::ERROR,
        "en",
        json!({ "status": 500, "error_key": "<b>oops</b>" }),
    );
    let internal = render(
        pages::ERROR,
        "en",
        json!({ "status": 500, "error_key": "internal" }),
    );
    assert_eq!(
        unknown, internal,
        "an unknown key shows the generic message"
    );
}

#[test]
fn rendering_an_unknown_page_or_non_object_data_fails() {
    let pages = pages();
    assert!(matches!(
        pages.render("layout", "en", json!({})),
        Err(PageError::UnknownPage(_))
    ));
    assert!(matches!(
        pages.render(pages::CONFIRM, "en", json!("x")),
        Err(PageError::DataNotObject { .. })
    ));
}

#[test]
fn missing_data_is_an_error_not_an_empty_field() {
    let result = pages().render(pages::CONFIRM, "en", json!({}));
    assert!(
        matches!(
            result,
            Err(PageError::Templating(templating::Error::Render { .. }))
        ),
        "{result:?}"
    );
}

#[test]
fn an_override_dir_replaces_a_page_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("signup_received.hbs"),
        "{{#> layout title=t.signup_received_title}}<h1>Custom {{service_name}}</h1>{{/layout}}",
    )
    .unwrap();
    let pages = Pages::load(Some(dir.path()), SERVICE).unwrap();
    let html = pages
        .render(pages::SIGNUP_RECEIVED, "en", json!({}))
        .unwrap();
    assert!(html.contains("<h1>Custom Example News</h1>"), "{html}");
    assert!(
        html.starts_with("<!doctype html>"),
        "still in the built-in layout"
    );
    let confirm = pages
        .render(pages::CONFIRM, "en", sample(pages::CONFIRM))
        .unwrap();
    assert!(confirm.contains("id=\"confirm\""));
}

#[test]
fn an_override_dir_replaces_strings() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = include_str!("../page-templates/i18n/nl.json");
    let mut strings: serde_json::Map<String, Value> = serde_json::from_str(builtin).unwrap();
    strings.insert("signup_received_title".into(), json!("Kijk in je mailbox"));
    fs::create_dir(dir.path().join("i18n")).unwrap();
    fs::write(
        dir.path().join("i18n/nl.json"),
        serde_json::to_string(&strings).unwrap(),
    )
    .unwrap();
    let pages = Pages::load(Some(dir.path()), SERVICE).unwrap();
    let html = pages
        .render(pages::SIGNUP_RECEIVED, "nl", json!({}))
        .unwrap();
    assert!(html.contains("Kijk in je mailbox"));
}

#[test]
fn a_broken_override_template_fails_load_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("preferences.hbs"), "{{#if saved}}unclosed").unwrap();
    let error = Pages::load(Some(dir.path()), SERVICE).unwrap_err();
    assert!(
        matches!(
            error,
            PageError::Templating(templating::Error::Syntax { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("preferences.hbs"), "{error}");
}

#[test]
fn an_override_using_unknown_data_fails_load_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("confirm.hbs"),
        "<p>{{t.no_such_string}}</p>",
    )
    .unwrap();
    let error = Pages::load(Some(dir.path()), SERVICE).unwrap_err();
    assert!(
        matches!(
            error,
            PageError::Templating(templating::Error::Render { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("confirm.hbs"), "{error}");
}

#[test]
fn a_misnamed_override_template_fails_load() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("preferenes.hbs"), "<p>typo</p>").unwrap();
    let error = Pages::load(Some(dir.path()), SERVICE).unwrap_err();
    assert!(error.to_string().contains("preferenes.hbs"), "{error}");
}

#[test]
fn a_string_file_missing_a_key_fails_load_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = include_str!("../page-templates/i18n/nl.json");
    let mut strings: serde_json::Map<String, Value> = serde_json::from_str(builtin).unwrap();
    strings.remove("preferences_save");
    fs::create_dir(dir.path().join("i18n")).unwrap();
    fs::write(
        dir.path().join("i18n/nl.json"),
        serde_json::to_string(&strings).unwrap(),
    )
    .unwrap();
    let error = Pages::load(Some(dir.path()), SERVICE).unwrap_err();
    assert!(
        matches!(error, PageError::MissingStrings { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("preferences_save"), "{message}");
    assert!(message.contains("nl.json"), "{message}");
}

#[test]
fn a_string_file_that_is_not_flat_json_fails_load() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("i18n")).unwrap();
    fs::write(
        dir.path().join("i18n/en.json"),
        "{\"a\": {\"nested\": \"no\"}}",
    )
    .unwrap();
    let error = Pages::load(Some(dir.path()), SERVICE).unwrap_err();
    assert!(matches!(error, PageError::Strings { .. }), "{error:?}");
    assert!(error.to_string().contains("en.json"), "{error}");
}

#[test]
fn a_missing_override_dir_fails_load() {
    let dir = tempfile::tempdir().unwrap();
    let error = Pages::load(Some(&dir.path().join("absent")), SERVICE).unwrap_err();
    assert!(
        matches!(
            error,
            PageError::Templating(templating::Error::ReadDir { .. })
        ),
        "{error:?}"
    );
}
