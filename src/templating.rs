//! What the mail templates and the page templates share: describing a template error
//! with its position, so that an operator's overlay error names the line to fix.

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
