//! Outgoing mail end to end: the shipped templates, operator overrides, the composed MIME
//! message, and delivery over real SMTP (an in-process server) and into `.eml` files.

#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::path::Path;
use std::time::Duration;

use lettre::message::Mailbox;
use optin::domain::EmailAddress;
use optin::mail::{
    compose_message, list_unsubscribe_value, ConfirmationData, Envelope, MailTemplates,
    MailTransport, RenderedMail, TemplateError, TypeSummary, CONFIRMATION_MAIL,
    LIST_UNSUBSCRIBE_POST, REMINDER_MAIL,
};
use optin::templating;
use smtp_sink::{find_links, Rejection, SmtpSink};

const CONFIRM_URL: &str = "https://optin.example.com/confirm/eyJ2IjoxfQ.c2ln";
const UNSUBSCRIBE_URL: &str = "https://optin.example.com/unsubscribe/eyJ2IjoyfQ.c2ln";
const PREFERENCES_URL: &str = "https://optin.example.com/preferences/eyJ2IjozfQ.c2ln";
const MESSAGE_ID: &str = "<0190f0a8-7c1e-7000-8000-000000000001@optin.example.com>";
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

fn confirmation_data(type_name: &str) -> ConfirmationData {
    ConfirmationData {
        types: vec![
            TypeSummary {
                id: "blog-updates".into(),
                name: type_name.into(),
                description: "A mail when we publish a new post.".into(),
            },
            TypeSummary {
                id: "event-info".into(),
                name: "Event info".into(),
                description: String::new(),
            },
        ],
        confirm_url: CONFIRM_URL.into(),
        code: "042917".into(),
        reminds: true,
        unsubscribe_url: UNSUBSCRIBE_URL.into(),
        preferences_url: PREFERENCES_URL.into(),
        valid_for_days: 7,
        expires_at: "2025-06-08T10:00:00Z".into(),
        service_name: "Example News".into(),
    }
}

fn builtin_templates() -> MailTemplates {
    MailTemplates::load(None, "en").expect("the built-in templates load")
}

fn render_confirmation(templates: &MailTemplates, locale: &str) -> RenderedMail {
    templates
        .render(
            CONFIRMATION_MAIL,
            locale,
            None,
            &confirmation_data("Blog updates").to_json(),
        )
        .expect("the confirmation mail renders")
}

fn write_file(root: &Path, relative: &str, content: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn english_confirmation_names_the_types_the_button_the_expiry_and_the_cancel_link() {
    let mail = render_confirmation(&builtin_templates(), "en");

    assert_eq!(
        mail.subject,
        "Please confirm your subscription to Example News"
    );
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("Blog updates"), "{part}");
        assert!(
            part.contains("A mail when we publish a new post."),
            "{part}"
        );
        assert!(part.contains("Event info"), "{part}");
        assert!(part.contains("one click on the button"), "{part}");
        assert!(
            part.contains("valid for 7 days, until 2025-06-08T10:00:00Z"),
            "{part}"
        );
        assert!(part.contains("ignore this email"), "{part}");
    }
    assert_eq!(
        find_links(&mail.text),
        [CONFIRM_URL, UNSUBSCRIBE_URL, PREFERENCES_URL]
    );
    assert!(mail
        .text
        .contains(&format!("Cancel this signup: {UNSUBSCRIBE_URL}")));
    assert!(mail
        .html
        .contains(&format!(r#"<a href="{}""#, html_escaped(CONFIRM_URL))));
    assert!(mail
        .html
        .contains(&format!(r#"<a href="{}""#, html_escaped(UNSUBSCRIBE_URL))));
    assert!(mail.html.contains(r#"<html lang="en">"#));
}

#[test]
fn the_confirmation_shows_the_code_and_says_the_signup_browser_finishes_at_once() {
    let templates = builtin_templates();
    let en = render_confirmation(&templates, "en");
    let nl = render_confirmation(&templates, "nl");
    for part in [&en.text, &en.html, &nl.text, &nl.html] {
        assert!(part.contains("042917"), "{part}");
    }
    for part in [&en.text, &en.html] {
        assert!(
            part.contains(
                "In the browser you signed up with, that is all: you are subscribed at once."
            ),
            "{part}"
        );
        assert!(part.contains("we remind you once"), "{part}");
    }
    for part in [&nl.text, &nl.html] {
        assert!(
            part.contains(
                "In de browser waarmee je je aanmeldde is dat alles: je bent meteen aangemeld."
            ),
            "{part}"
        );
    }
    let mut no_reminder = confirmation_data("Blog updates");
    no_reminder.reminds = false;
    let mail = templates
        .render(CONFIRMATION_MAIL, "en", None, &no_reminder)
        .unwrap();
    assert!(!mail.text.contains("remind"), "{}", mail.text);
}

#[test]
fn the_reminder_carries_the_same_link_and_code_in_english_and_dutch() {
    let templates = builtin_templates();
    let data = confirmation_data("Blog updates");
    let en = templates.render(REMINDER_MAIL, "en", None, &data).unwrap();
    let nl = templates.render(REMINDER_MAIL, "nl", None, &data).unwrap();
    assert_eq!(
        en.subject,
        "Reminder: please confirm your subscription to Example News"
    );
    assert_eq!(
        nl.subject,
        "Herinnering: bevestig je aanmelding bij Example News"
    );
    for mail in [&en, &nl] {
        assert_eq!(
            find_links(&mail.text),
            [CONFIRM_URL, UNSUBSCRIBE_URL, PREFERENCES_URL]
        );
        assert!(mail.text.contains("042917") && mail.html.contains("042917"));
    }
    assert!(en.text.contains("This is the only reminder"), "{}", en.text);
    assert!(
        nl.text.contains("Dit is de enige herinnering"),
        "{}",
        nl.text
    );
    assert!(nl.html.contains(r#"<html lang="nl">"#));
}

#[test]
fn dutch_confirmation_is_in_dutch() {
    let mail = render_confirmation(&builtin_templates(), "nl");

    assert_eq!(mail.subject, "Bevestig je aanmelding bij Example News");
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("klik op de knop"), "{part}");
        assert!(
            part.contains("7 dagen geldig, tot 2025-06-08T10:00:00Z"),
            "{part}"
        );
        assert!(part.contains("Aanmelding annuleren"), "{part}");
    }
    assert_eq!(
        find_links(&mail.text),
        [CONFIRM_URL, UNSUBSCRIBE_URL, PREFERENCES_URL]
    );
    assert!(mail.html.contains(r#"<html lang="nl">"#));
}

#[test]
fn a_single_day_is_not_called_days() {
    let mut data = confirmation_data("Blog updates");
    data.valid_for_days = 1;
    let templates = builtin_templates();
    let en = templates
        .render(CONFIRMATION_MAIL, "en", None, &data.to_json())
        .unwrap();
    let nl = templates
        .render(CONFIRMATION_MAIL, "nl", None, &data.to_json())
        .unwrap();
    assert!(en.text.contains("valid for 1 day,"), "{}", en.text);
    assert!(nl.text.contains("1 dag geldig"), "{}", nl.text);
}

#[test]
fn unknown_locale_falls_back_to_the_default_and_a_region_to_its_language() {
    let templates = builtin_templates();
    assert_eq!(
        render_confirmation(&templates, "fr"),
        render_confirmation(&templates, "en")
    );
    assert_eq!(
        render_confirmation(&templates, "nl-BE"),
        render_confirmation(&templates, "nl")
    );

    let dutch_default = MailTemplates::load(None, "nl").unwrap();
    assert_eq!(
        render_confirmation(&dutch_default, "fr").subject,
        "Bevestig je aanmelding bij Example News"
    );
}

#[test]
fn strict_mode_refuses_to_render_with_missing_data() {
    let mut data = confirmation_data("Blog updates").to_json();
    data.as_object_mut().unwrap().remove("confirm_url");

    let error = builtin_templates()
        .render(CONFIRMATION_MAIL, "en", None, &data)
        .unwrap_err();

    assert!(
        matches!(
            error,
            TemplateError::Templating(templating::Error::Render { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("confirm_url"), "{error}");
}

#[test]
fn unknown_mail_name_is_an_error() {
    let error = builtin_templates()
        .render("newsletter", "en", None, &confirmation_data("x").to_json())
        .unwrap_err();
    assert!(matches!(error, TemplateError::UnknownMail(_)), "{error:?}");
}

#[test]
fn text_part_is_not_html_escaped_and_html_part_is() {
    let data = confirmation_data("News & <Views>").to_json();
    let mail = builtin_templates()
        .render(CONFIRMATION_MAIL, "en", None, &data)
        .unwrap();

    assert!(
        mail.text.contains("- News & <Views>: A mail"),
        "{}",
        mail.text
    );
    assert!(!mail.text.contains("&amp;"), "{}", mail.text);
    assert!(
        mail.html
            .contains("<strong>News &amp; &lt;Views&gt;</strong>"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<Views>"), "{}", mail.html);
}

#[test]
fn per_type_override_in_templates_dir_wins_for_that_type_only() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "en/blog-updates/confirmation.subject.hbs",
        "New posts from {{service_name}}: confirm",
    );
    write_file(
        dir.path(),
        "en/confirmation.txt.hbs",
        "Operator text. Confirm: {{confirm_url}}\n",
    );
    let templates = MailTemplates::load(Some(dir.path()), "en").unwrap();
    let data = confirmation_data("Blog updates").to_json();

    let for_blog = templates
        .render(CONFIRMATION_MAIL, "en", Some("blog-updates"), &data)
        .unwrap();
    let for_events = templates
        .render(CONFIRMATION_MAIL, "en", Some("event-info"), &data)
        .unwrap();

    assert_eq!(for_blog.subject, "New posts from Example News: confirm");
    assert_eq!(
        for_events.subject,
        "Please confirm your subscription to Example News"
    );
    // A locale-wide operator file replaces the built-in one for every type...
    assert_eq!(
        for_blog.text,
        format!("Operator text. Confirm: {CONFIRM_URL}\n")
    );
    assert_eq!(for_events.text, for_blog.text);
    // ...and parts nobody overrode stay built in.
    assert!(for_blog.html.contains("one click on the button"));
}

#[test]
fn broken_operator_template_fails_at_load_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "nl/confirmation.html.hbs",
        "<p>{{#each types}}{{name}}</p>",
    );

    let error = MailTemplates::load(Some(dir.path()), "en").unwrap_err();

    assert!(
        matches!(
            error,
            TemplateError::Templating(templating::Error::Syntax { .. })
        ),
        "{error:?}"
    );
    let expected_file = dir.path().join("nl/confirmation.html.hbs");
    assert!(
        error
            .to_string()
            .contains(&expected_file.display().to_string()),
        "{error}"
    );
}

#[test]
fn operator_locale_without_all_parts_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "de/confirmation.subject.hbs",
        "Bitte bestätigen",
    );

    let error = MailTemplates::load(Some(dir.path()), "en").unwrap_err();

    assert!(
        matches!(error, TemplateError::MissingPart { part: "html", .. }),
        "{error:?}"
    );
}

#[test]
fn misnamed_operator_template_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "en/confirmation.text.hbs", "oops");

    let error = MailTemplates::load(Some(dir.path()), "en").unwrap_err();

    assert!(
        matches!(error, TemplateError::UnexpectedName { .. }),
        "{error:?}"
    );
}

fn sender() -> Mailbox {
    "Example News <news@example.com>".parse().unwrap()
}

fn recipient() -> EmailAddress {
    EmailAddress::parse("jane@example.org").unwrap()
}

fn confirmation_message(locale: &str) -> lettre::Message {
    let mail = render_confirmation(&builtin_templates(), locale);
    let (from, to) = (sender(), recipient());
    let envelope = Envelope {
        from: &from,
        to: &to,
        message_id: MESSAGE_ID,
        list_unsubscribe: Some(UNSUBSCRIBE_URL),
    };
    compose_message(&mail, &envelope).expect("the confirmation mail composes")
}

#[tokio::test]
async fn confirmation_sent_over_smtp_arrives_with_unsubscribe_headers_and_link() {
    let sink = SmtpSink::start();
    let transport = MailTransport::from_url(&sink.url()).unwrap();

    transport.send(confirmation_message("nl")).await.unwrap();

    let received = sink.wait_for(1, ARRIVAL_TIMEOUT);
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, "news@example.com");
    assert_eq!(mail.to, ["jane@example.org"]);
    assert_eq!(mail.subject(), "Bevestig je aanmelding bij Example News");
    assert_eq!(
        mail.header("List-Unsubscribe").as_deref(),
        Some(list_unsubscribe_value(UNSUBSCRIBE_URL).as_str())
    );
    assert_eq!(
        mail.header("List-Unsubscribe").unwrap(),
        format!("<{UNSUBSCRIBE_URL}>")
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some(LIST_UNSUBSCRIBE_POST)
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").unwrap(),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(mail.header("Message-ID").as_deref(), Some(MESSAGE_ID));
    assert!(mail.header("Date").is_some());
    assert_eq!(mail.content_type(), "multipart/alternative");
    assert_eq!(mail.part_types(), ["text/plain", "text/html"]);
    assert_eq!(
        mail.links(),
        [CONFIRM_URL, UNSUBSCRIBE_URL, PREFERENCES_URL]
    );
    assert!(mail.text_body().contains("Aanmelding annuleren"));
    assert!(mail.html_body().contains(&html_escaped(UNSUBSCRIBE_URL)));
}

#[tokio::test]
async fn file_transport_writes_one_eml_file_with_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("data/mail");
    let transport = MailTransport::from_url(&format!("file://{}", mail_dir.display())).unwrap();

    transport.send(confirmation_message("en")).await.unwrap();

    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let stored = smtp_sink::ReceivedMail {
        from: String::new(),
        to: Vec::new(),
        raw: std::fs::read(&files[0]).unwrap(),
    };
    assert_eq!(
        stored.links(),
        [CONFIRM_URL, UNSUBSCRIBE_URL, PREFERENCES_URL]
    );
    assert_eq!(stored.header("Message-ID").as_deref(), Some(MESSAGE_ID));
}

#[tokio::test]
async fn temporary_smtp_refusal_is_transient_and_delivery_resumes() {
    let sink = SmtpSink::start();
    let transport = MailTransport::from_url(&sink.url()).unwrap();
    sink.set_rejecting(Rejection::Temporary);

    let error = transport
        .send(confirmation_message("en"))
        .await
        .unwrap_err();

    assert!(!error.is_permanent(), "{error}");
    assert!(error.to_string().contains("451"), "{error}");
    assert!(sink.messages().is_empty());

    sink.set_accepting();
    transport.send(confirmation_message("en")).await.unwrap();
    assert_eq!(sink.wait_for(1, ARRIVAL_TIMEOUT).len(), 1);
}

#[tokio::test]
async fn permanent_smtp_refusal_is_permanent() {
    let sink = SmtpSink::start();
    let transport = MailTransport::from_url(&sink.url()).unwrap();
    sink.set_rejecting(Rejection::Permanent);

    let error = transport
        .send(confirmation_message("en"))
        .await
        .unwrap_err();

    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("550"), "{error}");
}

#[tokio::test]
async fn a_refusal_quoting_the_recipient_is_reported_with_the_address_masked() {
    let sink = SmtpSink::start();
    let transport = MailTransport::from_url(&sink.url()).unwrap();
    sink.set_rejecting(Rejection::PermanentEchoingRecipient);

    let error = transport
        .send(confirmation_message("en"))
        .await
        .unwrap_err()
        .to_string();

    assert!(error.contains("550"), "{error}");
    assert!(
        error.contains("<j***@example.org>"),
        "the masked address stays for correlation: {error}"
    );
    assert!(!error.contains(recipient().as_str()), "{error}");
}

#[tokio::test]
async fn unreachable_smtp_server_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = MailTransport::from_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();

    let error = transport
        .send(confirmation_message("en"))
        .await
        .unwrap_err();

    assert!(!error.is_permanent(), "{error}");
}

/// Handlebars' HTML escaping, for comparing attribute values.
fn html_escaped(raw: &str) -> String {
    raw.replace('&', "&amp;").replace('=', "&#x3D;")
}
