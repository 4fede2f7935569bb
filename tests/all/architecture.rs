//! ARCHITECTURE.md's layout rules, checked on the sources themselves (parsed with `syn`, the
//! parser Rust's own macros use): no file of a package depends on itself through others, no
//! `use super::*`, `unsafe` only in the functions ARCHITECTURE.md names, the manifest types
//! free of wasmtime, HTTP and the policy with only `resolve` touching the filesystem and the
//! environment, `host-seccomp` free of wasmtime and of warden, and grants given to the WASI
//! context only by `Policy::configure_wasi`. Test code (`#[cfg(test)]`) is left out: the rules
//! are about what ships. Each rule has a control: a small made-up crate that breaks it, which
//! the same check must catch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::spanned::Spanned;
use syn::visit::Visit;

/// A module path inside the crate (`[]` is the crate root).
type ModPath = Vec<String>;

/// One source file: where it is (for messages) and its parsed text.
struct SourceFile {
    label: String,
    text: String,
    ast: syn::File,
}

/// The files of one crate, by module path.
struct CrateSources {
    files: BTreeMap<ModPath, SourceFile>,
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .map(|m| m.path().is_ident("test"))
                .unwrap_or(false)
    })
}

impl CrateSources {
    /// Reads a crate from its `src` folder: the root (`lib.rs` or `main.rs`) and every module
    /// file reachable by `mod name;` that is not test-only.
    fn read(src: &Path, root: &str) -> CrateSources {
        let mut texts = Vec::new();
        collect(src, src, &mut texts);
        let mut by_path: BTreeMap<ModPath, (String, String)> = BTreeMap::new();
        for (rel, text) in texts {
            let module = module_of(&rel, root);
            if let Some(module) = module {
                by_path.insert(module, (rel.display().to_string(), text));
            }
        }
        CrateSources::from_texts(by_path)
    }

    /// Builds the crate from texts keyed by module path (tests feed synthetic crates here).
    fn from_texts(texts: BTreeMap<ModPath, (String, String)>) -> CrateSources {
        let mut files = BTreeMap::new();
        let mut wanted = vec![ModPath::new()];
        while let Some(module) = wanted.pop() {
            let Some((label, text)) = texts.get(&module) else {
                continue;
            };
            let ast =
                syn::parse_file(text).unwrap_or_else(|e| panic!("{label} does not parse: {e}"));
            for item in &ast.items {
                if let syn::Item::Mod(m) = item
                    && m.content.is_none()
                    && !is_cfg_test(&m.attrs)
                {
                    let mut child = module.clone();
                    child.push(m.ident.to_string());
                    wanted.push(child);
                }
            }
            files.insert(
                module,
                SourceFile {
                    label: label.clone(),
                    text: text.clone(),
                    ast,
                },
            );
        }
        CrateSources { files }
    }

    /// The file that holds `path` (the longest module prefix that is a file of its own).
    fn file_of(&self, path: &[String]) -> Option<(&ModPath, usize)> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.files.get_key_value(&path[..n]).map(|(k, _)| (k, n)))
    }

    /// Where `path` leads once re-exports (`pub use` in the file it names) are followed.
    fn resolve<'a>(&'a self, path: &[String], depth: usize) -> Option<&'a ModPath> {
        let (file, n) = self.file_of(path)?;
        if depth < 8
            && let Some(name) = path.get(n)
            && let Some(target) = self.reexports(file).get(name.as_str())
        {
            let mut next = target.clone();
            next.extend(path[n + 1..].iter().cloned());
            if let Some(to) = self.resolve(&next, depth + 1) {
                return Some(to);
            }
        }
        Some(file)
    }

    /// The names `file` re-exports (`pub use`, any visibility but private), to absolute paths.
    fn reexports(&self, file: &ModPath) -> BTreeMap<String, ModPath> {
        let mut out = BTreeMap::new();
        let Some(f) = self.files.get(file) else {
            return out;
        };
        for item in &f.ast.items {
            if let syn::Item::Use(u) = item
                && !matches!(u.vis, syn::Visibility::Inherited)
            {
                for (path, name) in flatten(&u.tree, Vec::new()) {
                    if let (Some(abs), Some(name)) = (self.absolute(file, &path), name) {
                        out.insert(name, abs);
                    }
                }
            }
        }
        out
    }

    /// A path as written in `module` made absolute, a path that starts with one of the
    /// module's own submodules included.
    fn absolute(&self, module: &ModPath, path: &[String]) -> Option<ModPath> {
        absolute(module, path).or_else(|| {
            let mut child = module.clone();
            child.push(path.first()?.clone());
            self.files.contains_key(&child).then(|| {
                let mut out = module.clone();
                out.extend(path.iter().cloned());
                out
            })
        })
    }

    /// Every file each file depends on through `use` items and paths in its code. Re-exports
    /// are followed, not counted; test code is left out; a module's use of its own submodules
    /// is not counted (declaring and using them is the module tree itself), but a submodule's
    /// use of its parent is.
    fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut graph = BTreeMap::new();
        for (module, file) in &self.files {
            let mut paths = Facts::default();
            for item in &file.ast.items {
                if let syn::Item::Use(u) = item
                    && !matches!(u.vis, syn::Visibility::Inherited)
                {
                    continue;
                }
                paths.visit_item(item);
            }
            let mut to = BTreeSet::new();
            for p in paths.found {
                if let Some(abs) = self.absolute(module, &p)
                    && let Some(target) = self.resolve(&abs, 0)
                    && !target.starts_with(module)
                {
                    to.insert(target.clone());
                }
            }
            graph.insert(module.clone(), to);
        }
        graph
    }

    /// The groups of files that depend on each other in a circle (strongly connected
    /// components of more than one file), each as the files' labels.
    fn cycles(&self) -> Vec<Vec<String>> {
        let graph = self.edges();
        strongly_connected(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.iter().map(|m| self.files[m].label.clone()).collect())
            .collect()
    }

    /// Files with a `use super::*` outside test code.
    fn glob_super_imports(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in self.files.values() {
            if Facts::of(&file.ast).glob_super {
                out.push(file.label.clone());
            }
        }
        out
    }
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(base).unwrap().to_path_buf(), text));
        }
    }
}

/// `a/b.rs` → `[a, b]`, `a/mod.rs` → `[a]`, the root file → `[]`.
fn module_of(rel: &Path, root: &str) -> Option<ModPath> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    if parts.is_empty() && last == root {
        return Some(Vec::new());
    }
    let stem = last.strip_suffix(".rs")?;
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    Some(parts)
}

/// A path as written in `module`, made absolute: `crate::`, `super::` and `self::` resolved.
/// `None` for paths that start elsewhere (other crates, local names).
fn absolute(module: &ModPath, path: &[String]) -> Option<ModPath> {
    let mut out = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => module.clone(),
        _ => return None,
    };
    let mut rest = if path[0] == "crate" { &path[1..] } else { path };
    while let Some(first) = rest.first() {
        match first.as_str() {
            "super" => {
                out.pop()?;
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    out.extend(rest.iter().cloned());
    Some(out)
}

/// A `use` tree flattened to paths; each with the name it brings in (`None` for a glob).
fn flatten(tree: &syn::UseTree, prefix: Vec<String>) -> Vec<(Vec<String>, Option<String>)> {
    match tree {
        syn::UseTree::Path(p) => {
            let mut prefix = prefix;
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix)
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix;
            if name != "self" {
                path.push(name.clone());
            }
            let bound = path.last().cloned();
            vec![(path, bound)]
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix;
            path.push(r.ident.to_string());
            vec![(path, Some(r.rename.to_string()))]
        }
        syn::UseTree::Glob(_) => vec![(prefix, None)],
        syn::UseTree::Group(g) => g
            .items
            .iter()
            .flat_map(|t| flatten(t, prefix.clone()))
            .collect(),
    }
}

/// What a file's code (outside test code) names and does: the paths it names (`found`: those
/// that start with `crate`, `super` or `self`; `all`: every one), whether it has a `use
/// super::*`, the functions and methods it calls and the `unsafe` it holds, each with the
/// function it is in.
#[derive(Default)]
struct Facts {
    found: Vec<Vec<String>>,
    all: Vec<Vec<String>>,
    glob_super: bool,
    /// `(enclosing function, called function or method)`.
    calls: Vec<(String, String)>,
    /// The enclosing function of each `unsafe` block, function or impl.
    unsafes: Vec<String>,
    /// Each function of more than [`LONG`] lines: its name, its length, and whether its doc
    /// says why it is kept whole.
    long: Vec<(String, usize, bool)>,
    within: Vec<String>,
}

impl Facts {
    fn of(file: &syn::File) -> Facts {
        let mut facts = Facts::default();
        for item in &file.items {
            facts.visit_item(item);
        }
        facts
    }

    fn here(&self) -> String {
        self.within.last().cloned().unwrap_or_default()
    }

    /// Notes a long function: its length from its signature to its body's end (the doc and
    /// attributes above it not counted).
    fn measure(
        &mut self,
        name: &syn::Ident,
        attrs: &[syn::Attribute],
        sig: &syn::Signature,
        body: &syn::Block,
    ) {
        let lines = body.span().end().line + 1 - sig.span().start().line;
        if lines > LONG {
            let reason = attrs.iter().any(|a| {
                a.path().is_ident("doc")
                    && quote::ToTokens::to_token_stream(a)
                        .to_string()
                        .contains(KEPT_WHOLE)
            });
            self.long.push((name.to_string(), lines, reason));
        }
    }
}

/// The most lines a function has without a reason in its doc.
const LONG: usize = 120;

/// What a longer function's doc says, followed by why.
const KEPT_WHOLE: &str = "Kept whole:";

impl<'ast> Visit<'ast> for Facts {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_cfg_test(attrs) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.within.push(f.sig.ident.to_string());
        self.measure(&f.sig.ident, &f.attrs, &f.sig, &f.block);
        if f.sig.unsafety.is_some() {
            self.unsafes.push(self.here());
        }
        syn::visit::visit_item_fn(self, f);
        self.within.pop();
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        self.within.push(f.sig.ident.to_string());
        self.measure(&f.sig.ident, &f.attrs, &f.sig, &f.block);
        if f.sig.unsafety.is_some() {
            self.unsafes.push(self.here());
        }
        syn::visit::visit_impl_item_fn(self, f);
        self.within.pop();
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if i.unsafety.is_some() {
            self.unsafes.push(self.here());
        }
        syn::visit::visit_item_impl(self, i);
    }

    fn visit_expr_unsafe(&mut self, e: &'ast syn::ExprUnsafe) {
        self.unsafes.push(self.here());
        syn::visit::visit_expr_unsafe(self, e);
    }

    fn visit_expr_method_call(&mut self, c: &'ast syn::ExprMethodCall) {
        self.calls.push((self.here(), c.method.to_string()));
        syn::visit::visit_expr_method_call(self, c);
    }

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        // A path of one segment is a local function or closure (`env(name)`), not a module's.
        if let syn::Expr::Path(p) = &*c.func
            && p.path.segments.len() > 1
            && let Some(last) = p.path.segments.last()
        {
            self.calls.push((self.here(), last.ident.to_string()));
        }
        syn::visit::visit_expr_call(self, c);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        for (path, name) in flatten(&u.tree, Vec::new()) {
            if name.is_none() && path.first().is_some_and(|s| s == "super") && path.len() == 1 {
                self.glob_super = true;
            }
            self.all.push(path.clone());
            self.found.push(path);
        }
    }

    /// `pub(super)` and `pub(in path)` name where an item is seen, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments
            .first()
            .is_some_and(|s| s == "crate" || s == "super" || s == "self")
        {
            self.found.push(segments.clone());
        }
        self.all.push(segments);
        syn::visit::visit_path(self, p);
    }
}

/// Tarjan's strongly connected components, iterative over a small graph.
fn strongly_connected(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

// ---- the rules --------------------------------------------------------------------------------

/// The workspace's root folder.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The crates that ship: a name for messages, the `src` folder, the root file.
const SHIPPED: [(&str, &str, &str); 4] = [
    ("the library warden", "runtime/src", "lib.rs"),
    ("the library warden_cli", "cli/src", "lib.rs"),
    ("the warden binary", "cli/src", "main.rs"),
    ("warden-host-seccomp", "host-seccomp/src", "lib.rs"),
];

fn shipped(src: &str, root: &str) -> CrateSources {
    CrateSources::read(&workspace().join(src), root)
}

/// A made-up crate: `(module path as "a::b", "" for the root, text)`.
fn made_up(files: &[(&str, &str)]) -> CrateSources {
    let texts = files
        .iter()
        .map(|(module, text)| {
            let path: ModPath = module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let label = if module.is_empty() {
                "lib.rs".to_owned()
            } else {
                format!("{}.rs", module.replace("::", "/"))
            };
            (path, (label, (*text).to_owned()))
        })
        .collect();
    CrateSources::from_texts(texts)
}

/// Each `unsafe` outside the functions `allowed` names (`(file, function)`; `"*"` for any
/// function of the file), as `file: function`.
fn unsafe_outside(c: &CrateSources, allowed: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for file in c.files.values() {
        for within in Facts::of(&file.ast).unsafes {
            let ok = allowed
                .iter()
                .any(|(f, func)| *f == file.label && (*func == "*" || *func == within));
            if !ok {
                out.push(format!("{}: {within}", file.label));
            }
        }
    }
    out
}

/// Each line that opens an `unsafe` block, function or impl without a `// SAFETY:` comment in
/// the comment lines right above it, as `file:line`.
fn unsafe_without_safety_comment(c: &CrateSources) -> Vec<String> {
    let mut out = Vec::new();
    for file in c.files.values() {
        let lines: Vec<&str> = file.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let opens = ["unsafe {", "unsafe fn", "unsafe impl"]
                .iter()
                .any(|u| code.contains(u));
            let mut comment = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("//"));
            if opens && !comment.any(|l| l.contains("SAFETY:")) {
                out.push(format!("{}:{}", file.label, i + 1));
            }
        }
    }
    out
}

/// Crates whose names mean wasmtime or HTTP, which the manifest types must not name.
const ENGINE_OR_HTTP: [&str; 7] = [
    "wasmtime",
    "wasmtime_wasi",
    "wasmtime_wasi_http",
    "hyper",
    "http",
    "http_body_util",
    "tokio",
];

/// What the manifest's files (`manifest.rs`, `manifest/*`) reach outside themselves: a path
/// into wasmtime or HTTP, a file of the crate other than the host-memory constants and the
/// regular-file reader, or the filesystem and environment from any file but `resolve.rs`.
fn manifest_reaches_out(c: &CrateSources) -> Vec<String> {
    let mut out = Vec::new();
    let edges = c.edges();
    for (module, file) in &c.files {
        if module.first().is_none_or(|m| m != "manifest") {
            continue;
        }
        let facts = Facts::of(&file.ast);
        for path in &facts.all {
            // One segment is a local name (a variable called `http`), not a crate.
            if path.len() > 1 && ENGINE_OR_HTTP.contains(&path[0].as_str()) {
                out.push(format!("{} names {}", file.label, path.join("::")));
            }
            let std_io =
                path.len() > 1 && path[0] == "std" && (path[1] == "fs" || path[1] == "env");
            if std_io && module.last().is_none_or(|m| m != "resolve") {
                out.push(format!("{} uses {}", file.label, path.join("::")));
            }
        }
        for to in &edges[module] {
            let inside = to.first().is_some_and(|m| m == "manifest");
            let allowed = [["host_memory"], ["regular_file"]]
                .iter()
                .any(|a| to.as_slice() == a.as_slice());
            if !inside && !allowed {
                out.push(format!(
                    "{} depends on crate::{}",
                    file.label,
                    to.join("::")
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The WASI context builder's methods that give a guest something of the host.
const GRANTING: [&str; 15] = [
    "env",
    "envs",
    "inherit_env",
    "preopened_dir",
    "wall_clock",
    "monotonic_clock",
    "secure_random",
    "insecure_random",
    "insecure_random_seed",
    "allow_tcp",
    "allow_udp",
    "allow_ip_name_lookup",
    "socket_addr_check",
    "inherit_network",
    "watch_calls",
];

/// Each call of a granting method outside `Policy::configure_wasi` (`policy.rs`: it and its
/// `wire_*` helpers, one per capability, which only it calls) and the wrappers of
/// `observe.rs`, as `file: function calls method`.
fn grants_given_elsewhere(c: &CrateSources) -> Vec<String> {
    let mut out = Vec::new();
    for file in c.files.values() {
        for (within, called) in Facts::of(&file.ast).calls {
            let in_policy = file.label == "policy.rs";
            if called.starts_with("wire_") {
                if !(in_policy && within == "configure_wasi") {
                    out.push(format!("{}: {within} calls {called}", file.label));
                }
                continue;
            }
            if !GRANTING.contains(&called.as_str()) {
                continue;
            }
            let ok = (in_policy && (within == "configure_wasi" || within.starts_with("wire_")))
                || (file.label == "observe.rs" && called != "watch_calls");
            if !ok {
                out.push(format!("{}: {within} calls {called}", file.label));
            }
        }
    }
    out
}

// ---- the tests ------------------------------------------------------------------------------

#[test]
fn no_file_depends_on_itself_through_other_files() {
    for (name, src, root) in SHIPPED {
        let c = shipped(src, root);
        assert!(
            c.files.len() > 5,
            "{name}: only {} files read",
            c.files.len()
        );
        assert_eq!(
            c.cycles(),
            Vec::<Vec<String>>::new(),
            "{name} has files in a cycle"
        );
    }
}

#[test]
fn a_cycle_through_a_re_export_or_a_parent_is_caught_and_a_module_tree_is_not() {
    // Control: `a` uses `b` through the root's re-export, `b` uses `a`.
    let c = made_up(&[
        ("", "mod a; mod b; pub use b::B;"),
        ("a", "use crate::B; pub struct A;"),
        ("b", "pub struct B; fn f() -> crate::a::A { crate::a::A }"),
    ]);
    assert_eq!(c.cycles(), vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]);
    // Control: a child using its parent, which uses a sibling that uses the child.
    let c = made_up(&[
        ("", "mod s; mod w;"),
        ("s", "mod o; pub const M: u8 = 1; fn f() { crate::w::g() }"),
        ("s::o", "use super::M; pub struct O;"),
        ("w", "use crate::s::o::O; pub fn g() {}"),
    ]);
    assert_eq!(
        c.cycles().len(),
        1,
        "the cycle through the parent is missed"
    );
    // A parent that declares, re-exports and uses its children, and children that use the
    // parent, with no third file in between: the module tree itself, no cycle.
    let c = made_up(&[
        ("", "mod s;"),
        (
            "s",
            "mod o; pub use o::O; pub const M: u8 = 1; fn f() -> O { o::make() }",
        ),
        (
            "s::o",
            "use super::M; pub struct O; pub fn make() -> O { O }",
        ),
    ]);
    assert_eq!(c.cycles(), Vec::<Vec<String>>::new());
    // `pub(super)` is visibility, not a use of the parent.
    let c = made_up(&[
        ("", "mod s; mod w;"),
        ("s", "mod o; fn f() { crate::w::g() }"),
        ("s::o", "pub(super) struct O;"),
        ("w", "use crate::s::o::O; pub fn g() {}"),
    ]);
    assert_eq!(c.cycles(), Vec::<Vec<String>>::new());
}

#[test]
fn no_file_imports_its_parent_whole() {
    for (name, src, root) in SHIPPED {
        assert_eq!(
            shipped(src, root).glob_super_imports(),
            Vec::<String>::new(),
            "{name}: `use super::*` outside tests"
        );
    }
    // Control: caught in shipped code, left alone in a test module.
    let c = made_up(&[
        ("", "mod a; mod b;"),
        ("a", "use super::*;"),
        ("b", "fn f() {} #[cfg(test)] mod tests { use super::*; }"),
    ]);
    assert_eq!(c.glob_super_imports(), vec!["a.rs".to_owned()]);
}

#[test]
fn unsafe_lives_only_in_the_functions_architecture_md_names() {
    let allowed: [(&str, &[(&str, &str)]); 3] = [
        (
            "runtime/src",
            &[
                ("cache.rs", "digest_file"),
                ("cache.rs", "deserialize"),
                ("cache.rs", "deserialize_file"),
            ],
        ),
        ("cli/src", &[("commands/bench.rs", "wait_with_usage")]),
        ("host-seccomp/src", &[("sys.rs", "*")]),
    ];
    for (src, allowed) in allowed {
        for root in ["lib.rs", "main.rs"] {
            if !workspace().join(src).join(root).exists() {
                continue;
            }
            let c = shipped(src, root);
            assert_eq!(
                unsafe_outside(&c, allowed),
                Vec::<String>::new(),
                "{src}/{root}"
            );
            assert_eq!(
                unsafe_without_safety_comment(&c),
                Vec::<String>::new(),
                "{src}/{root}: unsafe without a SAFETY comment"
            );
        }
    }
    // Control: an unsafe block in another function, an unsafe impl, and one without a
    // comment are each caught.
    let c = made_up(&[
        ("", "mod a;"),
        (
            "a",
            "fn ok() {\n    // SAFETY: reasons.\n    unsafe { f() }\n}\nfn other() {\n    unsafe { f() }\n}\nstruct S;\nunsafe impl Send for S {}\n",
        ),
    ]);
    assert_eq!(
        unsafe_outside(&c, &[("a.rs", "ok")]),
        vec!["a.rs: other".to_owned(), "a.rs: ".to_owned()]
    );
    assert_eq!(
        unsafe_without_safety_comment(&c),
        vec!["a.rs:6".to_owned(), "a.rs:9".to_owned()]
    );
}

#[test]
fn the_manifest_knows_nothing_of_wasmtime_http_or_the_policy_and_only_resolve_reads_the_host() {
    let c = shipped("runtime/src", "lib.rs");
    assert!(c.files.keys().any(|m| m == &["manifest", "resolve"]));
    assert_eq!(manifest_reaches_out(&c), Vec::<String>::new());
    // Control: each way of reaching out is caught.
    let c = made_up(&[
        ("", "mod manifest; mod policy;"),
        ("policy", "pub struct Policy;"),
        (
            "manifest",
            "mod raw; mod resolve; fn f(_: wasmtime::Engine) {}",
        ),
        (
            "manifest::raw",
            "fn g() { let _ = std::env::var(\"X\"); let _: crate::policy::Policy; }",
        ),
        (
            "manifest::resolve",
            "fn h() { let _ = std::fs::read(\"x\"); }",
        ),
    ]);
    assert_eq!(
        manifest_reaches_out(&c),
        vec![
            "manifest.rs names wasmtime::Engine".to_owned(),
            "manifest/raw.rs depends on crate::policy".to_owned(),
            "manifest/raw.rs uses std::env::var".to_owned(),
        ]
    );
}

#[test]
fn host_seccomp_knows_nothing_of_wasmtime_or_warden() {
    let c = shipped("host-seccomp/src", "lib.rs");
    let named = |c: &CrateSources| {
        let mut out = Vec::new();
        for file in c.files.values() {
            for path in Facts::of(&file.ast).all {
                if path
                    .first()
                    .is_some_and(|p| p.starts_with("wasmtime") || p.starts_with("warden"))
                {
                    out.push(format!("{}: {}", file.label, path.join("::")));
                }
            }
        }
        out
    };
    assert_eq!(named(&c), Vec::<String>::new());
    // Control.
    let c = made_up(&[("", "mod a;"), ("a", "use warden::manifest::Manifest;")]);
    assert_eq!(
        named(&c),
        vec!["a.rs: warden::manifest::Manifest".to_owned()]
    );
}

#[test]
fn grants_reach_the_wasi_context_only_through_configure_wasi() {
    let c = shipped("runtime/src", "lib.rs");
    let facts: Vec<_> = c
        .files
        .values()
        .filter(|f| f.label == "policy.rs")
        .flat_map(|f| Facts::of(&f.ast).calls)
        .filter(|(within, _)| within == "configure_wasi")
        .map(|(_, called)| called)
        .collect();
    // Control on the real code: configure_wasi calls its helpers by the names the rule
    // knows.
    for m in [
        "wire_env",
        "wire_files",
        "wire_network",
        "wire_clocks_and_random",
    ] {
        assert!(
            facts.iter().any(|c| c == m),
            "configure_wasi does not call {m}"
        );
    }
    assert_eq!(grants_given_elsewhere(&c), Vec::<String>::new());
    // Control: a run that adds a folder of its own, wraps the clocks itself or calls a
    // helper of configure_wasi, is caught.
    let c = made_up(&[
        ("", "mod policy; mod run;"),
        (
            "policy",
            "impl P { fn configure_wasi(&self, b: &mut B) { self.wire_env(b); } \
             fn wire_env(&self, b: &mut B) { b.env(\"A\", \"1\"); } }",
        ),
        (
            "run",
            "fn run(p: &P, b: &mut B) { b.preopened_dir(\"/\", \"/\"); \
             crate::observe::watch_calls(b); p.wire_env(b); }",
        ),
    ]);
    assert_eq!(
        grants_given_elsewhere(&c),
        vec![
            "run.rs: run calls preopened_dir".to_owned(),
            "run.rs: run calls watch_calls".to_owned(),
            "run.rs: run calls wire_env".to_owned(),
        ]
    );
}

#[test]
fn no_function_is_over_120_lines_without_a_reason_in_its_doc() {
    let mut long = Vec::new();
    for (name, src, root) in SHIPPED {
        for file in shipped(src, root).files.values() {
            for (function, lines, reason) in Facts::of(&file.ast).long {
                if !reason {
                    long.push(format!(
                        "{name}: {}: {function} ({lines} lines)",
                        file.label
                    ));
                }
            }
        }
    }
    assert_eq!(
        long,
        Vec::<String>::new(),
        "split them, or say in the doc: {KEPT_WHOLE} …"
    );
    // Control: lengths are measured (a function of 121 lines is long, one of 120 is not), and
    // a reason in the doc is seen.
    let body = |n: usize| "    let _ = 0;\n".repeat(n - 2);
    let text = format!(
        "fn short() {{\n{}}}\nfn long() {{\n{}}}\n/// {KEPT_WHOLE} one table.\nfn table() {{\n{}}}\n",
        body(LONG),
        body(LONG + 1),
        body(LONG + 1)
    );
    let c = made_up(&[("", "mod a;"), ("a", &text)]);
    let found = Facts::of(&c.files[&vec!["a".to_owned()]].ast).long;
    assert_eq!(
        found,
        vec![
            ("long".to_owned(), LONG + 1, false),
            ("table".to_owned(), LONG + 1, true),
        ]
    );
}
