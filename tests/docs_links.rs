//! The documentation holds together: every relative link in `README.md` and
//! `docs/**/*.md` leads to a file that exists, every `#anchor` to a heading of its
//! Markdown file (by GitHub's slug rules), every page of `docs/` is listed in its index,
//! and the README stays a front door of at most 250 lines. External `http(s)` links are
//! not fetched: the test needs no network and checks only what this repository controls.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

const README_MAX_LINES: usize = 250;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md` and every Markdown file under `docs/`, sorted.
fn documentation_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", folder.display()));
        for entry in entries {
            let path = entry.expect("a readable folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1. A fence is
/// three or more backticks or tildes; it closes on a line of the same character at
/// least as long.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut open_fence: Option<(char, usize)> = None;
    let mut prose = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence = ['`', '~'].into_iter().find_map(|mark| {
            let run = trimmed.chars().take_while(|&c| c == mark).count();
            (run >= 3).then_some((mark, run))
        });
        match (open_fence, fence) {
            (None, Some(opening)) => open_fence = Some(opening),
            (Some((mark, length)), Some((closing, run)))
                if closing == mark
                    && run >= length
                    && trimmed.trim_start_matches(mark).trim().is_empty() =>
            {
                open_fence = None;
            }
            (None, None) => prose.push((index + 1, line)),
            (Some(_), _) => {}
        }
    }
    prose
}

/// The line without its code spans: text between backticks is code, never a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + run..];
        let closing = "`".repeat(run);
        if let Some(end) = after.find(&closing) {
            rest = &after[end + run..];
        } else {
            // An unmatched run is literal text.
            out.push_str(&rest[start..start + run]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The index just past the bracket or parenthesis that closes the one at `open`.
fn closing(bytes: &[u8], open: usize, (left, right): (u8, u8)) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b if b == left => depth += 1,
            b if b == right => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The destinations of the inline links `[text](destination "title")` and of the
/// reference definitions `[label]: destination` on one line of prose.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let bytes = line.as_bytes();
    let mut targets = Vec::new();
    if let Some(definition) = line.trim_start().strip_prefix('[') {
        if let Some((_, destination)) = definition.split_once("]:") {
            if let Some(target) = destination.split_whitespace().next() {
                targets.push(target.trim_matches(['<', '>']).to_string());
            }
            return targets;
        }
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] != b'[' {
            i += 1;
            continue;
        }
        let Some(after_text) = closing(bytes, i, (b'[', b']')) else {
            break;
        };
        if bytes.get(after_text) != Some(&b'(') {
            i += 1;
            continue;
        }
        let Some(after_destination) = closing(bytes, after_text, (b'(', b')')) else {
            break;
        };
        let inside = line[after_text + 1..after_destination - 1].trim();
        let target = match inside.strip_prefix('<') {
            Some(bracketed) => bracketed.split('>').next().unwrap_or_default(),
            None => inside.split_whitespace().next().unwrap_or_default(),
        };
        targets.push(target.to_string());
        // The link text may hold an image link of its own: look inside it too.
        i += 1;
    }
    targets
}

/// GitHub's anchor for a heading: its text lower-cased, every space a `-`, and every
/// character dropped that is not a letter, a digit, `-` or `_`. Link syntax in the
/// heading counts by its text only.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` shows as `text`.
    while let Some(start) = rest.find('[') {
        text.push_str(&rest[..start]);
        let bytes = rest.as_bytes();
        match closing(bytes, start, (b'[', b']')) {
            Some(end) if bytes.get(end) == Some(&b'(') => {
                text.push_str(&rest[start + 1..end - 1]);
                let after = closing(bytes, end, (b'(', b')')).unwrap_or(rest.len());
                rest = &rest[after..];
            }
            _ => {
                text.push('[');
                rest = &rest[start + 1..];
            }
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a Markdown text offers: its ATX headings' slugs, a repeated slug
/// numbered `-1`, `-2`, … as GitHub does.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&level) || line.len() - trimmed.len() > 3 {
            continue;
        }
        let rest = &trimmed[level..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        let title = rest.trim().trim_end_matches('#').trim_end();
        let base = slug(title);
        let count = seen.entry(base.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// `a/../b` as `b`, so that a link may climb out of `docs/` and back.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with the relative links of one file, each as `file:line: …`.
fn broken_links(root: &Path, file: &Path, checked: &mut usize) -> Vec<String> {
    let text = read(file);
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut problems = Vec::new();
    for (number, line) in prose_lines(&text) {
        for target in link_targets(line) {
            if is_external(&target) {
                continue;
            }
            *checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let destination = if path.is_empty() {
                file.to_path_buf()
            } else if let Some(from_root) = path.strip_prefix('/') {
                root.join(from_root)
            } else {
                normalized(&file.parent().unwrap_or(root).join(path))
            };
            if !destination.exists() {
                problems.push(format!("{shown}:{number}: `{target}`: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if destination.extension().is_none_or(|ext| ext != "md") {
                // Anchors into source files (`#L10`) name lines, not headings.
                continue;
            }
            if !anchors(&read(&destination)).contains(anchor) {
                problems.push(format!(
                    "{shown}:{number}: `{target}`: no heading with the anchor `#{anchor}`"
                ));
            }
        }
    }
    problems
}

/// Every problem in the documentation under `root`, and how many links were checked.
fn check_documentation(root: &Path) -> (Vec<String>, usize) {
    let mut checked = 0;
    let problems = documentation_files(root)
        .iter()
        .flat_map(|file| broken_links(root, file, &mut checked))
        .collect();
    (problems, checked)
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = repository();
    let (problems, checked) = check_documentation(&root);
    assert!(
        problems.is_empty(),
        "{} broken links:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The README links into docs/ and the pages link to each other: a checker that
    // found nothing to check would be checking nothing.
    assert!(checked >= 50, "only {checked} relative links found");
}

#[test]
fn the_readme_is_a_front_door_of_at_most_250_lines() {
    let lines = read(&repository().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; move detail into docs/ (at most {README_MAX_LINES})"
    );
}

#[test]
fn every_docs_page_is_listed_in_the_docs_index() {
    let root = repository();
    let docs = root.join("docs");
    let index = read(&docs.join("README.md"));
    let listed: BTreeSet<PathBuf> = prose_lines(&index)
        .into_iter()
        .flat_map(|(_, line)| link_targets(line))
        .filter(|target| !is_external(target))
        .map(|target| normalized(&docs.join(target.split('#').next().unwrap_or_default())))
        .collect();
    let unlisted: Vec<String> = documentation_files(&root)
        .into_iter()
        .filter(|file| file.starts_with(&docs) && *file != docs.join("README.md"))
        .filter(|file| !listed.contains(file))
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        unlisted.is_empty(),
        "pages missing from docs/README.md: {unlisted:?}"
    );
}

// The checker itself, on documentation made for the purpose.

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("a folder");
    std::fs::write(path, text).expect("a written file");
}

#[test]
fn a_missing_file_and_a_missing_heading_are_both_reported() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let root = root.path();
    write(
        root,
        "README.md",
        "# Title\n\nSee [the guide](docs/guide.md#setting-up), [gone](docs/gone.md),\n\
         [a wrong anchor](docs/guide.md#tear-down) and [here](#title).\n",
    );
    write(
        root,
        "docs/guide.md",
        "# Guide\n\n## Setting up\n\nBack to [the start](../README.md#nowhere).\n",
    );
    let (problems, checked) = check_documentation(root);
    assert_eq!(checked, 5);
    assert_eq!(
        problems,
        [
            "README.md:3: `docs/gone.md`: no such file",
            "README.md:4: `docs/guide.md#tear-down`: no heading with the anchor `#tear-down`",
            "docs/guide.md:5: `../README.md#nowhere`: no heading with the anchor `#nowhere`",
        ]
    );
}

#[test]
fn links_in_code_and_external_links_are_not_checked() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let root = root.path();
    write(
        root,
        "README.md",
        "# Title\n\n```md\n[in a fence](missing.md)\n```\n\n~~~\n[tilde fence](missing.md)\n~~~\n\n\
         Inline `[code](missing.md)` and [out](https://example.com/missing.md).\n",
    );
    std::fs::create_dir_all(root.join("docs")).expect("a folder");
    assert_eq!(check_documentation(root), (Vec::new(), 0));
}

#[test]
fn targets_are_read_as_markdown_reads_them() {
    assert_eq!(
        link_targets(r#"[a `b`](x.md#c "title") and [`c`](<y z.md>) and \[not](n.md)"#),
        ["x.md#c", "y z.md"]
    );
    assert_eq!(link_targets("[label]: docs/a.md  \"t\""), ["docs/a.md"]);
    assert_eq!(
        link_targets("[![badge](img.svg)](page.md)"),
        ["page.md", "img.svg"]
    );
    assert!(link_targets("a [bracket] and (parens)").is_empty());
}

#[test]
fn anchors_follow_githubs_slug_rules() {
    let text = "# The HTTP interface, in brief\n## `server.public_url` must be https\n\
                ## Art. 6(1): lawful basis\n## Retention\n## Retention\n\
                ## See [Webhooks](webhooks.md) too\n    # indented code\n## Ünïcode & more!\n";
    let expected = [
        "art-61-lawful-basis",
        "retention",
        "retention-1",
        "see-webhooks-too",
        "serverpublic_url-must-be-https",
        "the-http-interface-in-brief",
        "ünïcode--more",
    ];
    assert_eq!(
        anchors(text),
        expected
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    );
}
