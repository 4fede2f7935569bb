//! Unit tests of the table, the profiles and their renderings. Nothing here installs a filter
//! (see `tests/lockdown.rs`).

use std::collections::BTreeSet;

use crate::rule::{Action, Cmp, When};
use crate::{CONTAINER_EXCEPTIONS, Group, Mode, NEVER, Profile, Stage, arch, table};

/// The goal for the base profile: stdout only, no files, no network (26, and
/// `restart_syscall`, which a frozen and thawed container needs for its sleeping threads).
const BASE_BUDGET: usize = 27;

/// Every combination of groups.
fn all_profiles() -> Vec<Profile> {
    let n = Group::ALL.len();
    (0..1u32 << n)
        .map(|mask| {
            let groups: Vec<Group> = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| Group::ALL[i])
                .collect();
            Profile::new(&groups)
        })
        .collect()
}

#[test]
fn the_base_profile_fits_its_budget() {
    let base = Profile::new(&[]);
    assert!(
        base.syscall_count() <= BASE_BUDGET,
        "{} syscalls:\n{}",
        base.syscall_count(),
        base.render_text()
    );
    assert_eq!(base.groups(), &[Group::Base]);
    assert_eq!(Profile::new(&[Group::Base]).syscalls(), base.syscalls());
}

#[test]
fn syscalls_are_distinct_and_sorted() {
    for p in all_profiles() {
        let names = p.syscalls();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(p.syscall_count(), names.len());
    }
}

#[test]
fn groups_bring_what_they_require() {
    // File grants start no thread after the lockdown (the runtime's blocking pool is
    // started before it): no Threads group, so no `clone`.
    let p = Profile::new(&[Group::FileWrite]);
    assert_eq!(
        p.groups(),
        &[Group::Base, Group::FileRead, Group::FileWrite]
    );
    let p = Profile::new(&[Group::Network]);
    assert_eq!(p.groups(), &[Group::Base, Group::Threads, Group::Network]);
    let p = Profile::new(&[Group::Stdin, Group::Stdin]);
    assert_eq!(p.groups(), &[Group::Base, Group::Stdin]);
    let p = Profile::new(&[Group::FileStaging]);
    assert_eq!(
        p.groups(),
        &[Group::Base, Group::FileRead, Group::FileStaging]
    );
    for g in Group::ALL {
        let p = Profile::new(&[g]);
        for r in g.requires() {
            assert!(p.groups().contains(r), "{g} without {r}");
        }
    }
}

#[test]
fn group_sizes_stay_small() {
    let base = Profile::new(&[]).syscall_count();
    for g in Group::ALL {
        let n = Profile::new(&[g]).syscall_count();
        assert!(n >= base);
        // Nothing a single grant brings may double the list.
        assert!(n - base <= 25, "{g} adds {}", n - base);
    }
}

#[test]
fn no_profile_ever_lists_a_forbidden_syscall() {
    let all = Profile::new(&Group::ALL);
    for name in NEVER {
        assert!(!all.syscalls().contains(name), "{name} is listed");
    }
}

#[test]
fn every_listed_syscall_has_a_number_on_this_architecture() {
    for e in table::TABLE {
        assert!(arch::number(e.name).is_some(), "{} has no number", e.name);
    }
}

#[test]
fn every_entry_has_a_one_line_reason() {
    for e in table::TABLE {
        assert!(!e.reason.trim().is_empty(), "{} has no reason", e.name);
        assert!(!e.reason.contains('\n'), "{}'s reason spans lines", e.name);
        assert!(e.reason.len() <= 100, "{}'s reason is long", e.name);
    }
}

#[test]
fn a_syscall_has_one_entry_per_group_and_one_errno() {
    let mut seen = BTreeSet::new();
    for e in table::TABLE {
        assert!(
            seen.insert((e.name, e.group, e.stage)),
            "{} twice in {} ({})",
            e.name,
            e.group,
            e.stage
        );
        if let Action::Errno(x) = e.action {
            for other in table::TABLE.iter().filter(|o| o.name == e.name) {
                if let Action::Errno(y) = other.action {
                    assert_eq!(x, y, "{} answered with two errnos", e.name);
                }
            }
        }
    }
}

#[test]
fn errno_answers_never_overlap_what_a_profile_allows() {
    // Where a syscall is both allowed and refused with an errno, the errno filter would win
    // over the allowance; the table avoids that: either the allowance covers the errno's cases
    // (and the errno line is dropped), or the syscall has only one of the two.
    for p in all_profiles() {
        for s in &p.syscalls {
            assert!(
                !(s.allow.is_some() && s.errno.is_some()),
                "{} both allowed and refused in {:?}",
                s.name,
                p.groups()
            );
        }
    }
}

/// Whether `name` may run with any arguments in `p`.
fn allowed_always(p: &Profile, name: &str) -> bool {
    p.syscalls
        .iter()
        .any(|s| s.name == name && s.allow == Some(When::Always))
}

fn allowed_at_all(p: &Profile, name: &str) -> bool {
    p.syscalls
        .iter()
        .any(|s| s.name == name && s.allow.is_some())
}

#[test]
fn memory_is_never_mapped_executable() {
    for p in all_profiles() {
        for name in ["mmap", "mprotect"] {
            let s = p.syscalls.iter().find(|s| s.name == name);
            let Some(When::AnyOf(rules)) = s.and_then(|s| s.allow.clone()) else {
                panic!("{name} must be allowed with conditions in {:?}", p.groups());
            };
            for rule in rules {
                assert!(
                    rule.iter().any(|c| c.arg == 2
                        && c.cmp
                            == Cmp::MaskedEq {
                                mask: libc::PROT_EXEC as u64,
                                value: 0
                            }),
                    "{name} allowed without the W^X condition"
                );
            }
        }
    }
}

#[test]
fn each_capability_comes_only_with_its_group() {
    for p in all_profiles() {
        let has = |g: Group| p.groups().contains(&g);
        assert_eq!(allowed_at_all(&p, "socket"), has(Group::Network));
        assert_eq!(allowed_at_all(&p, "connect"), has(Group::Network));
        assert_eq!(allowed_at_all(&p, "listen"), has(Group::NetworkListen));
        assert_eq!(allowed_at_all(&p, "accept4"), has(Group::NetworkListen));
        assert_eq!(allowed_always(&p, "openat"), has(Group::FileWrite));
        assert_eq!(
            allowed_at_all(&p, "openat"),
            has(Group::FileRead) || has(Group::FileWrite)
        );
        assert_eq!(allowed_at_all(&p, "clone"), has(Group::Threads));
        assert_eq!(
            allowed_at_all(&p, "unlinkat"),
            has(Group::FileWrite) || has(Group::FileStaging)
        );
        assert_eq!(allowed_at_all(&p, "mkdirat"), has(Group::FileWrite));
        assert_eq!(allowed_at_all(&p, "getdents64"), has(Group::FileRead));
        assert_eq!(
            allowed_always(&p, "read"),
            has(Group::FileRead),
            "read of any fd only with file-read"
        );
    }
}

/// The argument conditions of `name`'s allowance in `p`, which must have some.
fn allow_rules(p: &Profile, name: &str) -> Vec<Vec<(u8, Cmp)>> {
    let s = p.syscalls.iter().find(|s| s.name == name);
    let Some(When::AnyOf(rules)) = s.and_then(|s| s.allow.clone()) else {
        panic!("{name} must be allowed with conditions in {:?}", p.groups());
    };
    rules
        .iter()
        .map(|r| r.iter().map(|c| (c.arg, c.cmp)).collect())
        .collect()
}

#[test]
fn mremap_may_move_a_block_but_never_to_a_chosen_address() {
    // glibc's realloc of an mmap-ed block: MREMAP_MAYMOVE or no flags. MREMAP_FIXED (and
    // MREMAP_DONTUNMAP, which needs MAYMOVE and is a different value) never match.
    for p in all_profiles() {
        let rules = allow_rules(&p, "mremap");
        assert_eq!(
            rules,
            vec![
                vec![(3, Cmp::Eq(libc::MREMAP_MAYMOVE as u64))],
                vec![(3, Cmp::Eq(0))]
            ]
        );
    }
}

#[test]
fn faccessat2_and_clock_getres_come_only_with_their_grants() {
    for p in all_profiles() {
        let has = |g: Group| p.groups().contains(&g);
        assert_eq!(allowed_at_all(&p, "faccessat2"), has(Group::FileRead));
        assert_eq!(allowed_at_all(&p, "clock_getres"), has(Group::Clocks));
        if has(Group::FileRead) {
            // Only "may this folder be searched", as cap-std asks before resolving `..`.
            assert_eq!(
                allow_rules(&p, "faccessat2"),
                vec![vec![
                    (2, Cmp::Eq(libc::X_OK as u64)),
                    (3, Cmp::Eq(libc::AT_EACCESS as u64))
                ]]
            );
        }
    }
    // The clocks group is that one syscall.
    assert_eq!(
        Profile::new(&[Group::Clocks]).syscall_count(),
        Profile::new(&[]).syscall_count() + 1
    );
}

#[test]
fn the_base_profile_answers_read_only_opens_with_eacces_only() {
    let base = Profile::new(&[]);
    let openat = base.syscalls.iter().find(|s| s.name == "openat");
    let openat = openat.expect("base lists openat");
    assert!(openat.allow.is_none());
    assert!(matches!(openat.errno, Some((libc::EACCES, When::AnyOf(_)))));
    let with_files = Profile::new(&[Group::FileRead]);
    let openat = with_files.syscalls.iter().find(|s| s.name == "openat");
    assert!(openat.is_some_and(|s| s.errno.is_none() && s.allow.is_some()));
}

#[test]
fn render_text_lists_each_syscall_once_with_its_reason_and_a_count() {
    for p in [
        Profile::new(&[]),
        Profile::new(&[Group::FileWrite, Group::Stdin]),
        Profile::new(&Group::ALL),
        Profile::for_stage(&[Group::FileWrite], Stage::Container),
    ] {
        let text = p.render_text();
        let lines: Vec<&str> = text.lines().collect();
        let (last, rows) = lines.split_last().expect("some lines");
        assert_eq!(*last, format!("{} syscalls", p.syscall_count()));
        assert_eq!(rows.len(), p.syscall_count());
        let names: Vec<&str> = rows
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect();
        assert_eq!(names, p.syscalls(), "one line per syscall, in order");
        for row in rows {
            let (_, reason) = row.split_once(" — ").expect("a reason after the dash");
            assert!(!reason.trim().is_empty(), "{row}");
            let group = row.split_whitespace().nth(1).unwrap_or_default();
            assert!(
                group
                    .split(',')
                    .all(|g| g == "setup" || Group::ALL.iter().any(|x| x.name() == g)),
                "{row}"
            );
        }
    }
    let base = Profile::new(&[]).render_text();
    assert!(base.contains("prot & PROT_EXEC == 0"), "{base}");
}

#[test]
fn to_oci_json_is_an_oci_seccomp_profile() {
    let p = Profile::new(&[Group::FileWrite, Group::Stdin]);
    let json: serde_json::Value = serde_json::from_str(&p.to_oci_json()).expect("valid JSON");
    assert_eq!(json["defaultAction"], "SCMP_ACT_KILL_PROCESS");
    let arch = if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    };
    assert_eq!(json["architectures"], serde_json::json!([arch]));
    let entries = json["syscalls"].as_array().expect("a syscalls array");
    let mut named = BTreeSet::new();
    for e in entries {
        let names = e["names"].as_array().expect("names");
        assert!(!names.is_empty());
        named.extend(names.iter().filter_map(|n| n.as_str()));
        match e["action"].as_str() {
            Some("SCMP_ACT_ALLOW") => assert!(e.get("errnoRet").is_none()),
            Some("SCMP_ACT_ERRNO") => assert!(e["errnoRet"].as_i64().is_some_and(|n| n > 0)),
            other => panic!("unexpected action {other:?}"),
        }
        if let Some(args) = e.get("args") {
            for a in args.as_array().expect("args is an array") {
                assert!(a["index"].as_u64().is_some_and(|i| i < 6));
                assert!(a["value"].is_u64());
                assert!(a["valueTwo"].is_u64());
                assert!(matches!(
                    a["op"].as_str(),
                    Some("SCMP_CMP_EQ" | "SCMP_CMP_MASKED_EQ")
                ));
            }
        }
    }
    let listed: BTreeSet<&str> = p.syscalls().into_iter().collect();
    assert_eq!(named, listed, "every syscall appears, and nothing else");

    // OR-ed conditions become one entry each: futex has four allowed operations.
    let futex = entries
        .iter()
        .filter(|e| e["names"] == serde_json::json!(["futex"]))
        .count();
    assert_eq!(futex, 4);
    // The masked comparison carries the mask in `value` and the bits in `valueTwo`.
    let mmap = entries
        .iter()
        .find(|e| e["names"] == serde_json::json!(["mmap"]))
        .expect("mmap entry");
    assert_eq!(
        mmap["args"],
        serde_json::json!([{ "index": 2, "value": libc::PROT_EXEC, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }])
    );

    let log: serde_json::Value =
        serde_json::from_str(&p.to_oci_json_pretty(Mode::Log)).expect("valid JSON");
    assert_eq!(log["defaultAction"], "SCMP_ACT_LOG");
}

#[test]
fn every_profile_compiles_to_bpf_within_the_kernel_limit() {
    for p in all_profiles() {
        for mode in [Mode::Enforce, Mode::Log] {
            let program = p.compile(mode).expect("compiles");
            // BPF_MAXINSNS; one program, where there were one per errno plus the allow list.
            assert!(!program.is_empty());
            assert!(program.len() <= 4096, "{} instructions", program.len());
        }
    }
}

/// Every combination of groups, at the container stage.
fn all_container_profiles() -> Vec<Profile> {
    all_profiles()
        .iter()
        .map(|p| Profile::for_stage(p.groups(), Stage::Container))
        .collect()
}

#[test]
fn the_run_stage_has_no_setup_lines() {
    for p in all_profiles() {
        assert_eq!(p.stage(), Stage::Run);
        for s in &p.syscalls {
            assert!(
                s.entries.iter().all(|e| e.stage == Stage::Run),
                "{}",
                s.name
            );
        }
    }
    assert!(!Profile::new(&Group::ALL).syscalls().contains(&"execve"));
}

#[test]
fn the_container_stage_keeps_everything_the_run_stage_allows() {
    // The process runs on under the container's profile after warden's own lockdown, so each
    // case the run stage allows must be allowed by the container stage too.
    for run in all_profiles() {
        let container = Profile::for_stage(run.groups(), Stage::Container);
        assert_eq!(container.groups(), run.groups());
        assert!(container.syscall_count() > run.syscall_count());
        for r in &run.syscalls {
            let c = container.syscalls.iter().find(|c| c.name == r.name);
            let c = c.unwrap_or_else(|| panic!("{} missing at the container stage", r.name));
            if let Some(allow) = &r.allow {
                let wide = c.allow.as_ref().is_some_and(|w| w.covers(allow));
                assert!(wide, "{} narrower at the container stage", r.name);
            }
            if let Some((e, _)) = &r.errno {
                // Either still answered with the same errno, or allowed outright there.
                assert!(
                    c.errno.as_ref().is_some_and(|(e2, _)| e2 == e) || c.allow.is_some(),
                    "{}",
                    r.name
                );
            }
        }
    }
}

#[test]
#[allow(clippy::unnecessary_cast)] // SECCOMP_FILTER_FLAG_TSYNC is a c_ulong
fn the_container_stage_allows_nothing_never_allowed_but_its_two_exceptions() {
    for p in all_container_profiles() {
        for name in NEVER {
            let s = p.syscalls.iter().find(|s| s.name == *name);
            let allowed = s.is_some_and(|s| s.allow.is_some());
            assert_eq!(
                allowed,
                CONTAINER_EXCEPTIONS.contains(name),
                "{name} in {:?}",
                p.groups()
            );
        }
        // execve: the runtime's exec of warden. seccomp: only a further filter or a probe.
        assert!(allowed_always(&p, "execve"));
        assert_eq!(
            allow_rules(&p, "seccomp"),
            vec![
                vec![
                    (0, Cmp::Eq(libc::SECCOMP_SET_MODE_FILTER as u64)),
                    (1, Cmp::Eq(libc::SECCOMP_FILTER_FLAG_TSYNC as u64))
                ],
                vec![
                    (0, Cmp::Eq(libc::SECCOMP_GET_ACTION_AVAIL as u64)),
                    (1, Cmp::Eq(0))
                ],
            ]
        );
        // memfd_create is answered, never run: wasmtime then copies memory images instead.
        let memfd = p.syscalls.iter().find(|s| s.name == "memfd_create");
        assert!(memfd.is_some_and(
            |s| s.allow.is_none() && matches!(s.errno, Some((libc::ENOSYS, When::Always)))
        ));
    }
}

#[test]
fn the_container_stage_starts_threads_never_processes_and_opens_sockets_only_when_granted() {
    for p in all_container_profiles() {
        let has = |g: Group| p.groups().contains(&g);
        assert_eq!(allowed_at_all(&p, "socket"), has(Group::Network));
        assert_eq!(allowed_at_all(&p, "connect"), has(Group::Network));
        assert!(
            !allowed_at_all(&p, "clone3"),
            "clone3's flags cannot be checked"
        );
        let rules = allow_rules(&p, "clone");
        assert_eq!(rules.len(), 1);
        assert!(matches!(rules[0][..], [(0, Cmp::MaskedEq { value, .. })]
            if value & libc::CLONE_THREAD as u64 != 0));
        // Limits are read, never set; prctl is limited to its three options.
        assert_eq!(allow_rules(&p, "prlimit64").len(), 1);
        assert_eq!(allow_rules(&p, "prctl").len(), 3);
        for name in ["ptrace", "mount", "unshare", "bpf", "kexec_load"] {
            assert!(!p.syscalls().contains(&name), "{name}");
        }
        // Listening only with a listen grant.
        for name in ["listen", "accept4"] {
            assert_eq!(
                p.syscalls().contains(&name),
                has(Group::NetworkListen),
                "{name}"
            );
        }
    }
}

#[test]
fn container_profiles_compile_and_export() {
    for p in all_container_profiles() {
        let program = p.compile(Mode::Enforce).expect("compiles");
        assert!(program.len() <= 4096, "{} instructions", program.len());
    }
    let p = Profile::for_stage(&[Group::FileWrite, Group::FileStaging], Stage::Container);
    let oci: serde_json::Value = serde_json::from_str(&p.to_oci_json()).expect("JSON");
    let named: BTreeSet<&str> = oci["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .flat_map(|e| e["names"].as_array().expect("names"))
        .filter_map(|n| n.as_str())
        .collect();
    assert_eq!(named, p.syscalls().into_iter().collect());
    let spo: serde_json::Value =
        serde_json::from_str(&p.to_spo_json("warden-x-container")).expect("JSON");
    assert_eq!(spo["kind"], "SeccompProfile");
    assert_eq!(
        spo["apiVersion"],
        "security-profiles-operator.x-k8s.io/v1beta1"
    );
    assert_eq!(spo["metadata"]["name"], "warden-x-container");
    assert_eq!(spo["spec"], oci, "the spec is the OCI profile");
    let text = p.render_text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("execve ") && l.contains("setup"))
    );
}

#[test]
fn the_serve_stage_keeps_the_container_stage_and_adds_only_the_servers_lines() {
    for run in all_profiles() {
        let container = Profile::for_stage(run.groups(), Stage::Container);
        let serve = Profile::for_stage(run.groups(), Stage::Serve);
        assert!(serve.groups().contains(&Group::ServeWorker));
        for c in &container.syscalls {
            let s = serve.syscalls.iter().find(|s| s.name == c.name);
            let s = s.unwrap_or_else(|| panic!("{} missing at the serve stage", c.name));
            if let Some(allow) = &c.allow {
                let wide = s.allow.as_ref().is_some_and(|w| w.covers(allow));
                assert!(wide, "{} narrower at the serve stage", c.name);
            }
        }
        // The server's own lines are in no other stage's profile (listening sockets are in
        // them only with a listen grant).
        for name in ["listen", "accept4", "pipe2", "wait4", "kill"] {
            let granted = run.groups().contains(&Group::NetworkListen)
                && ["listen", "accept4"].contains(&name);
            assert!(allowed_at_all(&serve, name), "{name} at the serve stage");
            assert_eq!(
                allowed_at_all(&container, name),
                granted,
                "{name} at the container stage"
            );
            assert_eq!(
                allowed_at_all(&run, name),
                granted,
                "{name} at the run stage"
            );
        }
    }
    // A worker is started by vfork and exec only: no fork, and no other clone of a process.
    let serve = Profile::for_stage(&[], Stage::Serve);
    for never in ["fork", "vfork", "ptrace", "execveat"] {
        assert!(!allowed_at_all(&serve, never), "{never}");
    }
}
