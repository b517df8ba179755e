//! What optin writes to disk holds addresses, so only its own user may read it: the
//! embedded store's file (a new one, and one an earlier release left readable by all),
//! and the folder of `.eml` files with every file in it, as the real outbox writes them.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::SecretString;
use support::app::{Backend, TestApp};

fn mode(path: impl AsRef<Path>) -> u32 {
    std::fs::metadata(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_file_and_the_mail_files_are_readable_by_their_owner_only() {
    let outside = tempfile::tempdir().unwrap();
    let mail_dir = outside.path().join("outgoing").join("mail");
    let mail_url = format!("file://{}", mail_dir.display());
    let mut app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.mail.url = SecretString::from(mail_url);
    })
    .await;
    assert_eq!(mode(app.store_url()), 0o600, "a new store file");

    assert_eq!(
        app.signup("ann@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(app.drain_outbox().await, 1);
    let mails: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].extension().and_then(|e| e.to_str()), Some("eml"));
    assert!(std::fs::read_to_string(&mails[0])
        .unwrap()
        .contains("ann@example.com"));
    assert_eq!(mode(&mails[0]), 0o600, "the .eml file");
    assert_eq!(mode(&mail_dir), 0o700, "the mail folder");
    assert_eq!(
        mode(outside.path().join("outgoing")),
        0o700,
        "a folder made for it"
    );

    // A store file left readable by everyone is tightened at the next start.
    app.stop().await;
    std::fs::set_permissions(app.store_url(), std::fs::Permissions::from_mode(0o644)).unwrap();
    app.start().await;
    assert_eq!(mode(app.store_url()), 0o600, "tightened at start");
    assert_eq!(
        app.signup("bob@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(app.drain_outbox().await, 1, "the store still works");
}
