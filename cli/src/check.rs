//! `warden check`'s facts: the effective grants of a policy ([`grant_list`]), and what a
//! module's imports show it cannot use (the lint; docs/check.md has the rules). The binary
//! renders them.

use std::fmt::Write;
use warden::Policy;
use warden::manifest::{Access, StdinMode};

/// One line of `warden check --json`: a grant, a grant left unused, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `fs`, `env`, `stdio`, `clock`, `random`, `net`, `http`, `secret`, `import`, …
    pub(crate) capability: String,
    /// What the grant or the refusal is about: a guest path, a URL, a name, a section.
    pub(crate) target: String,
    pub(crate) reason: String,
}

impl Finding {
    pub(crate) fn new(capability: &str, target: &str, reason: impl Into<String>) -> Finding {
        Finding {
            capability: capability.to_owned(),
            target: target.to_owned(),
            reason: reason.into(),
        }
    }

    /// `{"capability": …, "target": …, "reason": …}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "capability": self.capability,
            "target": self.target,
            "reason": self.reason,
        })
    }
}

/// The grants of `policy`, one [`Finding`] each, as `warden check --json` lists them (the
/// `allow` rows of `warden check`'s table; limits are not grants).
pub fn grant_list(policy: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    for f in &policy.files {
        let access = match f.access {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        };
        out.push(Finding::new(
            "fs",
            &f.guest,
            format!("{access} grant of {}", f.host.display()),
        ));
    }
    for e in &policy.env {
        out.push(Finding::new("env", &e.name, "declared in [env]"));
    }
    if policy.stdio.stdin == StdinMode::Inherit {
        out.push(Finding::new("stdio", "stdin", "stdin = \"inherit\""));
    }
    if policy.clocks.wall {
        out.push(Finding::new("clock", "wall", "[clocks] wall = true"));
    }
    if policy.clocks.monotonic {
        out.push(Finding::new(
            "clock",
            "monotonic",
            "[clocks] monotonic = true",
        ));
    }
    if policy.random.secure {
        out.push(Finding::new("random", "secure", "[random] secure = true"));
    }
    for n in &policy.network {
        out.push(Finding::new("net", n, "[network] connect entry"));
    }
    for l in &policy.listen {
        out.push(Finding::new("net", &l.entry, "[network] listen entry"));
    }
    for u in &policy.udp {
        out.push(Finding::new("net", &u.entry, "[network] udp entry"));
    }
    for h in &policy.http {
        out.push(Finding::new("http", &h.url, h.methods.join(",")));
    }
    for s in &policy.secrets {
        let how = match &s.inject {
            Some(i) => format!("injected as {} into {}", i.header, i.url),
            None => "not injected".into(),
        };
        let reveal = if s.reveal { "; revealable" } else { "" };
        out.push(Finding::new("secret", &s.name, format!("{how}{reveal}")));
    }
    out
}

/// What a module's imports let it reach, by capability: for each, the imports that show it
/// (empty: the module cannot use that capability, whatever the manifest grants).
#[derive(Debug, Default)]
struct Reach {
    fs: Vec<String>,
    env: Vec<String>,
    net: Vec<String>,
    http: Vec<String>,
    secret: Vec<String>,
    wall: Vec<String>,
    monotonic: Vec<String>,
    random: Vec<String>,
    stdin: Vec<String>,
    /// Imports that can change a file or folder: write, create, truncate, rename, delete,
    /// link, or set times.
    fs_write: Vec<String>,
}

/// WASI preview 1 functions that can change the filesystem. Every other preview 1 function
/// works only on a descriptor: without `path_open` a module holds no file descriptor (its
/// preopens are folders, on which `fd_write`, `fd_pwrite`, `fd_allocate` and
/// `fd_filestat_set_size` fail), so those need `path_open`, which is listed. `path_open` is
/// here in its own right: its `O_CREAT`/`O_TRUNC` flags create and truncate files.
const P1_FS_WRITES: &[&str] = &[
    "path_open",
    "path_create_directory",
    "path_filestat_set_times",
    "path_link",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "fd_filestat_set_times",
];

/// Preview 1 functions that can observe a clock. `poll_oneoff` is one: its clock subscriptions
/// measure time, and which clock is a run-time argument, as it is for `clock_time_get`.
const P1_CLOCKS: &[&str] = &["clock_time_get", "clock_res_get", "poll_oneoff"];

/// Preview 1 functions that can read stdin (fd 0): a read of a descriptor the guest names at
/// run time.
const P1_STDIN: &[&str] = &["fd_read", "fd_pread"];

/// `wasi:filesystem/types` functions that change nothing. The rest (and any function a later
/// version adds) are taken to write. `write`, `write-via-stream`, `append-via-stream` and
/// `set-size` are among them: they act only on a file descriptor, which a component gets only
/// from `open-at` (its preopens are folders, on which they fail), and `open-at` is taken to
/// write (its `create` and `truncate` flags).
const P2_FS_NON_WRITING: &[&str] = &[
    "[method]descriptor.read",
    "[method]descriptor.read-via-stream",
    "[method]descriptor.write",
    "[method]descriptor.write-via-stream",
    "[method]descriptor.append-via-stream",
    "[method]descriptor.set-size",
    "[method]descriptor.advise",
    "[method]descriptor.sync",
    "[method]descriptor.sync-data",
    "[method]descriptor.get-flags",
    "[method]descriptor.get-type",
    "[method]descriptor.read-directory",
    "[method]descriptor.stat",
    "[method]descriptor.stat-at",
    "[method]descriptor.readlink-at",
    "[method]descriptor.is-same-object",
    "[method]descriptor.metadata-hash",
    "[method]descriptor.metadata-hash-at",
    "[method]directory-entry-stream.read-directory-entry",
    "filesystem-error-code",
];

/// `wasi:io/streams` functions that cannot take data from an input stream. The rest (reads,
/// skips, and `splice`, which copies an input stream into an output stream) can.
const P2_STREAMS_NON_READING: &[&str] = &[
    "[method]input-stream.subscribe",
    "[method]output-stream.check-write",
    "[method]output-stream.write",
    "[method]output-stream.blocking-write-and-flush",
    "[method]output-stream.flush",
    "[method]output-stream.blocking-flush",
    "[method]output-stream.subscribe",
    "[method]output-stream.write-zeroes",
    "[method]output-stream.blocking-write-zeroes-and-flush",
];

impl Reach {
    fn of(is_component: bool, imports: &[Import]) -> Reach {
        let mut r = Reach::default();
        if !is_component {
            for import in imports {
                let Some(f) = import.name.strip_prefix("wasi_snapshot_preview1::") else {
                    continue;
                };
                let name = import.name.clone();
                if f.starts_with("path_") || f == "fd_prestat_get" {
                    r.fs.push(name.clone());
                }
                if P1_FS_WRITES.contains(&f) {
                    r.fs_write.push(name.clone());
                }
                if matches!(f, "environ_get" | "environ_sizes_get") {
                    r.env.push(name.clone());
                }
                if f.starts_with("sock_") {
                    r.net.push(name.clone());
                }
                if P1_CLOCKS.contains(&f) {
                    r.wall.push(name.clone());
                    r.monotonic.push(name.clone());
                }
                if f == "random_get" {
                    r.random.push(name.clone());
                }
                if P1_STDIN.contains(&f) {
                    r.stdin.push(name);
                }
            }
            return r;
        }
        // A component can call only the functions its import's type lists: an interface
        // imported with none of them (wit-component keeps the interface, prunes the functions)
        // gives it nothing. An unknown list counts as everything.
        let calls = |import: &Import, pred: &dyn Fn(&str) -> bool| match &import.functions {
            None => true,
            Some(fs) => fs.iter().any(|f| pred(f)),
        };
        let any = |_: &str| true;
        let mut stdin_streams = false;
        let mut stdin_get = Vec::new();
        for import in imports {
            let interface = import.name.split('@').next().unwrap_or(&import.name);
            let name = import.name.clone();
            match interface {
                n if n.starts_with("wasi:filesystem/") && calls(import, &any) => {
                    r.fs.push(name.clone());
                    if n == "wasi:filesystem/types"
                        && calls(import, &|f| !P2_FS_NON_WRITING.contains(&f))
                    {
                        r.fs_write.push(name);
                    }
                }
                "wasi:cli/environment" if calls(import, &|f| f == "get-environment") => {
                    r.env.push(name)
                }
                n if n.starts_with("wasi:sockets/") && calls(import, &any) => r.net.push(name),
                "wasi:http/outgoing-handler" if calls(import, &any) => r.http.push(name),
                "warden:host/secrets" if calls(import, &any) => r.secret.push(name),
                "wasi:clocks/wall-clock" if calls(import, &any) => r.wall.push(name),
                "wasi:clocks/monotonic-clock" if calls(import, &any) => r.monotonic.push(name),
                n if n.starts_with("wasi:random/") && calls(import, &any) => r.random.push(name),
                "wasi:cli/stdin" if calls(import, &any) => stdin_get.push(name),
                "wasi:io/streams" => {
                    stdin_streams |= calls(import, &|f| !P2_STREAMS_NON_READING.contains(&f));
                }
                _ => {}
            }
        }
        // stdin is a stream: getting it and reading streams are both needed.
        if stdin_streams {
            r.stdin = stdin_get;
        }
        r
    }
}

/// A capability the manifest grants or not, and the imports that show the module can use it.
struct Use<'a> {
    capability: &'static str,
    /// What the manifest grants it with, as printed.
    grant: &'static str,
    granted: bool,
    imports: &'a [String],
    /// What the guest gets when it is not granted.
    otherwise: &'static str,
}

/// What a module's imports show about a manifest: its part of `warden check`'s text, and
/// the grants the module cannot use.
#[derive(Debug)]
pub struct ModuleLint {
    /// The bytes are a component (else a core module).
    pub is_component: bool,
    /// Grants the module cannot use, whatever it does at run time.
    pub cannot_use: Vec<Finding>,
    text: String,
}

impl ModuleLint {
    /// The report as `warden check` prints it.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Each capability with what grants it, whether the policy does, and the module's imports
/// that reach it: first those refused when not granted, then the settings every guest has in
/// a harmless form when they are not granted (clocks, random, stdin).
fn capability_uses<'r>(policy: &Policy, reach: &'r Reach) -> ([Use<'r>; 5], [Use<'r>; 4]) {
    let uses = [
        Use {
            capability: "fs",
            grant: "[[files]]",
            granted: !policy.files.is_empty(),
            imports: &reach.fs,
            otherwise: "NOT GRANTED: no [[files]], the guest sees no filesystem",
        },
        Use {
            capability: "env",
            grant: "[env]",
            granted: !policy.env.is_empty(),
            imports: &reach.env,
            otherwise: "not granted: no [env], the guest sees an empty environment",
        },
        Use {
            capability: "net",
            grant: "[network]",
            granted: policy.has_sockets(),
            imports: &reach.net,
            otherwise: "NOT GRANTED: no [network], refused (and audited) at run time",
        },
        Use {
            capability: "http",
            grant: "[[http]]",
            granted: !policy.http.is_empty(),
            imports: &reach.http,
            otherwise: "NOT GRANTED: no [[http]], refused (and audited) at run time",
        },
        Use {
            capability: "secret",
            grant: "[secrets]",
            granted: !policy.secrets.is_empty(),
            imports: &reach.secret,
            otherwise: "NOT GRANTED: no [secrets], refused (and audited) at run time",
        },
    ];
    // Capabilities every guest has in a harmless form when they are not granted.
    let settings = [
        Use {
            capability: "clock",
            grant: "[clocks] wall",
            granted: policy.clocks.wall,
            imports: &reach.wall,
            otherwise: "not granted: the guest sees a frozen wall clock",
        },
        Use {
            capability: "clock",
            grant: "[clocks] monotonic",
            granted: policy.clocks.monotonic,
            imports: &reach.monotonic,
            otherwise: "not granted: the guest sees a frozen monotonic clock",
        },
        Use {
            capability: "random",
            grant: "[random] secure",
            granted: policy.random.secure,
            imports: &reach.random,
            otherwise: "not granted: the guest gets a seeded, deterministic stream",
        },
        Use {
            capability: "stdio",
            grant: "[stdio] stdin",
            granted: policy.stdio.stdin == StdinMode::Inherit,
            imports: &reach.stdin,
            otherwise: "not granted: stdin is closed",
        },
    ];
    (uses, settings)
}

/// What a module imports that the policy does not grant, and what the policy grants that the
/// module cannot use: the second part of `warden check` when the module is at hand, as text
/// and with the grants the module cannot use as [`Finding`]s.
///
/// # Errors
/// The bytes are not a WebAssembly module or component.
pub fn module_lint(policy: &Policy, bytes: &[u8]) -> Result<ModuleLint, String> {
    let (is_component, imports) = imports_of(bytes)?;
    let reach = Reach::of(is_component, &imports);
    let (uses, settings) = capability_uses(policy, &reach);
    // A secret is used through wasi:http (injection) as much as through warden:host/secrets.
    let uses_http = !reach.http.is_empty();

    let mut out = String::new();
    let kind = if is_component {
        "component"
    } else {
        "core module"
    };
    let _ = writeln!(out, "\nmodule imports ({kind}):");
    fn line(out: &mut String, u: &Use<'_>) {
        let verdict = if u.granted {
            format!("granted by {}", u.grant)
        } else {
            u.otherwise.to_owned()
        };
        let _ = writeln!(
            out,
            "  {:7} {verdict}: {}",
            u.capability,
            u.imports.join(", ")
        );
    }
    let mut any = false;
    for u in uses.iter().filter(|u| !u.imports.is_empty()) {
        any = true;
        line(&mut out, u);
    }
    if !any {
        let _ = writeln!(out, "  none of fs, env, net, http, secrets");
    }
    for u in settings.iter().filter(|u| !u.imports.is_empty()) {
        line(&mut out, u);
    }

    let mut cannot_use = Vec::new();
    let mut lines = Vec::new();
    for u in uses.iter().filter(|u| u.granted && u.imports.is_empty()) {
        if u.capability == "secret" && uses_http {
            continue;
        }
        let why = if !is_component && matches!(u.capability, "net" | "http" | "secret") {
            "a core module cannot use it (warden refuses to run it)"
        } else {
            "the module imports nothing that uses it"
        };
        lines.push(format!("  {:7} {}: {why}", u.capability, u.grant));
        cannot_use.push(Finding::new(u.capability, u.grant, why));
    }
    for u in settings
        .iter()
        .filter(|u| u.granted && u.imports.is_empty())
    {
        let why = match (u.capability, is_component) {
            ("clock", false) => {
                "the module imports no clock function (clock_time_get, clock_res_get, poll_oneoff)"
            }
            ("clock", true) => "the module calls no function of that clock's interface",
            ("random", false) => "the module imports no random_get",
            ("random", true) => "the module calls no function of wasi:random",
            (_, false) => "the module imports no read (fd_read, fd_pread)",
            (_, true) => "the module does not both get stdin (wasi:cli/stdin) and read a stream",
        };
        lines.push(format!("  {:7} {}: {why}", u.capability, u.grant));
        let target = u.grant.rsplit(' ').next().unwrap_or(u.grant);
        cannot_use.push(Finding::new(u.capability, target, why));
    }
    // Read-write grants of a module that can change nothing: read would do. Only judged when
    // the module reaches the filesystem at all (otherwise the whole of [[files]] is above).
    if !reach.fs.is_empty() && reach.fs_write.is_empty() {
        let why = if is_component {
            "the module calls nothing in wasi:filesystem that creates, writes, renames or \
             deletes; access = \"read\" would do"
        } else {
            "the module imports nothing that creates, writes, renames or deletes (path_open, \
             path_rename, path_unlink_file, …); access = \"read\" would do"
        };
        for f in policy
            .files
            .iter()
            .filter(|f| f.access == Access::ReadWrite)
        {
            lines.push(format!("  {:7} {} read-write: {why}", "fs", f.guest));
            cannot_use.push(Finding::new("fs", &f.guest, format!("read-write: {why}")));
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(out, "\ngrants the module cannot use:");
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(ModuleLint {
        is_component,
        cannot_use,
        text: out,
    })
}

/// One import of a module or component.
#[derive(Debug, Clone)]
struct Import {
    /// `module::name` for a core module; the interface name (with its version) for a
    /// component.
    name: String,
    /// For a component's instance import: the names of the functions its type lists, which
    /// are all the component can call through it (the linker provides nothing else). `None`
    /// for a core module's import, or when the component's types could not be resolved.
    functions: Option<Vec<String>>,
}

/// Whether `bytes` is a component, and its imports: interface names for a component's
/// top level, `module::name` for a core module.
fn imports_of(bytes: &[u8]) -> Result<(bool, Vec<Import>), String> {
    use wasmparser::{Encoding, Parser, Payload};
    let mut imports = Vec::new();
    let mut is_component = false;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a WebAssembly module or component: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    is_component = encoding == Encoding::Component;
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ImportSection(section) if depth == 1 && !is_component => {
                for import in section.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    imports.push(Import {
                        name: format!("{}::{}", import.module, import.name),
                        functions: None,
                    });
                }
            }
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| e.to_string())?;
                    imports.push(Import {
                        name: import.name.name.to_string(),
                        functions: None,
                    });
                }
            }
            _ => {}
        }
    }
    if is_component {
        instance_functions(bytes, &mut imports);
    }
    Ok((is_component, imports))
}

/// Fills in the functions each instance import's type lists. A component that does not
/// validate keeps `None` everywhere (so nothing is judged from function lists); wasmtime
/// would refuse to load it anyway.
fn instance_functions(bytes: &[u8], imports: &mut [Import]) {
    use wasmparser::component_types::ComponentEntityType;
    use wasmparser::{Validator, WasmFeatures};
    let Ok(types) = Validator::new_with_features(WasmFeatures::all()).validate_all(bytes) else {
        return;
    };
    let types = types.as_ref();
    for import in imports.iter_mut() {
        let Some(item) = types.component_item_for_import(&import.name) else {
            continue;
        };
        if let ComponentEntityType::Instance(id) = item.ty {
            import.functions = Some(
                types[id]
                    .exports
                    .iter()
                    .filter(|(_, e)| matches!(e.ty, ComponentEntityType::Func(_)))
                    .map(|(name, _)| name.clone())
                    .collect(),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(body: &str, dir: &std::path::Path) -> Policy {
        let text = format!("[identity]\nname = \"t\"\nid = \"spiffe://t/x\"\n\n{body}");
        let m = warden::Manifest::from_str_at(&text, &dir.join("t.warden.toml"), dir)
            .unwrap_or_else(|e| panic!("{e}"));
        Policy::from_manifest(m)
    }

    /// A core module importing these preview 1 functions (all typed `() -> i32`: the lint
    /// reads names, not types).
    fn module(functions: &[&str]) -> Vec<u8> {
        let imports: String = functions
            .iter()
            .map(|f| format!("(import \"wasi_snapshot_preview1\" \"{f}\" (func (result i32)))"))
            .collect();
        wat::parse_str(format!("(module {imports} (memory (export \"memory\") 1))")).unwrap()
    }

    const EVERYTHING: &str = "[[files]]\nhost = \".\"\nguest = \"/data\"\naccess = \"read-write\"\n\
        [stdio]\nstdin = \"inherit\"\n[clocks]\nwall = true\nmonotonic = true\n[random]\nsecure = true\n";

    fn cannot_use(functions: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let lint = module_lint(&policy(EVERYTHING, dir.path()), &module(functions)).unwrap();
        lint.cannot_use
            .iter()
            .map(|f| format!("{} {}", f.capability, f.target))
            .collect()
    }

    #[test]
    fn clocks_random_stdin_and_writes_a_module_cannot_reach_are_reported() {
        // A module that reads a folder and prints: no clock, random, stdin or write.
        assert_eq!(
            cannot_use(&[
                "fd_write",
                "fd_prestat_get",
                "path_filestat_get",
                "fd_readdir"
            ]),
            [
                "clock wall",
                "clock monotonic",
                "random secure",
                "stdio stdin",
                "fs /data"
            ]
        );
        // Control: one import each brings the grant into reach.
        assert!(cannot_use(&["clock_time_get", "random_get", "fd_read", "path_open"]).is_empty());
        // poll_oneoff measures time; path_unlink_file changes the folder.
        assert_eq!(
            cannot_use(&["poll_oneoff", "path_unlink_file", "fd_pread", "random_get"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_module_without_filesystem_imports_gets_one_fs_line_not_a_read_write_one() {
        let found = cannot_use(&["fd_write"]);
        assert!(found.contains(&"fs [[files]]".to_owned()), "{found:?}");
        assert!(!found.contains(&"fs /data".to_owned()), "{found:?}");
    }
}
