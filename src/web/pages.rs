//! The public HTML pages (confirm, unsubscribe, preferences, …), rendered with handlebars
//! in strict mode in the visitor's locale.
//!
//! The built-in templates and strings (`page-templates/` in the source tree) are embedded
//! in the binary. An operator's directory overrides them file by file, under the same
//! names: `<dir>/<page>.hbs`, `<dir>/layout.hbs` (the shared partial every page wraps
//! itself in) and `<dir>/i18n/<locale>.json` (flat key → string, given to templates as
//! `t`).
//!
//! Everything is checked at load: each template must compile, every string file must have
//! exactly the keys of `en.json`, and every page must render in every locale with sample
//! data. A broken override then stops the service at start, naming the file, instead of
//! turning a visitor's click into an error page hours later.
//!
//! Data is always HTML-escaped: the templates use `{{…}}`, never `{{{…}}}`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde_json::{json, Map, Value};

use crate::templating::{describe_render_error, describe_syntax_error};
use crate::web::extract::locale::{self, SUPPORTED_LOCALES};

/// `{action_url}`: one button that confirms. A GET of this page changes nothing.
pub const CONFIRM: &str = "confirm";
/// `{types: [{id, name}], preferences_url}`.
pub const CONFIRMED: &str = "confirmed";
/// `{expired, signup_url}`.
pub const LINK_INVALID: &str = "link_invalid";
/// `{action_url, types: [{id, name}], cancel_signup, stop_requests, requests_blocked,
/// already_unsubscribed, resubscribe_action, manage_action}`. Never a preferences link.
pub const UNSUBSCRIBE: &str = "unsubscribe";
/// The same data as [`UNSUBSCRIBE`], after the POST.
pub const UNSUBSCRIBED: &str = "unsubscribed";
/// `{action_url, types: [{id, name, description, purpose, opted_in, status,
/// notice_version, notice_text}], saved, restricted, signups_blocked, rights_allowed,
/// export_action, erase_url, fresh_link_action}`.
pub const PREFERENCES: &str = "preferences";
/// `{action_url}`: one button that mails a preferences link. The same for every address.
pub const MANAGE: &str = "manage";
/// `{}`: "if we have your address, a link is on its way".
pub const LINK_SENT: &str = "link_sent";
/// `{action_url}`: export or erasure asked with an aged preferences link.
pub const FRESH_LINK_NEEDED: &str = "fresh_link_needed";
/// `{}`: the same page whatever state the address is in.
pub const SIGNUP_RECEIVED: &str = "signup_received";
/// `{status, error_key}`, with `error_key` one of [`ERROR_KEYS`].
pub const ERROR: &str = "error";
/// Asks "delete all my data?" before the self-service erasure.
pub const ERASE_CONFIRM: &str = "erase_confirm";
/// After a self-service erasure.
pub const ERASED: &str = "erased";

/// Every page [`Pages::render`] knows.
pub const PAGES: [&str; 13] = [
    CONFIRM,
    CONFIRMED,
    LINK_INVALID,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    PREFERENCES,
    MANAGE,
    LINK_SENT,
    FRESH_LINK_NEEDED,
    SIGNUP_RECEIVED,
    ERROR,
    ERASE_CONFIRM,
    ERASED,
];

/// The `error_key`s the error page has a message for; any other shows the `internal` one.
pub const ERROR_KEYS: [&str; 6] = [
    "bad_request",
    "not_found",
    "too_many_requests",
    "payload_too_large",
    "unavailable",
    "internal",
];

/// The partial every page wraps itself in; not a page of its own.
const LAYOUT: &str = "layout";
/// The resubscribe and "mail me a preferences link" forms of the unsubscribe pages.
const LINK_ACTIONS: &str = "link_actions";

/// The locale whose strings every other locale must match key for key, and the one shown
/// when a requested locale is unknown.
const REFERENCE_LOCALE: &str = "en";

const I18N_DIR: &str = "i18n";

#[derive(RustEmbed)]
#[folder = "page-templates/"]
struct BuiltinPages;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("cannot read the page templates folder {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read page file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("page file {origin} is not valid UTF-8")]
    NotUtf8 { origin: String },
    #[error("the built-in page file {origin} is missing from this build")]
    MissingBuiltin { origin: String },
    #[error("page template {origin} is not a known page; expected one of: {known}")]
    UnexpectedTemplate { origin: String, known: String },
    #[error("page strings {origin} are for an unsupported locale; supported: {supported}")]
    UnsupportedLocale { origin: String, supported: String },
    #[error("page template {origin} does not compile: {reason}")]
    Syntax { origin: String, reason: String },
    #[error("page strings {origin} are not a flat JSON object of strings: {reason}")]
    Strings { origin: String, reason: String },
    #[error("page strings {origin} lack keys that {reference} has: {keys}")]
    MissingStrings {
        origin: String,
        reference: String,
        keys: String,
    },
    #[error("page strings {origin} have keys that {reference} does not: {keys}")]
    UnexpectedStrings {
        origin: String,
        reference: String,
        keys: String,
    },
    #[error("there is no page named '{0}'")]
    UnknownPage(String),
    #[error("the data for page '{page}' must be a JSON object")]
    DataNotObject { page: String },
    #[error("cannot render page template {origin}: {reason}")]
    Render { origin: String, reason: String },
}

/// Where a file came from, so that an error points the operator at the right one.
#[derive(Clone, Debug)]
enum Origin {
    Builtin(String),
    Operator(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin(relative) => write!(f, "page-templates/{relative} (built in)"),
            Origin::Operator(path) => write!(f, "{}", path.display()),
        }
    }
}

struct Source {
    origin: Origin,
    text: String,
}

/// All pages, compiled, with their strings.
pub struct Pages {
    registry: Handlebars<'static>,
    /// Locale → `t`, a JSON object of strings.
    strings: BTreeMap<&'static str, Value>,
    /// Template name → file, so that a render error names the file to fix.
    origins: BTreeMap<String, String>,
    service_name: String,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("origins", &self.origins)
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

impl Pages {
    /// Loads the built-in pages and strings, then the operator's files from
    /// `templates_dir` over them, and checks that every page renders in every locale.
    pub fn load(templates_dir: Option<&Path>, service_name: &str) -> Result<Self, PageError> {
        let mut templates = builtin_templates()?;
        let mut string_files = builtin_strings()?;
        if let Some(dir) = templates_dir {
            templates.extend(operator_templates(dir)?);
            string_files.extend(operator_strings(dir)?);
        }
        let strings = parse_strings(&string_files)?;

        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        let mut origins = BTreeMap::new();
        for (name, source) in &templates {
            registry
                .register_template_string(name, &source.text)
                .map_err(|error| PageError::Syntax {
                    origin: source.origin.to_string(),
                    reason: describe_syntax_error(&error),
                })?;
            origins.insert(name.to_string(), source.origin.to_string());
        }

        let pages = Self {
            registry,
            strings,
            origins,
            service_name: service_name.to_string(),
        };
        pages.render_every_sample()?;
        Ok(pages)
    }

    /// Renders `page` in `locale` (an unknown locale gets English; `nl-BE` gets `nl`).
    /// `data` is the page's own data, a JSON object (or null for none); `lang`,
    /// `service_name` and the strings `t` are added to it.
    pub fn render(&self, page: &str, locale: &str, data: Value) -> Result<String, PageError> {
        if !PAGES.contains(&page) {
            return Err(PageError::UnknownPage(page.to_string()));
        }
        let mut data = match data {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => {
                return Err(PageError::DataNotObject {
                    page: page.to_string(),
                })
            }
        };
        let locale = locale::match_supported(locale).unwrap_or(REFERENCE_LOCALE);
        let strings = self
            .strings
            .get(locale)
            .or_else(|| self.strings.get(REFERENCE_LOCALE))
            // `load` parses a string file for every supported locale, so this is unreachable.
            .ok_or_else(|| PageError::Render {
                origin: format!("{I18N_DIR}/{locale}.json"),
                reason: "no strings were loaded for this locale".to_string(),
            })?;
        data.insert("lang".into(), Value::from(locale));
        data.insert(
            "service_name".into(),
            Value::from(self.service_name.as_str()),
        );
        data.insert("t".into(), strings.clone());

        self.registry
            .render(page, &Value::Object(data))
            .map_err(|error| {
                let template = error.template_name.as_deref().unwrap_or(page);
                PageError::Render {
                    origin: self
                        .origins
                        .get(template)
                        .cloned()
                        .unwrap_or_else(|| format!("{template}.hbs")),
                    reason: describe_render_error(&error),
                }
            })
    }

    /// Strict mode only catches a missing field when a render reaches it, so render each
    /// page's branches once now rather than in front of a visitor.
    fn render_every_sample(&self) -> Result<(), PageError> {
        for locale in SUPPORTED_LOCALES {
            for page in PAGES {
                for data in samples(page) {
                    self.render(page, locale, data)?;
                }
            }
        }
        Ok(())
    }
}

/// Data in the documented shape of each page, covering both sides of its conditions.
fn samples(page: &str) -> Vec<Value> {
    let types = json!([{ "id": "sample-type", "name": "Sample" }]);
    let url = "https://example.invalid/sample";
    match page {
        CONFIRM => vec![json!({ "action_url": url })],
        CONFIRMED => [json!(url), Value::Null]
            .into_iter()
            .map(|preferences_url| json!({ "types": types, "preferences_url": preferences_url }))
            .collect(),
        LINK_INVALID => vec![
            json!({ "expired": true, "signup_url": url }),
            json!({ "expired": false, "signup_url": null }),
        ],
        UNSUBSCRIBE | UNSUBSCRIBED => [(true, false), (false, true), (false, false)]
            .into_iter()
            .map(|(cancel_signup, stop_requests)| {
                let type_link = !cancel_signup && !stop_requests;
                json!({
                    "action_url": url,
                    "types": types,
                    "cancel_signup": cancel_signup,
                    "stop_requests": stop_requests,
                    "requests_blocked": cancel_signup,
                    "resubscribe_action": if type_link { json!(url) } else { Value::Null },
                    "manage_action": if stop_requests { Value::Null } else { json!(url) },
                    "already_unsubscribed": type_link,
                })
            })
            .collect(),
        PREFERENCES => [true, false]
            .into_iter()
            .map(|flag| {
                json!({
                    "action_url": url,
                    "types": [{
                        "id": "sample-type",
                        "name": "Sample",
                        "description": if flag { "A sample." } else { "" },
                        "purpose": "marketing",
                        "opted_in": flag,
                        "status": if flag { "opted_in" } else { "not_subscribed" },
                        "notice_version": "1",
                        "notice_text": if flag { "A sample notice." } else { "" },
                    }],
                    "saved": flag,
                    "restricted": flag,
                    "signups_blocked": flag,
                    "rights_allowed": flag,
                    "export_action": url,
                    "erase_url": url,
                    "fresh_link_action": url,
                })
            })
            .collect(),
        SIGNUP_RECEIVED | ERASED | LINK_SENT => vec![json!({})],
        MANAGE | FRESH_LINK_NEEDED => vec![json!({ "action_url": url })],
        ERASE_CONFIRM => vec![json!({ "action_url": url, "back_url": url })],
        ERROR => ERROR_KEYS
            .into_iter()
            .map(|error_key| json!({ "status": 400, "error_key": error_key }))
            .collect(),
        _ => Vec::new(),
    }
}

fn template_names() -> impl Iterator<Item = &'static str> {
    PAGES.into_iter().chain([LAYOUT, LINK_ACTIONS])
}

fn builtin_templates() -> Result<BTreeMap<String, Source>, PageError> {
    template_names()
        .map(|name| Ok((name.to_string(), builtin_file(&format!("{name}.hbs"))?)))
        .collect()
}

fn builtin_strings() -> Result<BTreeMap<String, Source>, PageError> {
    SUPPORTED_LOCALES
        .into_iter()
        .map(|locale| {
            let file = builtin_file(&format!("{I18N_DIR}/{locale}.json"))?;
            Ok((locale.to_string(), file))
        })
        .collect()
}

fn builtin_file(relative: &str) -> Result<Source, PageError> {
    let origin = Origin::Builtin(relative.to_string());
    let file = BuiltinPages::get(relative).ok_or_else(|| PageError::MissingBuiltin {
        origin: origin.to_string(),
    })?;
    let text = String::from_utf8(file.data.into_owned()).map_err(|_| PageError::NotUtf8 {
        origin: origin.to_string(),
    })?;
    Ok(Source { origin, text })
}

/// The operator's `<dir>/*.hbs`. A file that overrides no page is an error, because a
/// typo in its name would otherwise silently leave the built-in page in place.
fn operator_templates(dir: &Path) -> Result<BTreeMap<String, Source>, PageError> {
    let mut templates = BTreeMap::new();
    for (stem, path) in files_with_extension(dir, "hbs")? {
        if !template_names().any(|name| name == stem) {
            return Err(PageError::UnexpectedTemplate {
                origin: path.display().to_string(),
                known: template_names()
                    .map(|name| format!("{name}.hbs"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        templates.insert(stem, operator_file(path)?);
    }
    Ok(templates)
}

/// The operator's `<dir>/i18n/<locale>.json`; the folder is optional.
fn operator_strings(dir: &Path) -> Result<BTreeMap<String, Source>, PageError> {
    let i18n = dir.join(I18N_DIR);
    if !i18n.is_dir() {
        return Ok(BTreeMap::new());
    }
    let mut strings = BTreeMap::new();
    for (stem, path) in files_with_extension(&i18n, "json")? {
        if !SUPPORTED_LOCALES.contains(&stem.as_str()) {
            return Err(PageError::UnsupportedLocale {
                origin: path.display().to_string(),
                supported: SUPPORTED_LOCALES.join(", "),
            });
        }
        strings.insert(stem, operator_file(path)?);
    }
    Ok(strings)
}

/// (file stem, path) of the files directly in `dir` named `*.<extension>`.
fn files_with_extension(dir: &Path, extension: &str) -> Result<Vec<(String, PathBuf)>, PageError> {
    let read_dir_error = |source| PageError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        if !path.is_file() || path.extension().and_then(|e| e.to_str()) != Some(extension) {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            files.push((stem.to_string(), path.clone()));
        }
    }
    files.sort();
    Ok(files)
}

fn operator_file(path: PathBuf) -> Result<Source, PageError> {
    let bytes = std::fs::read(&path).map_err(|source| PageError::ReadFile {
        path: path.clone(),
        source,
    })?;
    let origin = Origin::Operator(path);
    let text = String::from_utf8(bytes).map_err(|_| PageError::NotUtf8 {
        origin: origin.to_string(),
    })?;
    Ok(Source { origin, text })
}

/// Parses each locale's strings and holds them to the reference locale's keys, so that a
/// string added to `en.json` but forgotten in `nl.json` fails at start, not on a page.
fn parse_strings(
    files: &BTreeMap<String, Source>,
) -> Result<BTreeMap<&'static str, Value>, PageError> {
    let mut parsed = BTreeMap::new();
    for locale in SUPPORTED_LOCALES {
        // The built-ins provide a file for every supported locale; overrides only replace.
        let Some(source) = files.get(locale) else {
            return Err(PageError::MissingBuiltin {
                origin: Origin::Builtin(format!("{I18N_DIR}/{locale}.json")).to_string(),
            });
        };
        let strings: BTreeMap<String, String> =
            serde_json::from_str(&source.text).map_err(|error| PageError::Strings {
                origin: source.origin.to_string(),
                reason: error.to_string(),
            })?;
        parsed.insert(locale, (source.origin.to_string(), strings));
    }

    if let Some((reference_origin, reference)) = parsed.get(REFERENCE_LOCALE) {
        let reference_keys: BTreeSet<&String> = reference.keys().collect();
        for (origin, strings) in parsed.values() {
            let keys: BTreeSet<&String> = strings.keys().collect();
            let join = |set: BTreeSet<&&String>| {
                set.into_iter()
                    .map(|key| key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let missing: BTreeSet<_> = reference_keys.difference(&keys).collect();
            if !missing.is_empty() {
                return Err(PageError::MissingStrings {
                    origin: origin.clone(),
                    reference: reference_origin.clone(),
                    keys: join(missing),
                });
            }
            let unexpected: BTreeSet<_> = keys.difference(&reference_keys).collect();
            if !unexpected.is_empty() {
                return Err(PageError::UnexpectedStrings {
                    origin: origin.clone(),
                    reference: reference_origin.clone(),
                    keys: join(unexpected),
                });
            }
        }
    }

    Ok(parsed
        .into_iter()
        .map(|(locale, (_, strings))| {
            let object: Map<String, Value> = strings
                .into_iter()
                .map(|(key, text)| (key, Value::String(text)))
                .collect();
            (locale, Value::Object(object))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_samples() {
        for page in PAGES {
            assert!(!samples(page).is_empty(), "{page} has no sample data");
        }
    }

    #[test]
    fn built_in_pages_load() {
        let pages = Pages::load(None, "Example").expect("built-in pages load");
        assert!(pages.render("nope", "en", json!({})).is_err());
        assert!(pages.render(CONFIRM, "en", json!([1])).is_err());
    }

    #[test]
    fn built_in_templates_never_triple_stash() {
        for name in template_names() {
            let source = builtin_file(&format!("{name}.hbs")).expect("built-in template");
            assert!(
                !source.text.contains("{{{"),
                "{name}.hbs writes unescaped data"
            );
        }
    }
}
