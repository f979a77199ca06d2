//! The user guide (book/) stays true to the code: every chapter is in SUMMARY.md and every
//! link between chapters resolves; every `serin …` command the book (and the README) shows is a
//! subcommand of the binary, with flags its `--help` lists; every `make` target exists in the
//! Makefile; every script a code block runs exists. No cluster: only `serin <cmd> --help`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const SERIN: &str = env!("CARGO_BIN_EXE_serin");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn book_src() -> PathBuf {
    root().join("book/src")
}

/// A Markdown file: its path as shown in messages, and its text.
struct Page {
    name: String,
    text: String,
}

/// Every `.md` file under book/src, by its path relative to it ('/'-separated).
fn chapters() -> Vec<Page> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<Page>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                let name = path
                    .strip_prefix(base)
                    .expect("under book/src")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.push(Page { name, text });
            }
        }
    }
    let mut pages = Vec::new();
    walk(&book_src(), &book_src(), &mut pages);
    pages
}

/// The book's chapters and the README, with the names messages show.
fn documents() -> Vec<Page> {
    let mut docs: Vec<Page> = chapters()
        .into_iter()
        .map(|p| Page {
            name: format!("book/src/{}", p.name),
            text: p.text,
        })
        .collect();
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    docs.push(Page {
        name: "README.md".into(),
        text: readme,
    });
    docs
}

/// One line of a document, with its 1-based number, and the language of the fenced code block
/// it is in (`None` outside code blocks).
struct Line<'a> {
    number: usize,
    text: &'a str,
    code: Option<&'a str>,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut fence: Option<(&str, &str)> = None; // (marker, language)
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => {
                let lang = trimmed[m.len()..].split([',', ' ']).next().unwrap_or("");
                fence = Some((m, lang.trim()));
                continue;
            }
            (Some((open, _)), Some(m)) if m == open && trimmed[m.len()..].trim().is_empty() => {
                fence = None;
                continue;
            }
            _ => {}
        }
        out.push(Line {
            number: i + 1,
            text: line,
            code: fence.map(|(_, lang)| lang),
        });
    }
    out
}

/// The inline code spans of a line of prose.
fn code_spans(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let close = "`".repeat(ticks);
        match after.find(&close) {
            Some(end) => {
                spans.push(after[..end].trim());
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    spans
}

/// Markdown links `[text](target)` of a line, outside inline code.
fn link_targets(line: &str) -> Vec<String> {
    let mut without_code = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            without_code.push(c);
        }
    }
    let mut out = Vec::new();
    let mut rest = without_code.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// mdBook's id of a heading: lower-case letters, digits, `_` and `-`; spaces become `-`.
fn heading_id(heading: &str) -> String {
    // Links in a heading count by their text only.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(i) = rest.find("](") {
        text.push_str(&rest[..i]);
        rest = rest[i + 2..].split_once(')').map_or("", |(_, r)| r);
    }
    text.push_str(rest);
    text.trim()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The heading ids of a chapter (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    lines(text)
        .iter()
        .filter(|l| l.code.is_none())
        .filter_map(|l| {
            let t = l.text.trim_start();
            let hashes = t.chars().take_while(|&c| c == '#').count();
            (hashes > 0 && t[hashes..].starts_with(' ')).then(|| heading_id(&t[hashes..]))
        })
        .collect()
}

#[test]
fn summary_lists_every_chapter_and_only_existing_ones() {
    let summary = std::fs::read_to_string(book_src().join("SUMMARY.md")).expect("SUMMARY.md");
    let mut listed = BTreeSet::new();
    let mut problems = Vec::new();
    for line in lines(&summary) {
        for target in link_targets(line.text) {
            let file = target.split('#').next().unwrap_or_default().to_string();
            if file.is_empty() {
                continue;
            }
            if !book_src().join(&file).is_file() {
                problems.push(format!(
                    "SUMMARY.md:{}: {file} does not exist in book/src",
                    line.number
                ));
            }
            if !listed.insert(file.clone()) {
                problems.push(format!(
                    "SUMMARY.md:{}: {file} is listed twice",
                    line.number
                ));
            }
        }
    }
    for page in chapters() {
        if page.name != "SUMMARY.md" && !listed.contains(&page.name) {
            problems.push(format!(
                "book/src/{} is not in SUMMARY.md, so the book does not show it",
                page.name
            ));
        }
    }
    assert!(listed.len() >= 10, "SUMMARY.md lists only {listed:?}");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn links_between_chapters_resolve() {
    let pages = chapters();
    let ids: BTreeMap<&str, BTreeSet<String>> = pages
        .iter()
        .map(|p| (p.name.as_str(), anchors(&p.text)))
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let dir = Path::new(&page.name).parent().unwrap_or(Path::new(""));
        for line in lines(&page.text).iter().filter(|l| l.code.is_none()) {
            for target in link_targets(line.text) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let at = format!("book/src/{}:{}", page.name, line.number);
                let name = if file.is_empty() {
                    page.name.clone()
                } else {
                    // Chapters link to each other by relative path; the rendered book has
                    // nothing outside book/src to link to.
                    let joined = dir.join(file);
                    if leaves(&joined) {
                        problems.push(format!(
                            "{at}: {target} leaves book/src, which the rendered book cannot link to; name the file in code instead"
                        ));
                        continue;
                    }
                    let path = root().join("book/src").join(&joined);
                    if !path.exists() {
                        problems.push(format!("{at}: the link target {target} does not exist"));
                        continue;
                    }
                    normalize(&joined)
                };
                checked += 1;
                if let (Some(anchor), Some(known)) = (anchor, ids.get(name.as_str()))
                    && !known.contains(anchor)
                {
                    problems.push(format!(
                        "{at}: {name} has no heading with the id #{anchor} (it has: {})",
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    assert!(checked >= 10, "found only {checked} links between chapters");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Whether a relative path climbs above its starting directory (`../x`, `a/../../x`).
fn leaves(path: &Path) -> bool {
    let mut depth = 0i32;
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// `a/../b.md` → `b.md`, '/'-separated.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// A command line shown in a document: where it is, and its text with continuations joined.
#[derive(Debug)]
struct Shown {
    at: String,
    command: String,
}

/// Code blocks whose lines are commands or terminal sessions.
fn is_shell_block(lang: &str) -> bool {
    matches!(lang, "sh" | "console" | "text" | "bash" | "shell" | "")
}

/// Commands starting with `program ` (after an optional `$ ` prompt): lines of shell-like
/// code blocks, with `\` continuations and indented synopsis lines (`    [--flag X]`) joined,
/// and inline code spans of the prose.
fn shown_commands(program: &str) -> Vec<Shown> {
    let starts = |s: &str| s == program || s.starts_with(&format!("{program} "));
    let mut out = Vec::new();
    for doc in documents() {
        let lines = lines(&doc.text);
        let mut i = 0;
        while i < lines.len() {
            let line = &lines[i];
            let at = format!("{}:{}", doc.name, line.number);
            match line.code {
                Some(lang) if is_shell_block(lang) => {
                    let text = line.text.trim_start();
                    let text = text.strip_prefix("$ ").unwrap_or(text);
                    if !starts(text) {
                        i += 1;
                        continue;
                    }
                    let indent = |s: &str| s.len() - s.trim_start().len();
                    let mut command = text.to_string();
                    while i + 1 < lines.len() && lines[i + 1].code.is_some() {
                        let next = lines[i + 1].text;
                        let continued = command.trim_end().ends_with('\\');
                        let synopsis = indent(next) > indent(line.text)
                            && next.trim_start().starts_with(['[', '-']);
                        if !continued && !synopsis {
                            break;
                        }
                        let joined = command.trim_end().trim_end_matches('\\').to_string();
                        command = format!("{joined} {}", next.trim());
                        i += 1;
                    }
                    out.push(Shown { at, command });
                }
                Some(_) => {}
                None => {
                    for span in code_spans(line.text) {
                        let span = span.strip_prefix("$ ").unwrap_or(span);
                        if starts(span) {
                            out.push(Shown {
                                at: at.clone(),
                                command: span.to_string(),
                            });
                        }
                    }
                }
            }
            i += 1;
        }
    }
    out
}

/// The command itself: what comes before a comment (` #`) or the first pipe, `&&`, `;` or
/// redirection outside quotes and the `[...]` groups of a synopsis.
fn own_part(command: &str) -> &str {
    let bytes = command.as_bytes();
    let after_space = |i: usize| i > 0 && bytes[i - 1].is_ascii_whitespace();
    let after_fd = |i: usize| i > 1 && bytes[i - 1].is_ascii_digit() && bytes[i - 2] == b' ';
    let (mut depth, mut quote) = (0i32, None::<u8>);
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'[') => depth += 1,
            (None, b']') => depth -= 1,
            (None, b'#') if after_space(i) => return &command[..i],
            (None, b';') if depth <= 0 => return &command[..i],
            // A pipe, `&&` or a redirection stands after a space (or `2>`); `text|json` and
            // `<name>` are words.
            (None, b'|' | b'&') if depth <= 0 && after_space(i) => return &command[..i],
            (None, b'>') if depth <= 0 && (after_space(i) || after_fd(i)) => return &command[..i],
            _ => {}
        }
    }
    command
}

/// The words of a command, with quotes removed (a quoted string is one word).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The options of a word: `--flag`, `--flag=value`, `[--flag`, `(--a|--b)`, `-n`.
fn flags_of(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in word.split(['|', '[', ']', '(', ')', ',']) {
        let piece = piece.split('=').next().unwrap_or_default();
        if let Some(long) = piece.strip_prefix("--") {
            let name: String = long
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() {
                out.push(format!("--{name}"));
            }
        } else if piece.len() == 2
            && piece.starts_with('-')
            && piece
                .chars()
                .nth(1)
                .is_some_and(|c| c.is_ascii_alphabetic())
        {
            out.push(piece.to_string());
        }
    }
    out
}

/// Whether `help` documents `flag` (`--repo <REPO>`, `-n, --namespace`, `--from-git`).
fn documents_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == '[')
            && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

#[test]
fn every_serin_command_shown_exists_with_its_flags() {
    let shown = shown_commands("serin");
    let mut helps: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut help_of = |sub: &str| -> Result<String, String> {
        helps
            .entry(sub.to_string())
            .or_insert_with(|| {
                let mut cmd = Command::new(SERIN);
                if !sub.is_empty() {
                    cmd.arg(sub);
                }
                let out = cmd.arg("--help").output().expect("run serin --help");
                if out.status.success() {
                    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
                }
            })
            .clone()
    };
    let mut problems = Vec::new();
    let mut subcommands = BTreeSet::new();
    let mut flags_checked = 0;
    for s in &shown {
        let words = words(own_part(&s.command));
        // The first word that is not an option names the subcommand; `<…>` is a placeholder.
        let sub = words[1..]
            .iter()
            .find(|w| !w.starts_with('-') && !w.starts_with('['))
            .filter(|w| !w.starts_with('<'))
            .cloned()
            .unwrap_or_default();
        let help = match help_of(&sub) {
            Ok(help) => help,
            Err(e) => {
                problems.push(format!(
                    "{}: `serin {sub}` is not a subcommand: {}\n    {}",
                    s.at,
                    e.lines().next().unwrap_or_default(),
                    s.command
                ));
                continue;
            }
        };
        subcommands.insert(sub.clone());
        for flag in words[1..].iter().flat_map(|w| flags_of(w)) {
            flags_checked += 1;
            if !documents_flag(&help, &flag) {
                problems.push(format!(
                    "{}: `serin {sub}` has no option {flag} (see `serin {sub} --help`)\n    {}",
                    s.at, s.command
                ));
            }
        }
    }
    // The extraction itself must keep finding what the book shows.
    for want in ["validate", "plan", "run", "crd", "approve", "status"] {
        assert!(
            subcommands.contains(want),
            "no `serin {want}` found in the book; found {subcommands:?}"
        );
    }
    assert!(flags_checked >= 50, "only {flags_checked} flags checked");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The Makefile's targets and the variables its recipes use (`$(NAME)`).
fn makefile() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(root().join("Makefile")).expect("Makefile");
    let mut targets = BTreeSet::new();
    let mut variables = BTreeSet::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("$(") {
            let after = &rest[i + 2..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            variables.insert(name);
            rest = after;
        }
        if line.starts_with(['\t', ' ', '#', '.']) {
            continue;
        }
        let Some((before, after)) = line.split_once(':') else {
            continue;
        };
        if after.starts_with('=') || before.contains(['=', '?', '$']) {
            continue;
        }
        targets.extend(before.split_whitespace().map(str::to_string));
    }
    (targets, variables)
}

#[test]
fn every_make_target_shown_exists() {
    let (targets, variables) = makefile();
    assert!(targets.contains("test"), "Makefile targets: {targets:?}");
    let mut problems = Vec::new();
    let mut seen = 0;
    for s in shown_commands("make") {
        for word in words(own_part(&s.command)).iter().skip(1) {
            if let Some((name, _)) = word.split_once('=') {
                if !variables.contains(name) {
                    problems.push(format!(
                        "{}: the Makefile does not use the variable {name}\n    {}",
                        s.at, s.command
                    ));
                }
            } else if !word.starts_with('-') {
                seen += 1;
                if !targets.contains(word.as_str()) {
                    problems.push(format!(
                        "{}: the Makefile has no target {word}\n    {}",
                        s.at, s.command
                    ));
                }
            }
        }
    }
    assert!(seen >= 3, "only {seen} make targets found in the book");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_script_a_code_block_runs_exists() {
    let mut problems = Vec::new();
    let mut seen = 0;
    for doc in documents() {
        for line in lines(&doc.text) {
            if !line.code.is_some_and(is_shell_block) {
                continue;
            }
            let text = line.text.trim_start();
            let text = text.strip_prefix("$ ").unwrap_or(text);
            // The program, after any `NAME=value` environment assignments.
            let first = words(own_part(text))
                .into_iter()
                .find(|w| !w.contains('='))
                .unwrap_or_default();
            let first = first.as_str();
            if ["tests/", "examples/", ".ci/", "deploy/"]
                .iter()
                .any(|p| first.starts_with(p))
            {
                seen += 1;
                if !root().join(first).exists() {
                    problems.push(format!(
                        "{}:{}: {first} does not exist",
                        doc.name, line.number
                    ));
                }
            }
        }
    }
    assert!(
        seen >= 3,
        "only {seen} scripts found in the book's code blocks"
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_extraction_reads_synopses_and_sessions() {
    assert_eq!(
        own_part("serin crd | kubectl apply --server-side -f -").trim(),
        "serin crd"
    );
    assert_eq!(
        own_part("serin hash [DIR] [--output text|json]   # note"),
        "serin hash [DIR] [--output text|json]   "
    );
    assert_eq!(
        flags_of("[--source"),
        vec!["--source".to_string()],
        "a synopsis group"
    );
    assert_eq!(flags_of("--poll=1m"), vec!["--poll".to_string()]);
    assert_eq!(flags_of("-n"), vec!["-n".to_string()]);
    assert!(flags_of("-").is_empty() && flags_of("apps/").is_empty());
    assert_eq!(
        words("serin approve t/p --author 'Pat <pat@example.com>'"),
        [
            "serin",
            "approve",
            "t/p",
            "--author",
            "Pat <pat@example.com>"
        ]
    );
    assert!(documents_flag("  -n, --namespace <NS>", "-n"));
    assert!(documents_flag("      --repo <REPO>", "--repo"));
    assert!(!documents_flag("      --repo-url <URL>", "--repo"));
    assert_eq!(heading_id("Metrics and health"), "metrics-and-health");
    assert_eq!(
        heading_id("Reviewing a change: `serin plan`"),
        "reviewing-a-change-serin-plan"
    );
    let doc = "```sh\nserin run --repo URL \\\n    --branch main\nserin plan [--base B]\n    [--head H]\n```\n";
    let found: Vec<_> = lines(doc)
        .iter()
        .map(|l| (l.number, l.code.map(str::to_string)))
        .collect();
    assert_eq!(found[0], (2, Some("sh".to_string())));
}
