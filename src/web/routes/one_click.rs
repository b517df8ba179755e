//! Recognizes the RFC 8058 one-click body `List-Unsubscribe=One-Click`, sent as
//! `application/x-www-form-urlencoded` or `multipart/form-data`.

use std::convert::Infallible;

use actix_web::web::Bytes;

const FIELD: &str = "List-Unsubscribe";
const VALUE: &str = "One-Click";

/// True when the body is the one-click request a mail client sends.
pub async fn is_one_click(content_type: Option<&str>, body: &Bytes) -> bool {
    let content_type = content_type.unwrap_or("");
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        multipart_is_one_click(content_type, body.clone()).await
    } else {
        urlencoded_has_field(body)
    }
}

/// Reads a form field from a urlencoded body (for the page's own checkboxes too).
pub fn urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn urlencoded_has_field(body: &[u8]) -> bool {
    urlencoded_field(body, FIELD).is_some_and(|v| v == VALUE)
}

/// Looks for a part named `List-Unsubscribe` (in any case) whose content is `One-Click`.
/// A body that stops parsing counts for what was read before: a client that sends the
/// field and then garbage still asked to unsubscribe.
async fn multipart_is_one_click(content_type: &str, body: Bytes) -> bool {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return false;
    };
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if !field
            .name()
            .is_some_and(|name| name.eq_ignore_ascii_case(FIELD))
        {
            continue;
        }
        if field.text().await.is_ok_and(|text| text.trim() == VALUE) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// The body is in memory, so the parse never waits: poll it once.
    fn one_click_now(content_type: &str, body: &[u8]) -> bool {
        is_one_click(Some(content_type), &Bytes::copy_from_slice(body))
            .now_or_never()
            .expect("an in-memory body parses without waiting")
    }

    #[test]
    fn urlencoded_one_click_is_recognized() {
        let form = "application/x-www-form-urlencoded";
        assert!(one_click_now(form, b"List-Unsubscribe=One-Click"));
        assert!(!one_click_now(form, b""));
        assert!(!one_click_now(form, b"List-Unsubscribe=Other"));
    }

    #[test]
    fn multipart_one_click_is_recognized() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(one_click_now(
            "multipart/form-data; boundary=XyZ",
            body.as_bytes()
        ));
        let other = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(!one_click_now(
            "multipart/form-data; boundary=XyZ",
            other.as_bytes()
        ));
    }

    #[test]
    fn a_quoted_boundary_and_other_fields_first_are_understood() {
        let body = "--a:b c\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
                    --a:b c\r\nContent-Disposition: form-data; name=\"list-unsubscribe\"\r\n\r\n\
                    One-Click\r\n--a:b c--\r\n";
        assert!(one_click_now(
            "Multipart/Form-Data; boundary=\"a:b c\"",
            body.as_bytes()
        ));
        assert!(
            !one_click_now("multipart/form-data; boundary=\"a:b d\"", body.as_bytes()),
            "another boundary finds no parts"
        );
        assert!(
            !one_click_now("multipart/form-data", body.as_bytes()),
            "no boundary, no parts"
        );
    }

    #[test]
    fn a_multipart_value_other_than_one_click_is_not_one_click() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click-Not\r\n--XyZ--\r\n";
        assert!(!one_click_now(
            "multipart/form-data; boundary=XyZ",
            body.as_bytes()
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(ct in ".{0,80}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = one_click_now(&ct, &body);
            let _ = one_click_now("multipart/form-data; boundary=a", &body);
        }
    }
}
