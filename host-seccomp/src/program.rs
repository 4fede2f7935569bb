//! A profile as one classic-BPF program, dispatching on the syscall number by binary search.
//!
//! seccompiler compiles a filter to a chain of comparisons in syscall-number order, one match
//! action per filter: a syscall numbered high (`openat` 257, `statx` 332) was compared against
//! every listed number below it, and answering some syscalls with an errno took a second,
//! stacked filter that the kernel ran as well. This module lays the same decisions out as one
//! program:
//!
//! ```text
//! arch check (seccompiler's: another architecture kills the process)
//! load nr
//! binary search over the listed numbers: JGE splits, a JEQ at each leaf
//!   leaf: the syscall's block, or the default action if nr is not the leaf's number
//! block: each errno rule -> RET ERRNO(e); each allow rule -> RET ALLOW; RET default
//! ```
//!
//! The argument checks are seccompiler's own: each rule is compiled by `SeccompRule`'s
//! conversion to BPF, as before, and only its two-instruction preamble (which served the
//! chain) is dropped. A syscall's errno rules come before its allow rules, which gives the
//! answer the stacked filters gave (the kernel took the strictest of them, and the errno is
//! stricter than an allowance). The dispatch only loads the syscall number and compares it with
//! constants, so the kernel still proves "always allowed whatever the arguments" for the same
//! syscalls and skips the filter for them (its per-filter action cache, Linux 5.11+).
//!
//! Every subtree is emitted as self-contained code in which every path ends in a return, so
//! subtrees concatenate without relocation; a split whose left half is longer than a
//! conditional jump can cross (255 instructions) jumps to its right half through a `JA`.
//! `tests_program.rs` proves the verdicts equal to the stacked seccompiler filters'.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch, sock_filter};

use crate::SeccompError;

/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word of `struct seccomp_data`.
const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JA`: jump forward by `k`.
const JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JEQ: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const JGE: u16 = 0x35;
/// `BPF_RET | BPF_K`.
const RET: u16 = 0x06;
/// `offsetof(struct seccomp_data, nr)`.
const NR_OFFSET: u32 = 0;

/// The longest program the kernel takes (`BPF_MAXINSNS`).
pub(crate) const MAX_LEN: usize = 4096;
/// How far a conditional jump reaches: its offsets are 8-bit.
const MAX_COND_JUMP: usize = u8::MAX as usize;

/// One listed syscall: its number and the code that decides it once the number matched.
pub(crate) struct Case {
    pub(crate) nr: u32,
    pub(crate) block: BpfProgram,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The return value of `action`, as seccompiler encodes it.
pub(crate) fn ret(action: SeccompAction) -> sock_filter {
    stmt(RET, u32::from(action))
}

/// seccompiler's argument checks for `rule`, without the preamble that served its chain. The
/// caller appends the return a match reaches; when the rule does not match, the code jumps to
/// the instruction after that return.
///
/// seccompiler emits `JA 1; JA <skip the rule>; conditions…`, where each failing condition
/// jumps just past the return the caller appends. Entered at the conditions, the two jumps
/// are dead. Rules with so many conditions that seccompiler inserts helper jumps (which
/// target the dropped preamble) are refused; the table's rules have at most two conditions.
pub(crate) fn rule_checks(rule: SeccompRule) -> Result<BpfProgram, SeccompError> {
    let code = BpfProgram::from(rule);
    let preamble_ok = code.len() > 2 && code[0] == stmt(JA, 1) && code[1].code == JA;
    if !preamble_ok || code[2..].iter().any(|i| i.code == JA) {
        return Err(SeccompError::Layout(
            "a rule's argument checks are not in the expected form".into(),
        ));
    }
    Ok(code[2..].to_vec())
}

/// The decision for one syscall: each of `errno` rules answers `errno_ret`, then each of `allow`
/// answers `RET ALLOW`; otherwise `default`. `None` rules mean "always" (the first such wins).
pub(crate) fn block(
    errno: Option<(SeccompAction, Option<Vec<BpfProgram>>)>,
    allow: Option<Option<Vec<BpfProgram>>>,
    default: SeccompAction,
) -> BpfProgram {
    let mut out = Vec::new();
    for (action, rules) in errno
        .into_iter()
        .chain(allow.map(|r| (SeccompAction::Allow, r)))
    {
        match rules {
            None => {
                out.push(ret(action));
                return out;
            }
            Some(rules) => {
                for checks in rules {
                    out.extend(checks);
                    out.push(ret(action.clone()));
                }
            }
        }
    }
    out.push(ret(default));
    out
}

/// seccompiler's architecture check: load `arch`, and kill the process if it is not `arch`'s.
fn arch_check(arch: TargetArch, default: SeccompAction) -> Result<BpfProgram, SeccompError> {
    // A filter with no rules is the check followed by the default action.
    let empty = SeccompFilter::new(Default::default(), default, SeccompAction::Allow, arch)?;
    let code = BpfProgram::try_from(empty)?;
    match code.as_slice() {
        [load, cmp, kill, _default] if load.code == LD_W_ABS && cmp.code == JEQ => {
            Ok(vec![load.clone(), cmp.clone(), kill.clone()])
        }
        _ => Err(SeccompError::Layout(
            "seccompiler's architecture check is not in the expected form".into(),
        )),
    }
}

/// The whole program: the architecture check, the number, the search over `cases` (sorted by
/// number, distinct), and `default` for every number not listed.
pub(crate) fn assemble(
    arch: TargetArch,
    cases: &[Case],
    default: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    if cases.windows(2).any(|w| w[0].nr >= w[1].nr) {
        return Err(SeccompError::Layout(
            "syscall numbers are not sorted and distinct".into(),
        ));
    }
    let mut program = arch_check(arch, default.clone())?;
    program.push(stmt(LD_W_ABS, NR_OFFSET));
    program.extend(search(cases, 0, u32::MAX, &default));
    if program.len() > MAX_LEN {
        return Err(SeccompError::Layout(format!(
            "{} instructions, more than the kernel's {MAX_LEN}",
            program.len()
        )));
    }
    Ok(program)
}

/// Code that decides a number known to lie in `lo..=hi`, among `cases`.
fn search(cases: &[Case], lo: u32, hi: u32, default: &SeccompAction) -> BpfProgram {
    match cases {
        [] => vec![ret(default.clone())],
        [case] if lo == hi => case.block.clone(),
        [case] => {
            // JEQ nr: skip the default's return into the block.
            let mut out = vec![jump(JEQ, case.nr, 1, 0), ret(default.clone())];
            out.extend(case.block.iter().cloned());
            out
        }
        _ => {
            let mid = cases.len() / 2;
            let split = cases[mid].nr;
            // `split` is above the first case's number, so `split - 1` cannot wrap.
            let left = search(&cases[..mid], lo, split.saturating_sub(1), default);
            let right = search(&cases[mid..], split, hi, default);
            let mut out = Vec::with_capacity(left.len() + right.len() + 2);
            match u8::try_from(left.len()) {
                Ok(skip) if left.len() <= MAX_COND_JUMP => {
                    out.push(jump(JGE, split, skip, 0));
                }
                _ => {
                    // nr >= split: to the JA over the left half; otherwise step past it.
                    out.push(jump(JGE, split, 0, 1));
                    out.push(stmt(JA, u32::try_from(left.len()).unwrap_or(u32::MAX)));
                }
            }
            out.extend(left);
            out.extend(right);
            out
        }
    }
}
