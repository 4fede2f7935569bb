//! The vocabulary of the allow list: what a syscall entry says and how its arguments are
//! compared.

use crate::{Group, Stage};

/// What the filter answers when an entry matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// The syscall runs.
    Allow,
    /// The syscall does not run; the caller gets `-1` with this `errno`. Used for syscalls that
    /// libraries only probe and fall back from, so refusing them costs nothing.
    Errno(i32),
}

/// How one argument is compared. Every compared argument is a C `int` or `unsigned int` (or,
/// for `clone`, flags the kernel truncates to 32 bits), so only the low 32 bits are compared,
/// as the kernel itself only looks at those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `arg == value`.
    Eq(u64),
    /// `arg & mask == value`.
    MaskedEq {
        /// The bits that are looked at.
        mask: u64,
        /// What they must be.
        value: u64,
    },
}

/// One argument condition: `args[arg] <cmp>`, with how a person would write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cond {
    /// The argument's index, 0 to 5.
    pub arg: u8,
    /// The comparison.
    pub cmp: Cmp,
    /// The condition in words, for [`crate::Profile::render_text`]: `prot & PROT_EXEC == 0`.
    pub text: &'static str,
}

impl Cond {
    /// `args[arg] == value`.
    pub const fn eq(arg: u8, value: u64, text: &'static str) -> Cond {
        Cond {
            arg,
            cmp: Cmp::Eq(value),
            text,
        }
    }

    /// `args[arg] & mask == value`.
    pub const fn masked(arg: u8, mask: u64, value: u64, text: &'static str) -> Cond {
        Cond {
            arg,
            cmp: Cmp::MaskedEq { mask, value },
            text,
        }
    }
}

/// A rule matches when all its conditions hold (AND).
pub type Rule = &'static [Cond];

/// One line of the allow list.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The syscall's name as the kernel spells it (`openat`, `clock_nanosleep`).
    pub name: &'static str,
    /// The group this line belongs to.
    pub group: Group,
    /// The stage it belongs to: [`Stage::Run`] lines are in every profile of their group,
    /// [`Stage::Container`] lines only in container- and serve-stage profiles,
    /// [`Stage::Serve`] lines only in serve-stage profiles.
    pub stage: Stage,
    /// What the filter answers.
    pub action: Action,
    /// When the entry applies: any one of these rules (OR). Empty: always.
    pub when: &'static [Rule],
    /// Why warden needs it, in one line.
    pub reason: &'static str,
}

/// When a syscall applies after merging every entry a profile holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum When {
    /// With any arguments.
    Always,
    /// When one of these rules (each an AND of conditions) holds.
    AnyOf(Vec<Rule>),
}

impl When {
    pub(crate) fn from_rules(rules: &'static [Rule]) -> When {
        if rules.is_empty() {
            When::Always
        } else {
            When::AnyOf(rules.to_vec())
        }
    }

    /// The union of two sets of rules: `Always` absorbs everything.
    pub(crate) fn union(self, other: When) -> When {
        match (self, other) {
            (When::Always, _) | (_, When::Always) => When::Always,
            (When::AnyOf(mut a), When::AnyOf(b)) => {
                for r in b {
                    if !a.contains(&r) {
                        a.push(r);
                    }
                }
                When::AnyOf(a)
            }
        }
    }

    /// Whether every case `other` matches is also matched by `self`, judged syntactically:
    /// `Always` covers everything, otherwise each of `other`'s rules must appear in `self`.
    pub(crate) fn covers(&self, other: &When) -> bool {
        match (self, other) {
            (When::Always, _) => true,
            (When::AnyOf(_), When::Always) => false,
            (When::AnyOf(a), When::AnyOf(b)) => b.iter().all(|r| a.contains(r)),
        }
    }
}
