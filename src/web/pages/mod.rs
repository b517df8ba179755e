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

use rust_embed::RustEmbed;
use serde_json::{Map, Value};

use crate::templating::{self, Family, Origin, Registry, Source};
use crate::web::extract::locale::{self, SUPPORTED_LOCALES};

mod console;
mod data;

pub use console::{
    AdminContact, AdminDeliveries, AdminErase, AdminFunnel, AdminLogin, AdminRecord, AdminSearch,
    AdminStats, Bar, BarRow, Chart, Choice, ConsoleNav, ContactPending, ContactType,
    ContactUnreachable, DeadLetter, FormErrors, FunnelSource, Signup, TimelineEvent, TypeStatsRow,
    WebhookRow,
};
pub use console::{AdminQuarantine, HeldRow};
pub use console::{
    ADMIN_CONTACT, ADMIN_DELIVERIES, ADMIN_ERASE, ADMIN_FUNNEL, ADMIN_LOGIN, ADMIN_QUARANTINE,
    ADMIN_RECORD, ADMIN_SEARCH, ADMIN_STATS, SIGNUP,
};
pub use data::Home;
pub use data::{
    CodeForm, Confirm, Confirmed, Embed, EraseConfirm, Erased, ErrorKey, ErrorPage,
    FreshLinkNeeded, LinkInvalid, LinkSent, Manage, Page, Preferences, Renew, SignupReceived,
    TypeName, Unsubscribe, UnsubscribeData, Unsubscribed,
};

// Each page's data is the type of the same name in `data`.

pub const CONFIRM: &str = "confirm";
pub const CONFIRMED: &str = "confirmed";
pub const LINK_INVALID: &str = "link_invalid";
pub const UNSUBSCRIBE: &str = "unsubscribe";
pub const UNSUBSCRIBED: &str = "unsubscribed";
pub const PREFERENCES: &str = "preferences";
pub const MANAGE: &str = "manage";
pub const LINK_SENT: &str = "link_sent";
pub const FRESH_LINK_NEEDED: &str = "fresh_link_needed";
pub const SIGNUP_RECEIVED: &str = "signup_received";
pub const ERROR: &str = "error";
pub const ERASE_CONFIRM: &str = "erase_confirm";
pub const ERASED: &str = "erased";
pub const RENEW: &str = "renew";
pub const HOME: &str = "home";

/// Every page [`Pages::render`] knows.
pub const PAGES: [&str; 25] = [
    SIGNUP,
    ADMIN_LOGIN,
    ADMIN_SEARCH,
    ADMIN_CONTACT,
    ADMIN_ERASE,
    ADMIN_STATS,
    ADMIN_DELIVERIES,
    ADMIN_FUNNEL,
    ADMIN_QUARANTINE,
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
    RENEW,
    ADMIN_RECORD,
    HOME,
];

/// The `error_key`s the error page has a message for; any other shows the `internal` one.
pub const ERROR_KEYS: [&str; ErrorKey::ALL.len()] = {
    let mut keys = [""; ErrorKey::ALL.len()];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = ErrorKey::ALL[i].as_str();
        i += 1;
    }
    keys
};

/// The partial every page wraps itself in; not a page of its own.
const LAYOUT: &str = "layout";
/// The resubscribe and "mail me a preferences link" forms of the unsubscribe pages.
const LINK_ACTIONS: &str = "link_actions";
/// The console's navigation and logout form, at the top of every console page.
const ADMIN_NAV: &str = "admin_nav";
/// The script of a page that may be framed: it tells the parent the page's height.
const EMBED: &str = "embed";
/// The hosted form's proof-of-work solver (`firewall::hosted_solver`), inline.
const SIGNUP_SOLVER: &str = "signup_solver";

/// The locale whose strings every other locale must match key for key, and the one shown
/// when a requested locale is unknown.
const REFERENCE_LOCALE: &str = "en";

const I18N_DIR: &str = "i18n";

static PAGE: Family = Family {
    name: "page",
    file_noun: "page file",
    builtin_folder: "page-templates",
};

#[derive(RustEmbed)]
#[folder = "page-templates/"]
struct BuiltinPages;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Reading, compiling or rendering a file.
    #[error(transparent)]
    Templating(#[from] templating::Error),
    #[error("the built-in page file {origin} is missing from this build")]
    MissingBuiltin { origin: String },
    #[error("page template {origin} is not a known page; expected one of: {known}")]
    UnexpectedTemplate { origin: String, known: String },
    #[error("page strings {origin} are for an unsupported locale; supported: {supported}")]
    UnsupportedLocale { origin: String, supported: String },
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
}

/// All pages, compiled, with their strings.
pub struct Pages {
    registry: Registry,
    /// Locale → `t`, a JSON object of strings.
    strings: BTreeMap<&'static str, Value>,
    service_name: String,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("registry", &self.registry)
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

        let mut registry = Registry::html(&PAGE);
        for (name, source) in &templates {
            registry.register(name, source)?;
        }
        // A partial, not data: its text goes into the page as it is, so that the page's
        // CSP hash of it holds (data would be escaped).
        registry.register(
            SIGNUP_SOLVER,
            &Source {
                origin: Origin::builtin(&PAGE, "../src/firewall/solver.js"),
                text: crate::firewall::hosted_solver::SCRIPT.to_string(),
            },
        )?;

        let pages = Self {
            registry,
            strings,
            service_name: service_name.to_string(),
        };
        pages.render_every_sample()?;
        Ok(pages)
    }

    /// Renders the page that `data` is for, in `locale`: what routes use.
    pub fn render_page<P: Page>(&self, locale: &str, data: &P) -> Result<String, PageError> {
        // Structs of strings, flags and lists: serializing cannot fail, but say so if it does.
        let data = serde_json::to_value(data).map_err(|error| {
            PageError::from(templating::Error::Render {
                family: &PAGE,
                origin: format!("{}.hbs", P::NAME),
                reason: error.to_string(),
            })
        })?;
        self.render(P::NAME, locale, data)
    }

    /// Renders `page` in `locale` (an unknown locale gets English; `nl-BE` gets `nl`).
    /// `data` is the page's own data, a JSON object (or null for none); `lang`,
    /// `service_name` and the strings `t` are added to it. Routes use the typed
    /// [`Self::render_page`]; this form is for data built by hand, as in tests.
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
            .ok_or_else(|| templating::Error::Render {
                family: &PAGE,
                origin: format!("{I18N_DIR}/{locale}.json"),
                reason: "no strings were loaded for this locale".to_string(),
            })?;
        data.insert("lang".into(), Value::from(locale));
        data.insert(
            "service_name".into(),
            Value::from(self.service_name.as_str()),
        );
        data.insert("t".into(), strings.clone());
        Ok(self.registry.render(page, &Value::Object(data))?)
    }

    /// Strict mode only catches a missing field when a render reaches it, so render each
    /// page's branches once now rather than in front of a visitor.
    fn render_every_sample(&self) -> Result<(), PageError> {
        let samples = data::samples();
        for locale in SUPPORTED_LOCALES {
            for (page, data) in &samples {
                self.render(page, locale, data.clone())?;
            }
        }
        Ok(())
    }
}

fn template_names() -> impl Iterator<Item = &'static str> {
    PAGES
        .into_iter()
        .chain([LAYOUT, LINK_ACTIONS, ADMIN_NAV, EMBED])
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
    Source::builtin::<BuiltinPages>(&PAGE, relative)?.ok_or_else(|| PageError::MissingBuiltin {
        origin: Origin::builtin(&PAGE, relative).to_string(),
    })
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
        templates.insert(stem, Source::operator(&PAGE, path)?);
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
        strings.insert(stem, Source::operator(&PAGE, path)?);
    }
    Ok(strings)
}

/// (file stem, path) of the files directly in `dir` named `*.<extension>`.
fn files_with_extension(dir: &Path, extension: &str) -> Result<Vec<(String, PathBuf)>, PageError> {
    let mut files = Vec::new();
    for path in templating::read_dir(&PAGE, dir)? {
        if !path.is_file() || path.extension().and_then(|e| e.to_str()) != Some(extension) {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            files.push((stem.to_string(), path.clone()));
        }
    }
    Ok(files)
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
                origin: Origin::builtin(&PAGE, &format!("{I18N_DIR}/{locale}.json")).to_string(),
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
    use serde_json::json;

    #[test]
    fn every_page_has_samples() {
        let samples = data::samples();
        for page in PAGES {
            assert!(
                samples.iter().any(|(name, _)| *name == page),
                "{page} has no sample data"
            );
        }
    }

    #[test]
    fn built_in_pages_load() {
        let pages = Pages::load(None, "Example").expect("built-in pages load");
        assert!(pages.render("nope", "en", json!({})).is_err());
        assert!(pages.render(CONFIRM, "en", json!([1])).is_err());
    }

    #[test]
    fn the_signup_form_carries_the_solver_exactly_as_its_csp_hash_was_made() {
        let pages = Pages::load(None, "Example").expect("built-in pages load");
        let with_solver = pages
            .render(
                SIGNUP,
                "en",
                json!({"action_url": "signup", "locale": "en", "types": [], "email": "",
                    "shown_types": "", "errors": {}, "suggestions": [], "target_top": false,
                    "challenge_url": "v1/signup-challenge", "rendered_at": "1.ab"}),
            )
            .unwrap();
        let script = crate::firewall::hosted_solver::SCRIPT;
        assert!(with_solver.contains(&format!("<script>{script}</script>")));
        assert!(with_solver.contains(r#"data-altcha-challenge="v1/signup-challenge""#));
        assert!(with_solver.contains(r#"name="rendered_at" value="1.ab""#));
        assert!(with_solver.contains("<noscript>"));
        let without = pages
            .render(
                SIGNUP,
                "en",
                json!({"action_url": "signup", "locale": "en", "types": [], "email": "",
                    "shown_types": "", "errors": {}, "suggestions": [], "target_top": false,
                    "challenge_url": null, "rendered_at": null}),
            )
            .unwrap();
        assert!(!without.contains("<script>") && !without.contains("altcha"));
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
