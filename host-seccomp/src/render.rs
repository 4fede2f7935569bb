//! A profile as text for people and as an OCI seccomp profile for container runtimes.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::rule::Entry;
use crate::rule::{Action, Cmp, Rule, When};
use crate::{Group, Mode, Profile, Stage, Syscall, arch};

/// The name of an errno the table uses, for the text rendering.
fn errno_name(e: i32) -> String {
    match e {
        libc::ENOSYS => "ENOSYS".into(),
        libc::EACCES => "EACCES".into(),
        libc::EPERM => "EPERM".into(),
        _ => e.to_string(),
    }
}

fn rule_text(rule: Rule) -> String {
    rule.iter()
        .map(|c| c.text)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn when_text(when: &When) -> String {
    match when {
        When::Always => String::new(),
        When::AnyOf(rules) if rules.len() == 1 => format!(" if {}", rule_text(rules[0])),
        When::AnyOf(rules) => {
            let alts: Vec<String> = rules
                .iter()
                .map(|r| {
                    if r.len() > 1 {
                        format!("({})", rule_text(r))
                    } else {
                        rule_text(r)
                    }
                })
                .collect();
            format!(" if {}", alts.join(" or "))
        }
    }
}

fn action_text(s: &Syscall) -> String {
    let mut parts = Vec::new();
    if let Some(w) = &s.allow {
        parts.push(format!("allow{}", when_text(w)));
    }
    if let Some((e, w)) = &s.errno {
        parts.push(format!("errno {}{}", errno_name(*e), when_text(w)));
    }
    parts.join("; ")
}

fn dedup<T: PartialEq + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// An entry's group in the text rendering: `setup` for the container stage's lines.
fn group_label(e: &Entry) -> &'static str {
    match e.stage {
        Stage::Run => Group::name(e.group),
        Stage::Container => "setup",
        Stage::Serve => "serve",
    }
}

impl Profile {
    /// The profile for people: one syscall a line with its group(s) (`setup` for the
    /// container stage's own lines), what the filter does with
    /// it (and on which arguments), and why it is needed; then a last line `N syscalls`.
    ///
    /// ```text
    /// mmap               base        allow if prot & PROT_EXEC == 0 — the store's linear memories, …
    /// ```
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for s in &self.syscalls {
            let groups: Vec<&str> = dedup(s.entries.iter().map(|e| group_label(e)));
            let reasons = dedup(s.entries.iter().map(|e| e.reason)).join("; ");
            let _ = writeln!(
                out,
                "{:<18} {:<22} {} — {}",
                s.name,
                groups.join(","),
                action_text(s),
                reasons
            );
        }
        let _ = writeln!(out, "{} syscalls", self.syscalls.len());
        out
    }

    /// The same facts as [`Profile::render_text`], for programs: one object per syscall with
    /// its `name`, `groups`, `action` (as in the text: `allow`, `allow if …`, `errno EPERM`)
    /// and `reason`, in the order of the text.
    pub fn syscalls_json(&self) -> Value {
        let rows: Vec<Value> = self
            .syscalls
            .iter()
            .map(|s| {
                let groups: Vec<&str> = dedup(s.entries.iter().map(|e| e.group))
                    .into_iter()
                    .map(Group::name)
                    .collect();
                json!({
                    "name": s.name,
                    "groups": groups,
                    "action": action_text(s),
                    "reason": dedup(s.entries.iter().map(|e| e.reason)).join("; "),
                })
            })
            .collect();
        Value::Array(rows)
    }

    /// The profile as an OCI runtime seccomp profile (the JSON Docker, Podman and Kubernetes
    /// take), with `defaultAction` `SCMP_ACT_KILL_PROCESS`. A container runtime applies its
    /// profile from the container's first `execve`: only a [`Stage::Container`] profile covers
    /// that; a [`Stage::Run`] one covers what happens after warden's setup, and is for
    /// reviewing and comparing with other tools (applied to a container, it kills warden
    /// before its first instruction).
    ///
    /// OCI conditions within one entry all have to hold, so a syscall allowed under one of
    /// several conditions becomes one entry per condition. Unconditional syscalls with the same
    /// action share an entry. `SCMP_CMP_MASKED_EQ` takes the mask as `value` and the expected
    /// bits as `valueTwo`. libseccomp compares all 64 bits of an argument where this crate's
    /// own filter compares the low 32 (the width of every compared argument), so the OCI
    /// profile is, if anything, stricter.
    pub fn to_oci_json(&self) -> String {
        self.oci_value(Mode::Enforce).to_string()
    }

    /// [`Profile::to_oci_json`] for a given mode, pretty-printed.
    pub fn to_oci_json_pretty(&self, mode: Mode) -> String {
        serde_json::to_string_pretty(&self.oci_value(mode)).unwrap_or_default()
    }

    fn oci_value(&self, mode: Mode) -> Value {
        let default = match mode {
            Mode::Enforce => "SCMP_ACT_KILL_PROCESS",
            Mode::Log => "SCMP_ACT_LOG",
        };
        let mut always_allowed: Vec<&str> = Vec::new();
        let mut always_errno: Vec<(i32, Vec<&str>)> = Vec::new();
        let mut conditional: Vec<Value> = Vec::new();
        for s in &self.syscalls {
            if let Some(w) = &s.allow {
                match w {
                    When::Always => always_allowed.push(s.name),
                    When::AnyOf(rules) => {
                        conditional.extend(
                            rules
                                .iter()
                                .map(|r| oci_entry(&[s.name], Action::Allow, Some(r))),
                        );
                    }
                }
            }
            if let Some((e, w)) = &s.errno {
                match w {
                    When::Always => match always_errno.iter_mut().find(|(e0, _)| e0 == e) {
                        Some((_, names)) => names.push(s.name),
                        None => always_errno.push((*e, vec![s.name])),
                    },
                    When::AnyOf(rules) => {
                        conditional.extend(
                            rules
                                .iter()
                                .map(|r| oci_entry(&[s.name], Action::Errno(*e), Some(r))),
                        );
                    }
                }
            }
        }
        let mut syscalls = Vec::new();
        if !always_allowed.is_empty() {
            syscalls.push(oci_entry(&always_allowed, Action::Allow, None));
        }
        for (e, names) in &always_errno {
            syscalls.push(oci_entry(names, Action::Errno(*e), None));
        }
        syscalls.extend(conditional);
        json!({
            "defaultAction": default,
            "architectures": [arch::OCI_ARCH],
            "syscalls": syscalls,
        })
    }
}

impl Profile {
    /// The profile as a Security Profiles Operator `SeccompProfile` object
    /// (`security-profiles-operator.x-k8s.io/v1beta1`), named `name`, as JSON (which
    /// `kubectl apply` takes like YAML): SPO writes its `spec` to every node as an OCI
    /// profile, under `operator/NAMESPACE/NAME.json` in the kubelet's seccomp folder.
    pub fn to_spo_json(&self, name: &str) -> String {
        let spec = self.oci_value(Mode::Enforce);
        let object = json!({
            "apiVersion": "security-profiles-operator.x-k8s.io/v1beta1",
            "kind": "SeccompProfile",
            "metadata": {
                "name": name,
                "annotations": {
                    "warden.dev/stage": self.stage.name(),
                    "warden.dev/syscalls": self.syscall_count().to_string(),
                },
            },
            "spec": spec,
        });
        serde_json::to_string_pretty(&object).unwrap_or_default()
    }
}

fn oci_entry(names: &[&str], action: Action, rule: Option<&Rule>) -> Value {
    let mut entry = serde_json::Map::new();
    entry.insert("names".into(), json!(names));
    match action {
        Action::Allow => {
            entry.insert("action".into(), json!("SCMP_ACT_ALLOW"));
        }
        Action::Errno(e) => {
            entry.insert("action".into(), json!("SCMP_ACT_ERRNO"));
            entry.insert("errnoRet".into(), json!(e));
        }
    }
    if let Some(rule) = rule {
        let args: Vec<Value> = rule
            .iter()
            .map(|c| {
                let (op, value, value_two) = match c.cmp {
                    Cmp::Eq(v) => ("SCMP_CMP_EQ", v, 0),
                    Cmp::MaskedEq { mask, value } => ("SCMP_CMP_MASKED_EQ", mask, value),
                };
                json!({ "index": c.arg, "value": value, "valueTwo": value_two, "op": op })
            })
            .collect();
        entry.insert("args".into(), Value::Array(args));
    }
    Value::Object(entry)
}
