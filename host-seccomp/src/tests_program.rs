//! The one-program filter against the stacked seccompiler filters it replaced, run by a small
//! classic-BPF interpreter: every profile the crate can build (each stage, each combination of
//! groups, both modes), every syscall number 0 to 500 and a few beyond, with argument values on
//! both sides of every argument check, must get the same answer from both. Nothing here
//! installs a filter (see `tests/lockdown.rs`).

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};

use crate::rule::{Cmp, Cond, When};
use crate::{Group, Mode, Profile, Stage, arch, seccomp_rules, table};

// --- The filters as they were --------------------------------------------------------------

/// The profile as `Profile::compile` built it before the single program: one seccompiler
/// filter per errno (allowing everything else), then the allow list, installed in that order.
fn legacy_compile(p: &Profile, mode: Mode) -> Vec<BpfProgram> {
    let arch = arch::TARGET.expect("a supported architecture");
    let mut errno_rules: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    let mut allow_rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for s in &p.syscalls {
        let nr = arch::number(s.name).expect("a number");
        let mut passes: Option<When> = s.allow.clone();
        if let Some((e, when)) = &s.errno {
            errno_rules
                .entry(*e)
                .or_default()
                .insert(nr, seccomp_rules(when).expect("rules"));
            passes = Some(match passes {
                Some(w) => w.union(when.clone()),
                None => when.clone(),
            });
        }
        if let Some(w) = passes {
            allow_rules.insert(nr, seccomp_rules(&w).expect("rules"));
        }
    }
    let mut programs = Vec::new();
    for (e, rules) in errno_rules {
        let errno = u32::try_from(e).expect("a positive errno");
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno),
            arch,
        )
        .expect("filter");
        programs.push(BpfProgram::try_from(filter).expect("program"));
    }
    let filter = SeccompFilter::new(
        allow_rules,
        mode.default_action(),
        SeccompAction::Allow,
        arch,
    )
    .expect("filter");
    programs.push(BpfProgram::try_from(filter).expect("program"));
    programs
}

// --- A classic-BPF interpreter, as the kernel runs a seccomp filter --------------------------

const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// `AUDIT_ARCH_I386`: a 32-bit syscall on x86-64, or any foreign architecture.
const FOREIGN_ARCH: u32 = 0x4000_0003;

/// `struct seccomp_data`, as a filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

fn native_arch() -> u32 {
    if cfg!(target_arch = "aarch64") {
        0xc000_00b7
    } else {
        0xc000_003e
    }
}

impl Data {
    /// The 32-bit word at byte `offset` (little-endian, as on x86-64 and aarch64).
    fn word(&self, offset: u32) -> u32 {
        assert!(offset.is_multiple_of(4) && offset < 64, "load at {offset}");
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0, // instruction_pointer
            _ => {
                let arg = self.args[(offset as usize - 16) / 8];
                if (offset - 16).is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
        }
    }
}

/// Runs `program` on `data`: its return value and how many instructions it executed. Panics on
/// anything the kernel would refuse (an unknown instruction, a jump out of the program).
fn run(program: &[seccompiler::sock_filter], data: &Data) -> (u32, usize) {
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let i = program.get(pc).expect("the program ran off its end");
        steps += 1;
        let (jt, jf) = (usize::from(i.jt), usize::from(i.jf));
        match i.code {
            LD_W_ABS => acc = data.word(i.k),
            ALU_AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K => pc += if acc == i.k { jt } else { jf },
            JGT_K => pc += if acc > i.k { jt } else { jf },
            JGE_K => pc += if acc >= i.k { jt } else { jf },
            JSET_K => pc += if acc & i.k != 0 { jt } else { jf },
            RET_K => return (i.k, steps),
            other => panic!("instruction {other:#x} at {pc}"),
        }
        pc += 1;
    }
}

/// The answer of stacked filters installed in order `programs`: the kernel runs the newest
/// first and keeps the strictest action (the lowest as a signed number; the first on a tie).
fn run_stack(programs: &[BpfProgram], data: &Data) -> (u32, usize) {
    let mut answer = RET_ALLOW;
    let mut steps = 0;
    for p in programs.iter().rev() {
        let (r, n) = run(p, data);
        steps += n;
        if ((r & 0xffff_0000) as i32) < ((answer & 0xffff_0000) as i32) {
            answer = r;
        }
    }
    (answer, steps)
}

/// Whether the kernel proves `program` allows syscall `nr` whatever its arguments, and so
/// skips running it (`seccomp_is_const_allow`, Linux 5.11+): it follows the program with only
/// the number and the architecture known, and gives up at the first load of anything else.
fn const_allow(program: &[seccompiler::sock_filter], nr: u32) -> bool {
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    while let Some(i) = program.get(pc) {
        let (jt, jf) = (usize::from(i.jt), usize::from(i.jf));
        match i.code {
            LD_W_ABS => match i.k {
                0 => acc = nr,
                4 => acc = native_arch(),
                _ => return false,
            },
            ALU_AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K => pc += if acc == i.k { jt } else { jf },
            JGT_K => pc += if acc > i.k { jt } else { jf },
            JGE_K => pc += if acc >= i.k { jt } else { jf },
            JSET_K => pc += if acc & i.k != 0 { jt } else { jf },
            RET_K => return i.k == RET_ALLOW,
            _ => return false,
        }
        pc += 1;
    }
    false
}

// --- What the two are compared on ----------------------------------------------------------

/// Every distinct profile the crate can build: each stage with each combination of groups.
fn every_profile() -> Vec<Profile> {
    let n = Group::ALL.len();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for stage in [Stage::Run, Stage::Container, Stage::Serve] {
        for mask in 0..1u32 << n {
            let groups: Vec<Group> = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| Group::ALL[i])
                .collect();
            let p = Profile::for_stage(&groups, stage);
            let key: Vec<String> = p
                .syscalls
                .iter()
                .map(|s| format!("{} {:?} {:?}", s.name, s.allow, s.errno))
                .collect();
            if seen.insert(key) {
                out.push(p);
            }
        }
    }
    out
}

/// A value that meets `cmp`, and values that miss it.
fn meets_and_misses(cmp: Cmp) -> (Vec<u64>, Vec<u64>) {
    match cmp {
        Cmp::Eq(v) => (
            vec![v, v | 0xffff_ffff_0000_0000],
            vec![v ^ 1, v.wrapping_add(0x100), !v],
        ),
        Cmp::MaskedEq { mask, value } => {
            let low_mask = mask & 0xffff_ffff;
            let lowest = low_mask & low_mask.wrapping_neg();
            (
                // Exactly the bits; plus every bit the mask ignores; plus the upper half.
                vec![
                    value & mask,
                    (value & mask) | (!mask & 0xffff_ffff),
                    (value & mask) | 0xffff_ffff_0000_0000,
                ],
                vec![value ^ lowest, value ^ low_mask],
            )
        }
    }
}

/// Argument vectors for syscall `name`: for each rule any table line gives it, one meeting the
/// rule and, for each of its conditions, ones missing only that condition; plus fixed vectors.
fn arguments_for(name: &str, seed: u32) -> BTreeSet<[u64; 6]> {
    let mut out = BTreeSet::new();
    out.insert([0; 6]);
    out.insert([u64::MAX; 6]);
    let mut x = u64::from(seed) | 1 << 40;
    for _ in 0..3 {
        let mut args = [0; 6];
        for a in &mut args {
            // xorshift: arbitrary but repeatable values.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *a = x;
        }
        out.insert(args);
    }
    for e in table::TABLE.iter().filter(|e| e.name == name) {
        for rule in e.when {
            let rule: &[Cond] = rule;
            let mut base = [0u64; 6];
            for c in rule {
                base[usize::from(c.arg)] = meets_and_misses(c.cmp).0[0];
            }
            for c in rule {
                let (meets, misses) = meets_and_misses(c.cmp);
                for v in meets.into_iter().chain(misses) {
                    let mut args = base;
                    args[usize::from(c.arg)] = v;
                    out.insert(args);
                }
            }
        }
    }
    out
}

/// Every syscall number looked at: 0 to 500 (past the last x86-64 and aarch64 syscall), and a
/// few beyond (x32's `openat`, the largest numbers).
fn numbers() -> Vec<u32> {
    let mut nrs: Vec<u32> = (0..=500).collect();
    nrs.extend([
        0x4000_0000 | 257,
        1023,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX - 1,
        u32::MAX,
    ]);
    nrs
}

/// Every (number, arguments) case, and a few of another architecture.
fn cases() -> Vec<Data> {
    let names: BTreeMap<i64, &str> = table::TABLE
        .iter()
        .filter_map(|e| Some((arch::number(e.name)?, e.name)))
        .collect();
    let mut out = Vec::new();
    for nr in numbers() {
        let name = names.get(&i64::from(nr)).copied().unwrap_or("");
        for args in arguments_for(name, nr) {
            out.push(Data {
                nr,
                arch: native_arch(),
                args,
            });
        }
    }
    for nr in [0, 1, 5, 59, 257, 500] {
        out.push(Data {
            nr,
            arch: FOREIGN_ARCH,
            args: [0; 6],
        });
    }
    out
}

/// The first case on which `old` (stacked) and `new` answer differently.
fn first_difference(old: &[BpfProgram], new: &BpfProgram, cases: &[Data]) -> Option<String> {
    cases.iter().find_map(|d| {
        let (a, _) = run_stack(old, d);
        let (b, _) = run(new, d);
        (a != b).then(|| format!("nr {} args {:x?}: old {a:#x}, new {b:#x}", d.nr, d.args))
    })
}

fn describe(p: &Profile) -> String {
    format!("{} {:?}", p.stage(), p.groups())
}

// --- Tests ---------------------------------------------------------------------------------

#[test]
fn one_program_answers_every_case_as_the_stacked_filters_did() {
    let cases = cases();
    assert!(cases.len() > 2000, "{} cases", cases.len());
    let profiles = every_profile();
    // Run: the closures of the groups; container and serve: as many again, and more.
    assert!(profiles.len() > 50, "{} profiles", profiles.len());
    for p in &profiles {
        for mode in [Mode::Enforce, Mode::Log] {
            let old = legacy_compile(p, mode);
            let new = p.compile(mode).expect("compiles");
            assert!(new.len() <= crate::program::MAX_LEN);
            if let Some(d) = first_difference(&old, &new, &cases) {
                panic!("{} ({mode:?}): {d}", describe(p));
            }
        }
    }
}

#[test]
fn the_kernel_skips_the_filter_for_the_same_syscalls_as_before() {
    // The kernel caches "allowed whatever the arguments" per syscall number for the whole stack
    // of filters; a syscall that lost it would run the filter on every call.
    for p in every_profile() {
        let old = legacy_compile(&p, Mode::Enforce);
        let new = p.compile(Mode::Enforce).expect("compiles");
        let mut cached = 0;
        for nr in 0..=500 {
            let before = old.iter().all(|prog| const_allow(prog, nr));
            assert_eq!(const_allow(&new, nr), before, "{} nr {nr}", describe(&p));
            cached += usize::from(before);
        }
        assert!(cached > 10, "{}", describe(&p));
    }
}

/// Changes one syscall's verdict in a copy of `p`.
fn perturbed(p: &Profile, name: &str, change: impl Fn(&mut crate::Syscall)) -> Profile {
    let mut q = p.clone();
    let s = q.syscalls.iter_mut().find(|s| s.name == name);
    change(s.unwrap_or_else(|| panic!("{name} is listed")));
    q
}

#[test]
fn the_comparison_notices_one_changed_verdict() {
    // The control of the test above: each change of one rule must be caught.
    let cases = cases();
    let files = Profile::new(&[Group::FileRead, Group::Threads]);
    let old = legacy_compile(&files, Mode::Enforce);
    assert_eq!(
        first_difference(
            &old,
            &files.compile(Mode::Enforce).expect("compiles"),
            &cases
        ),
        None
    );
    let changes: Vec<(&str, Profile)> = vec![
        // An argument check dropped: openat with any flags.
        (
            "openat always",
            perturbed(&files, "openat", |s| s.allow = Some(When::Always)),
        ),
        // One of four alternatives dropped: FUTEX_WAKE_BITSET.
        (
            "futex without one op",
            perturbed(&files, "futex", |s| {
                if let Some(When::AnyOf(rules)) = &mut s.allow {
                    rules.pop();
                }
            }),
        ),
        // An unconditional syscall removed.
        ("no close", perturbed(&files, "close", |s| s.allow = None)),
        // Another errno.
        (
            "openat2 EPERM",
            perturbed(&files, "openat2", |s| {
                s.errno = s.errno.take().map(|(_, w)| (libc::EPERM, w));
            }),
        ),
        // A probed syscall allowed instead of answered.
        (
            "clone3 allowed",
            perturbed(&files, "clone3", |s| {
                s.errno = None;
                s.allow = Some(When::Always);
            }),
        ),
    ];
    for (what, q) in changes {
        let new = q.compile(Mode::Enforce).expect("compiles");
        assert!(
            first_difference(&old, &new, &cases).is_some(),
            "{what} went unnoticed"
        );
    }
    // And the other way round: the old filters of a changed profile against the new program.
    let log = legacy_compile(&files, Mode::Log);
    let enforce = files.compile(Mode::Enforce).expect("compiles");
    assert!(first_difference(&log, &enforce, &cases).is_some());
}

fn data(nr: i64, args: [u64; 6]) -> Data {
    Data {
        nr: u32::try_from(nr).expect("a number"),
        arch: native_arch(),
        args,
    }
}

#[test]
fn probed_syscalls_get_their_errno_and_the_rest_is_killed() {
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
    let rdonly = libc::O_RDONLY as u64;
    let wronly = libc::O_WRONLY as u64;
    let base = Profile::new(&[]).compile(Mode::Enforce).expect("compiles");
    let openat = |flags| data(libc::SYS_openat, [0, 0, flags, 0, 0, 0]);
    assert_eq!(run(&base, &openat(rdonly)).0, errno(libc::EACCES));
    assert_eq!(run(&base, &openat(wronly)).0, RET_KILL_PROCESS);
    assert_eq!(run(&base, &data(libc::SYS_write, [0; 6])).0, RET_ALLOW);
    assert_eq!(
        run(&base, &data(libc::SYS_socket, [0; 6])).0,
        RET_KILL_PROCESS
    );
    let foreign = Data {
        arch: FOREIGN_ARCH,
        ..data(libc::SYS_write, [0; 6])
    };
    assert_eq!(run(&base, &foreign).0, RET_KILL_PROCESS);

    let files = Profile::new(&[Group::FileRead, Group::Threads])
        .compile(Mode::Log)
        .expect("compiles");
    assert_eq!(run(&files, &openat(rdonly)).0, RET_ALLOW);
    assert_eq!(run(&files, &openat(wronly)).0, libc::SECCOMP_RET_LOG);
    assert_eq!(
        run(&files, &data(libc::SYS_openat2, [0; 6])).0,
        errno(libc::ENOSYS)
    );
    assert_eq!(
        run(&files, &data(libc::SYS_clone3, [0; 6])).0,
        errno(libc::ENOSYS)
    );
    // The architecture check kills in log mode too, as seccompiler's did.
    let foreign = Data {
        arch: FOREIGN_ARCH,
        ..openat(rdonly)
    };
    assert_eq!(run(&files, &foreign).0, RET_KILL_PROCESS);
}

/// Instructions a filter executes for syscall `nr` with `args`: (old stack, new program).
fn steps(old: &[BpfProgram], new: &BpfProgram, nr: i64, args: [u64; 6]) -> (usize, usize) {
    let d = data(nr, args);
    (run_stack(old, &d).1, run(new, &d).1)
}

#[test]
fn the_program_executes_fewer_instructions_for_file_syscalls() {
    // The profile of BENCHMARKS.md's seccomp measurement: a readable file grant.
    let p = Profile::new(&[Group::FileRead]);
    let old = legacy_compile(&p, Mode::Enforce);
    let new = p.compile(Mode::Enforce).expect("compiles");
    let rdonly = [0, 0, libc::O_RDONLY as u64, 0, 0, 0];
    let mut report = format!(
        "base + file-read, {} syscalls: old {} programs, {} instructions; new 1, {}\n",
        p.syscall_count(),
        old.len(),
        old.iter().map(Vec::len).sum::<usize>(),
        new.len()
    );
    for (name, nr, args) in [
        ("openat O_RDONLY", libc::SYS_openat, rdonly),
        ("statx", libc::SYS_statx, [0; 6]),
        ("pread64", libc::SYS_pread64, [0; 6]),
        ("close", libc::SYS_close, [0; 6]),
        ("futex FUTEX_WAKE", libc::SYS_futex, [0, 1, 0, 0, 0, 0]),
        ("mmap PROT_READ", libc::SYS_mmap, [0, 0, 1, 0, 0, 0]),
        ("socket (refused)", libc::SYS_socket, [0; 6]),
    ] {
        let (o, n) = steps(&old, &new, nr, args);
        let cached = old.iter().all(|prog| const_allow(prog, nr as u32));
        report.push_str(&format!(
            "{name:<18} old {o:>3}  new {n:>3}{}\n",
            if cached {
                "  (kernel skips both: always allowed)"
            } else {
                ""
            }
        ));
        if name.starts_with("openat") || name == "statx" {
            assert!(n < o, "{name}: old {o}, new {n}");
        }
    }
    println!("{report}");

    // Across every profile and number: never more than the arch check, the number, a search as
    // deep as the list is long in bits, and the syscall's own rules.
    for p in every_profile() {
        let new = p.compile(Mode::Enforce).expect("compiles");
        let depth = usize::BITS - p.syscall_count().leading_zeros();
        for nr in numbers() {
            let (_, n) = run(&new, &data(i64::from(nr), [0; 6]));
            assert!(
                n <= 4 + 2 * depth as usize + 2 + 4 * 6,
                "{} nr {nr}: {n} instructions",
                describe(&p)
            );
        }
    }
}
