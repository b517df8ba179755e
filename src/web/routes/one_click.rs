//! Recognizes the RFC 8058 one-click body `List-Unsubscribe=One-Click`, sent as
//! `application/x-www-form-urlencoded` or `multipart/form-data`.

const FIELD: &str = "List-Unsubscribe";
const VALUE: &str = "One-Click";

/// True when the body is the one-click request a mail client sends.
pub fn is_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        boundary(&content_type).is_some_and(|b| multipart_has_field(body, &b))
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

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').map(str::trim).find_map(|param| {
        let value = param.strip_prefix("boundary=")?;
        let value = value.trim_matches('"');
        (!value.is_empty() && value.len() <= 200).then(|| value.to_string())
    })
}

/// Looks for a part named `List-Unsubscribe` whose content is `One-Click`. The boundary
/// is matched case-insensitively because the content type was lower-cased.
fn multipart_has_field(body: &[u8], boundary: &str) -> bool {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let lowered = text.to_ascii_lowercase();
    lowered
        .split(&delimiter)
        .zip(split_like(&text, &lowered, &delimiter))
        .any(|(_, part)| part_is_one_click(part))
}

/// Splits `original` at the same places `lowered` splits at `delimiter`.
fn split_like<'a>(original: &'a str, lowered: &str, delimiter: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (index, _) in lowered.match_indices(delimiter) {
        parts.push(&original[start..index]);
        start = index + delimiter.len();
    }
    parts.push(&original[start..]);
    parts
}

fn part_is_one_click(part: &str) -> bool {
    let Some((headers, content)) = part
        .split_once("\r\n\r\n")
        .or_else(|| part.split_once("\n\n"))
    else {
        return false;
    };
    let names_field = headers.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("content-disposition:")
            && line.contains("form-data")
            && line.contains(&format!("name=\"{}\"", FIELD.to_ascii_lowercase()))
    });
    names_field && content.trim_end_matches(['\r', '\n', '-']).trim() == VALUE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_one_click_is_recognized() {
        assert!(is_one_click(
            Some("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=One-Click"
        ));
        assert!(!is_one_click(
            Some("application/x-www-form-urlencoded"),
            b""
        ));
        assert!(!is_one_click(
            Some("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=Other"
        ));
    }

    #[test]
    fn multipart_one_click_is_recognized() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(is_one_click(
            Some("multipart/form-data; boundary=XyZ"),
            body.as_bytes()
        ));
        let other = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(!is_one_click(
            Some("multipart/form-data; boundary=XyZ"),
            other.as_bytes()
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(ct in ".{0,80}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = is_one_click(Some(&ct), &body);
            let _ = is_one_click(Some("multipart/form-data; boundary=a"), &body);
        }
    }
}
