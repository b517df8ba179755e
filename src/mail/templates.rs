//! Mail templates: a subject, an HTML part and a plain-text part per mail and locale,
//! rendered with handlebars in strict mode.
//!
//! The built-in templates (`email-templates/` in the source tree) are embedded in the
//! binary. An operator's `templates_dir` overrides them file by file. Files are named
//! `<locale>/<name>.<part>.hbs`, where `<part>` is `subject`, `html` or `txt`; a file
//! `<locale>/<type-id>/<name>.<part>.hbs` overrides that one part for one subscription type.
//!
//! Everything is compiled at load, so a broken operator template stops the service at
//! start instead of failing the first mail hours later.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;
use serde::Serialize;

use crate::templating::{self, Family, Origin, Registry, Source};

/// The double opt-in mail: "please confirm your subscription". Data: [`ConfirmationData`].
pub const CONFIRMATION_MAIL: &str = "confirmation";
/// The one reminder of a confirmation: the same link and code. Data: [`ConfirmationData`].
pub const REMINDER_MAIL: &str = "reminder";
/// "Here is your link to manage your subscriptions", asked for on a manage page.
/// Data: [`PreferencesLinkData`].
pub const PREFERENCES_LINK_MAIL: &str = "preferences_link";

/// "You're subscribed", with the consent receipt attached. Data: [`ReceiptData`].
pub const RECEIPT_MAIL: &str = "receipt";
/// "Do you still want …?": the one request to renew a consent that is about to lapse.
/// Data: [`RenewalData`].
pub const CONSENT_RENEWAL_MAIL: &str = "consent_renewal";

/// `<locale>/<type-id>/<name>.<part>.hbs` is as deep as a template file can sit.
const MAX_DIR_DEPTH: usize = 2;

static MAIL: Family = Family {
    name: "mail",
    file_noun: "mail template",
    builtin_folder: "email-templates",
};

#[derive(RustEmbed)]
#[folder = "email-templates/"]
struct BuiltinTemplates;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Reading, compiling or rendering a file.
    #[error(transparent)]
    Templating(#[from] templating::Error),
    #[error(
        "mail template {origin} is not named <locale>/<name>.<part>.hbs or \
         <locale>/<type-id>/<name>.<part>.hbs, with <part> one of subject, html, txt"
    )]
    UnexpectedName { origin: String },
    #[error(
        "mail '{name}' in locale '{locale}' has no {part} part: add {locale}/{name}.{part}.hbs"
    )]
    MissingPart {
        name: String,
        locale: String,
        part: &'static str,
    },
    #[error("mail '{name}' has no templates for the default locale '{locale}'")]
    MissingDefaultLocale { name: String, locale: String },
    #[error("there is no mail template named '{0}'")]
    UnknownMail(String),
    #[error("mail template {template} rendered an empty subject")]
    EmptySubject { template: String },
}

/// A rendered mail, ready to be composed into a MIME message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMail {
    /// One line, whitespace collapsed: safe to put in a header.
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The data the `confirmation` and `reminder` templates use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfirmationData {
    pub types: Vec<TypeSummary>,
    pub confirm_url: String,
    /// The six digits the "check your inbox" page asks for; they confirm too.
    pub code: String,
    /// A reminder follows if this is not confirmed (`signup.reminder_after_minutes`).
    pub reminds: bool,
    /// Cancels this pending signup.
    pub unsubscribe_url: String,
    /// The person's preference center: this mail goes to the address itself.
    pub preferences_url: String,
    pub valid_for_days: i64,
    /// RFC 3339.
    pub expires_at: String,
    pub service_name: String,
}

/// One requested subscription type, named in the mail's locale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypeSummary {
    pub id: String,
    pub name: String,
    pub description: String,
}

impl ConfirmationData {
    /// The data as JSON, for callers that want to change it before rendering.
    pub fn to_json(&self) -> serde_json::Value {
        // Strings, numbers and a list of them: serializing cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The data the `preferences_link` templates use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreferencesLinkData {
    pub preferences_url: String,
    /// Stops further preferences-link requests for the address.
    pub unsubscribe_url: String,
    pub valid_for_days: u32,
    pub service_name: String,
}

/// The data the `receipt` templates use: what the attached receipt states, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptData {
    /// The subscription type's name, as the receipt names it.
    pub type_name: String,
    /// True when this receipt renews a consent given before.
    pub renewed: bool,
    /// When the consent was given, for people: `2026-03-01 10:00 UTC`.
    pub consented_at: String,
    /// When it lapses unless renewed, likewise; `None`: until withdrawn.
    pub expires_at: Option<String>,
    pub notice_version: String,
    pub controller_name: String,
    pub controller_email: String,
    pub receipt_id: String,
    /// The hex SHA-256 of the attachment, as the provenance log records it.
    pub sha256: String,
    /// Where the keys that verify the receipt are published.
    pub keys_url: String,
    /// Withdraws this consent (the type's one-click unsubscribe link).
    pub unsubscribe_url: String,
    /// The person's preference center: this mail goes to the address itself.
    pub preferences_url: String,
    pub service_name: String,
}

/// The data the `consent_renewal` templates use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RenewalData {
    pub type_name: String,
    pub description: String,
    /// The page whose button renews the consent.
    pub renew_url: String,
    /// When the consent lapses unless renewed, for people: `2026-03-01 10:00 UTC`.
    pub expires_at: String,
    pub unsubscribe_url: String,
    pub service_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Subject,
    Html,
    Text,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Html, Part::Text];

    fn suffix(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "txt",
        }
    }

    fn from_suffix(suffix: &str) -> Option<Self> {
        Part::ALL.into_iter().find(|part| part.suffix() == suffix)
    }
}

/// A template's place: `<locale>/[<type-id>/]<name>.<part>.hbs`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TemplateKey {
    locale: String,
    subscription_type: Option<String>,
    name: String,
    part: Part,
}

impl TemplateKey {
    /// Parses a `/`-separated path relative to the templates folder.
    fn parse(relative: &str) -> Option<Self> {
        let segments: Vec<&str> = relative.split('/').collect();
        let (locale, subscription_type, file) = match segments.as_slice() {
            [locale, file] => (*locale, None, *file),
            [locale, type_id, file] => (*locale, Some(*type_id), *file),
            _ => return None,
        };
        let (name, part) = file.strip_suffix(".hbs")?.rsplit_once('.')?;
        let part = Part::from_suffix(part)?;
        let all_simple = [locale, name]
            .into_iter()
            .chain(subscription_type)
            .all(is_simple_name);
        all_simple.then(|| Self {
            locale: locale.to_string(),
            subscription_type: subscription_type.map(str::to_string),
            name: name.to_string(),
            part,
        })
    }

    fn registry_name(
        locale: &str,
        subscription_type: Option<&str>,
        name: &str,
        part: Part,
    ) -> String {
        match subscription_type {
            Some(type_id) => format!("{locale}/{type_id}/{name}.{}", part.suffix()),
            None => format!("{locale}/{name}.{}", part.suffix()),
        }
    }

    fn to_registry_name(&self) -> String {
        Self::registry_name(
            &self.locale,
            self.subscription_type.as_deref(),
            &self.name,
            self.part,
        )
    }
}

/// Locales, type ids and mail names are plain identifiers; anything else is a typo or a
/// stray file, and saying so beats silently ignoring it.
fn is_simple_name(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

type Sources = BTreeMap<TemplateKey, Source>;

/// All mail templates, compiled.
#[derive(Debug)]
pub struct MailTemplates {
    /// HTML parts: handlebars' HTML escaping on.
    html: Registry,
    /// Subjects and plain-text parts: no escaping.
    plain: Registry,
    /// For each mail name, the locales that have a complete set of parts.
    locales_by_mail: BTreeMap<String, BTreeSet<String>>,
    default_locale: String,
}

impl MailTemplates {
    /// Loads the built-in templates, then the operator's files from `templates_dir` over
    /// them, and compiles everything.
    pub fn load(templates_dir: Option<&Path>, default_locale: &str) -> Result<Self, TemplateError> {
        let mut sources = builtin_sources()?;
        if let Some(dir) = templates_dir {
            sources.extend(operator_sources(dir)?);
        }
        let locales_by_mail = complete_locales(&sources)?;
        require_default_locale(&locales_by_mail, default_locale)?;

        let mut html = Registry::html(&MAIL);
        let mut plain = Registry::plain(&MAIL);
        for (key, source) in &sources {
            let registry = if key.part == Part::Html {
                &mut html
            } else {
                &mut plain
            };
            registry.register(&key.to_registry_name(), source)?;
        }
        Ok(Self {
            html,
            plain,
            locales_by_mail,
            default_locale: default_locale.to_string(),
        })
    }

    /// Renders all three parts of mail `name`. An unknown locale falls back to its
    /// language (`nl-BE` to `nl`), then to the default locale; a part overridden for
    /// `subscription_type` wins over the locale's own. `data` is the mail's data type
    /// ([`ConfirmationData`], [`PreferencesLinkData`]) or JSON in the same shape.
    pub fn render(
        &self,
        name: &str,
        locale: &str,
        subscription_type: Option<&str>,
        data: &impl Serialize,
    ) -> Result<RenderedMail, TemplateError> {
        let locale = self.resolve_locale(name, locale)?;
        let render = |part| self.render_part(name, locale, subscription_type, part, data);
        let (subject_template, raw_subject) = render(Part::Subject)?;
        let subject = single_line(&raw_subject);
        if subject.is_empty() {
            return Err(TemplateError::EmptySubject {
                template: subject_template,
            });
        }
        Ok(RenderedMail {
            subject,
            html: render(Part::Html)?.1,
            text: render(Part::Text)?.1,
        })
    }

    /// The locales that can render mail `name`, for diagnostics and tests.
    pub fn locales(&self, name: &str) -> Vec<String> {
        self.locales_by_mail
            .get(name)
            .map(|locales| locales.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn resolve_locale<'a>(&'a self, name: &str, requested: &str) -> Result<&'a str, TemplateError> {
        let locales = self
            .locales_by_mail
            .get(name)
            .ok_or_else(|| TemplateError::UnknownMail(name.to_string()))?;
        let language = requested
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let found = [requested, language.as_str(), self.default_locale.as_str()]
            .into_iter()
            .find_map(|candidate| locales.get(candidate))
            .map(String::as_str);
        // `load` refuses template sets whose mails lack the default locale.
        found.ok_or_else(|| TemplateError::MissingDefaultLocale {
            name: name.to_string(),
            locale: self.default_locale.clone(),
        })
    }

    /// Returns the file of the template used (for error messages) and its output.
    fn render_part(
        &self,
        name: &str,
        locale: &str,
        subscription_type: Option<&str>,
        part: Part,
        data: &impl Serialize,
    ) -> Result<(String, String), TemplateError> {
        let registry = if part == Part::Html {
            &self.html
        } else {
            &self.plain
        };
        let type_specific = subscription_type
            .map(|type_id| TemplateKey::registry_name(locale, Some(type_id), name, part))
            .filter(|template| registry.has_template(template));
        let template =
            type_specific.unwrap_or_else(|| TemplateKey::registry_name(locale, None, name, part));
        let output = registry.render(&template, data)?;
        Ok((registry.origin(&template), output))
    }
}

fn builtin_sources() -> Result<Sources, TemplateError> {
    let mut sources = Sources::new();
    for relative in BuiltinTemplates::iter().filter(|path| path.ends_with(".hbs")) {
        let key = TemplateKey::parse(&relative).ok_or_else(|| TemplateError::UnexpectedName {
            origin: Origin::builtin(&MAIL, &relative).to_string(),
        })?;
        // `iter` only yields names that `get` can find; treat a miss like a missing file.
        if let Some(source) = Source::builtin::<BuiltinTemplates>(&MAIL, &relative)? {
            sources.insert(key, source);
        }
    }
    Ok(sources)
}

/// Reads every `.hbs` file under `dir`, at most `MAX_DIR_DEPTH` folders deep.
fn operator_sources(dir: &Path) -> Result<Sources, TemplateError> {
    let mut files = Vec::new();
    collect_hbs_files(dir, &[], &mut files)?;
    let mut sources = Sources::new();
    for (relative, path) in files {
        let key = TemplateKey::parse(&relative).ok_or_else(|| TemplateError::UnexpectedName {
            origin: Origin::Operator(path.clone()).to_string(),
        })?;
        sources.insert(key, Source::operator(&MAIL, path)?);
    }
    Ok(sources)
}

/// Collects (`/`-joined relative path, full path) of `.hbs` files.
fn collect_hbs_files(
    dir: &Path,
    parents: &[String],
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), TemplateError> {
    for path in templating::read_dir(&MAIL, dir)? {
        let Some(file_name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let segments: Vec<String> = parents.iter().cloned().chain([file_name.clone()]).collect();
        if path.is_dir() {
            if parents.len() < MAX_DIR_DEPTH {
                collect_hbs_files(&path, &segments, files)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "hbs") {
            files.push((segments.join("/"), path));
        }
    }
    Ok(())
}

/// Every locale that has any template for a mail must have all of its locale-wide parts,
/// so that a per-type override (which may cover one part) always has something to fall
/// back on.
fn complete_locales(
    sources: &Sources,
) -> Result<BTreeMap<String, BTreeSet<String>>, TemplateError> {
    let mut locales_by_mail: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in sources.keys() {
        locales_by_mail
            .entry(key.name.clone())
            .or_default()
            .insert(key.locale.clone());
    }
    for (name, locales) in &locales_by_mail {
        for locale in locales {
            for part in Part::ALL {
                let base = TemplateKey {
                    locale: locale.clone(),
                    subscription_type: None,
                    name: name.clone(),
                    part,
                };
                if !sources.contains_key(&base) {
                    return Err(TemplateError::MissingPart {
                        name: name.clone(),
                        locale: locale.clone(),
                        part: part.suffix(),
                    });
                }
            }
        }
    }
    Ok(locales_by_mail)
}

/// Every mail must render in the default locale, since that is where others fall back to.
fn require_default_locale(
    locales_by_mail: &BTreeMap<String, BTreeSet<String>>,
    default_locale: &str,
) -> Result<(), TemplateError> {
    let lacking = locales_by_mail
        .iter()
        .find(|(_, locales)| !locales.contains(default_locale));
    match lacking {
        Some((name, _)) => Err(TemplateError::MissingDefaultLocale {
            name: name.clone(),
            locale: default_locale.to_string(),
        }),
        None => Ok(()),
    }
}

/// Subjects go into a header: one line, no surrounding whitespace.
fn single_line(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locale_wide_and_per_type_file_names() {
        let key = TemplateKey::parse("nl/confirmation.subject.hbs").unwrap();
        assert_eq!(
            (key.locale.as_str(), key.subscription_type, key.part),
            ("nl", None, Part::Subject)
        );
        let key = TemplateKey::parse("en/blog-updates/confirmation.txt.hbs").unwrap();
        assert_eq!(key.subscription_type.as_deref(), Some("blog-updates"));
        assert_eq!(key.part, Part::Text);
    }

    #[test]
    fn rejects_misnamed_files() {
        for name in [
            "confirmation.html.hbs",
            "en/confirmation.text.hbs",
            "en/confirmation.hbs",
            "en/a/b/confirmation.html.hbs",
            "en/.html.hbs",
            "e n/confirmation.html.hbs",
        ] {
            assert!(
                TemplateKey::parse(name).is_none(),
                "{name} should be rejected"
            );
        }
    }

    #[test]
    fn subject_becomes_one_line() {
        assert_eq!(
            single_line("\n  Confirm\r\n your  signup \n"),
            "Confirm your signup"
        );
    }
}
