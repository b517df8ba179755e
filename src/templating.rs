//! What the mail templates and the page templates share: a template's origin, its source
//! (built in, or from the operator's overlay folder), a strict handlebars registry that
//! remembers which file each template came from, and the errors of all three, each
//! describing its position so that an operator's overlay error names the line to fix.
//!
//! What the two sets do with their files (file names, locales, parts, strings) stays in
//! `mail::templates` and `web::pages`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde::Serialize;

/// One set of templates, as messages name it.
#[derive(Debug)]
pub struct Family {
    /// "mail" or "page".
    pub name: &'static str,
    /// What one file of the set is called: the page set has string files too.
    pub file_noun: &'static str,
    /// The source folder the built-in files are embedded from.
    pub builtin_folder: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the {} templates folder {}: {source}", family.name, path.display())]
    ReadDir {
        family: &'static Family,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {} {}: {source}", family.file_noun, path.display())]
    ReadFile {
        family: &'static Family,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} {origin} is not valid UTF-8", family.file_noun)]
    NotUtf8 {
        family: &'static Family,
        origin: String,
    },
    #[error("{} template {origin} does not compile: {reason}", family.name)]
    Syntax {
        family: &'static Family,
        origin: String,
        reason: String,
    },
    #[error("cannot render {} template {origin}: {reason}", family.name)]
    Render {
        family: &'static Family,
        origin: String,
        reason: String,
    },
}

/// Where a file came from, so that an error points the operator at the right one.
#[derive(Clone, Debug)]
pub enum Origin {
    Builtin {
        family: &'static Family,
        relative: String,
    },
    Operator(PathBuf),
}

impl Origin {
    pub fn builtin(family: &'static Family, relative: &str) -> Self {
        Origin::Builtin {
            family,
            relative: relative.to_string(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin { family, relative } => {
                write!(f, "{}/{relative} (built in)", family.builtin_folder)
            }
            Origin::Operator(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A file's text with where it came from.
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

impl Source {
    /// The built-in file at `relative` in `E`, or `None` if this build lacks it.
    pub fn builtin<E: RustEmbed>(
        family: &'static Family,
        relative: &str,
    ) -> Result<Option<Self>, Error> {
        let Some(file) = E::get(relative) else {
            return Ok(None);
        };
        Self::decode(
            family,
            Origin::builtin(family, relative),
            file.data.into_owned(),
        )
        .map(Some)
    }

    /// The operator's file at `path`.
    pub fn operator(family: &'static Family, path: PathBuf) -> Result<Self, Error> {
        let bytes = std::fs::read(&path).map_err(|source| Error::ReadFile {
            family,
            path: path.clone(),
            source,
        })?;
        Self::decode(family, Origin::Operator(path), bytes)
    }

    fn decode(family: &'static Family, origin: Origin, bytes: Vec<u8>) -> Result<Self, Error> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Self { origin, text }),
            Err(_) => Err(Error::NotUtf8 {
                family,
                origin: origin.to_string(),
            }),
        }
    }
}

/// The paths of the entries directly in the operator's folder `dir`, sorted.
pub fn read_dir(family: &'static Family, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_dir_error = |source| Error::ReadDir {
        family,
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        paths.push(entry.map_err(read_dir_error)?.path());
    }
    paths.sort();
    Ok(paths)
}

/// A handlebars registry in strict mode, so that a template using data it was not given
/// fails instead of showing an empty field, and that knows each template's file.
pub struct Registry {
    family: &'static Family,
    handlebars: Handlebars<'static>,
    /// Template name → file, so that a render error names the file to fix.
    origins: BTreeMap<String, String>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("family", &self.family.name)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// With handlebars' HTML escaping: for HTML.
    pub fn html(family: &'static Family) -> Self {
        let mut handlebars = Handlebars::new();
        handlebars.set_strict_mode(true);
        Self {
            family,
            handlebars,
            origins: BTreeMap::new(),
        }
    }

    /// Without escaping: for subjects and plain text, or "A & B" would arrive as
    /// "A &amp; B".
    pub fn plain(family: &'static Family) -> Self {
        let mut registry = Self::html(family);
        registry
            .handlebars
            .register_escape_fn(handlebars::no_escape);
        registry
    }

    /// Compiles `source` as template `name`.
    pub fn register(&mut self, name: &str, source: &Source) -> Result<(), Error> {
        self.handlebars
            .register_template_string(name, &source.text)
            .map_err(|error| Error::Syntax {
                family: self.family,
                origin: source.origin.to_string(),
                reason: describe_syntax_error(&error),
            })?;
        self.origins
            .insert(name.to_string(), source.origin.to_string());
        Ok(())
    }

    pub fn has_template(&self, name: &str) -> bool {
        self.handlebars.has_template(name)
    }

    /// The file template `name` came from.
    pub fn origin(&self, name: &str) -> String {
        self.origins
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("{name}.hbs"))
    }

    /// Renders template `name`; an error names the file of the template (or partial)
    /// that failed.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String, Error> {
        self.handlebars.render(name, data).map_err(|error| {
            let failed = error.template_name.as_deref().unwrap_or(name);
            Error::Render {
                family: self.family,
                origin: self.origin(failed),
                reason: describe_render_error(&error),
            }
        })
    }
}

/// A template error's reason with its line and column, when handlebars knows them.
pub fn with_position(position: Option<(usize, usize)>, reason: &str) -> String {
    match position {
        Some((line, column)) => format!("line {line}, column {column}: {reason}"),
        None => reason.to_string(),
    }
}

/// A syntax error in a template file, with its position.
pub fn describe_syntax_error(error: &handlebars::TemplateError) -> String {
    with_position(error.pos(), &error.reason().to_string())
}

/// A render error, with its position.
pub fn describe_render_error(error: &handlebars::RenderError) -> String {
    with_position(
        error.line_no.zip(error.column_no),
        &error.reason().to_string(),
    )
}
