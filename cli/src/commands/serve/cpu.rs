//! Per-identity CPU groups for `warden serve`: every identity's workers are placed in one
//! cgroup of their own, all with the same CPU weight, under one group for this server. The
//! kernel then shares the cores between identities, not between processes: an identity that
//! keeps four workers spinning gets, under contention, the CPU of one identity, and a
//! well-behaved identity's run is not queued behind them.
//!
//! cgroup v2 first: where this process's cgroup in the unified hierarchy offers the `cpu`
//! controller (a delegated subtree: systemd's `Delegate=yes`, a container with a private
//! cgroup namespace, or root), the server moves itself into a leaf group of its own (v2 lets
//! only leaves hold processes once controllers are enabled below a group), enables `cpu` for
//! its groups and gives each identity `cpu.weight` 100, the kernel's default. Otherwise the
//! cgroup v1 `cpu` controller (a writable hierarchy, as root or delegated), with `cpu.shares`
//! 1024. With neither the server says why at start and identities share the CPU by process
//! (docs/serve.md, "CPU").

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--cpu-groups`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Mode {
    /// Per-identity groups where the host allows them; otherwise a warning at start.
    Auto,
    /// Per-identity groups, or `warden serve` refuses to start.
    Require,
    /// No groups: the workers stay in the server's cgroup.
    Off,
}

/// The CPU weight (cgroup v1 `cpu.shares`) of each identity's group: the kernel's default
/// for a group, so all identities weigh the same.
const SHARES: &str = "1024";

/// The same on cgroup v2 (`cpu.weight`): the kernel's default.
const WEIGHT: &str = "100";

/// The leaf the server moves itself into on cgroup v2.
const SERVER_LEAF: &str = "server";

/// Prefix of the server's own group, followed by its pid.
const PREFIX: &str = "warden-serve-";

/// This server's groups: one directory per identity under `root`, removed on drop.
pub struct Groups {
    root: PathBuf,
    by_name: BTreeMap<String, PathBuf>,
    /// On cgroup v2: the server's own cgroup (where it came from, and goes back to on drop)
    /// and whether `cpu` was enabled below it here (and is disabled again on drop).
    v2: Option<(PathBuf, bool)>,
}

/// Where the groups go: the server's cgroup in the v2 hierarchy (with `cpu` available) or in
/// the v1 `cpu` hierarchy.
enum Hierarchy {
    V1(PathBuf),
    V2(PathBuf),
}

impl Groups {
    /// Creates the server's group and one group per name in `names`, or says why it cannot.
    pub fn create(names: &[&str]) -> Result<Groups, String> {
        Groups::create_in(find()?, std::process::id(), names)
    }

    /// [`Groups::create`] in `hierarchy`, for the process `pid` (this one; a test gives a
    /// folder that only looks like a cgroup).
    fn create_in(hierarchy: Hierarchy, pid: u32, names: &[&str]) -> Result<Groups, String> {
        let (parent, v2) = match hierarchy {
            Hierarchy::V1(dir) => (dir, false),
            Hierarchy::V2(dir) => (dir, true),
        };
        remove_stale(&parent);
        let root = parent.join(format!("{PREFIX}{pid}"));
        std::fs::create_dir(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let mut groups = Groups {
            root,
            by_name: BTreeMap::new(),
            v2: None,
        };
        if v2 {
            groups.v2 = Some((parent.clone(), false));
            groups.enter_leaf(&parent, pid)?;
        }
        for (i, name) in names.iter().enumerate() {
            // The directory name only has to be unique and readable: the index makes it
            // unique, the name (its safe characters) readable.
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            let dir = groups.root.join(format!("{i}-{safe}"));
            std::fs::create_dir(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            if v2 {
                write(&dir.join("cpu.weight"), WEIGHT)?;
            } else {
                write(&dir.join("cpu.shares"), SHARES)?;
            }
            groups.by_name.insert((*name).to_owned(), dir);
        }
        Ok(groups)
    }

    /// The server's group (holding every identity's group).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Which hierarchy the groups are in, as the start notice says it.
    pub fn version(&self) -> &'static str {
        if self.v2.is_some() {
            "cgroup v2"
        } else {
            "cgroup v1"
        }
    }

    /// cgroup v2: moves the server (`pid`) from `parent` into the leaf `root/server`, then
    /// enables `cpu` below `parent` (unless it already is) and below `root`. A group with
    /// controllers enabled below it may hold no process itself, hence the leaf; `parent`
    /// must hold no other process either (a cgroup of the server's own).
    fn enter_leaf(&mut self, parent: &Path, pid: u32) -> Result<(), String> {
        let leaf = self.root.join(SERVER_LEAF);
        std::fs::create_dir(&leaf).map_err(|e| format!("cannot create {}: {e}", leaf.display()))?;
        write(&leaf.join("cgroup.procs"), &pid.to_string())?;
        let control = parent.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control)
            .map_err(|e| format!("cannot read {}: {e}", control.display()))?;
        if !enabled.split_whitespace().any(|c| c == "cpu") {
            write(&control, "+cpu").map_err(|e| {
                format!(
                    "{e} (cgroup v2 enables a controller below a group only when no process \
                     is in the group itself: {} holds processes other than this server; run \
                     it in a cgroup of its own, e.g. a systemd unit with Delegate=yes or a \
                     container with a private cgroup namespace)",
                    parent.display()
                )
            })?;
            self.v2 = Some((parent.to_owned(), true));
        }
        write(&self.root.join("cgroup.subtree_control"), "+cpu")
    }

    /// Moves process `pid` (all its threads) into `name`'s group. A blocking write (a
    /// migration can take the kernel milliseconds under load): call it off the async threads.
    pub fn place(&self, name: &str, pid: u32) -> Result<(), String> {
        let dir = self
            .by_name
            .get(name)
            .ok_or_else(|| format!("no CPU group for `{name}`"))?;
        write(&dir.join("cgroup.procs"), &pid.to_string())
    }
}

/// Whether this process already runs under a seccomp filter (one it did not install: a
/// container's profile). Such a filter may kill the process for the `mkdir` of a group, so
/// `--cpu-groups auto` does not try there.
pub fn under_seccomp_filter() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.strip_prefix("Seccomp:").is_some_and(|v| v.trim() == "2"))
    })
}

impl Drop for Groups {
    fn drop(&mut self) {
        // cgroup v2: the server goes back to its own cgroup, which can hold it again once
        // `cpu` is disabled below it (when it was enabled here), so that its leaf can go.
        if let Some((parent, enabled_here)) = &self.v2 {
            if *enabled_here {
                let _ = write(&parent.join("cgroup.subtree_control"), "-cpu");
            }
            let _ = write(
                &parent.join("cgroup.procs"),
                &std::process::id().to_string(),
            );
        }
        // A killed worker leaves its group a moment after its kill: retry for up to a second.
        for _ in 0..100 {
            if remove_tree(&self.root) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "warden: serve: warning: could not remove the CPU group {} (a worker still in it?)",
            self.root.display()
        );
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))
}

/// Removes `dir` and the groups in it (a cgroup directory holds only the kernel's files,
/// which go with it); false if one still holds a process.
fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}

/// Groups left by servers that were killed (`warden-serve-PID` whose PID is gone).
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            remove_tree(&e.path());
        }
    }
}

/// Where this server's groups go: its cgroup in the v2 hierarchy when that offers the `cpu`
/// controller, else its cgroup in the v1 `cpu` hierarchy; the reasons for neither.
fn find() -> Result<Hierarchy, String> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let v2 = match v2_dir(&cgroups, &mountinfo) {
        Some(dir) => {
            let controllers =
                std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") {
                return Ok(Hierarchy::V2(dir));
            }
            format!(
                "cgroup v2 at {} offers no `cpu` controller (it is bound to a v1 hierarchy, or \
                 not delegated)",
                dir.display()
            )
        }
        None => "no cgroup v2 hierarchy mounted".to_owned(),
    };
    v1_cpu_dir(&cgroups, &mountinfo)
        .map(Hierarchy::V1)
        .map_err(|v1| format!("{v2}; {v1}"))
}

/// This process's cgroup in the v2 hierarchy (`0::PATH` in /proc/self/cgroup, under the
/// last cgroup2 mount whose folder for it exists).
fn v2_dir(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    let own = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .to_owned();
    mount_points(mountinfo, |fstype, _| fstype == "cgroup2")
        .into_iter()
        .rev()
        .map(|(root, mountpoint)| {
            let rel = own
                .strip_prefix(&root)
                .unwrap_or(own.as_str())
                .trim_start_matches('/');
            if rel.is_empty() {
                PathBuf::from(&mountpoint)
            } else {
                Path::new(&mountpoint).join(rel)
            }
        })
        .find(|dir| dir.join("cgroup.procs").is_file())
}

/// The directory of this process's cgroup in the v1 `cpu` hierarchy, if one is mounted.
fn v1_cpu_dir(cgroups: &str, mountinfo: &str) -> Result<PathBuf, String> {
    let own =
        own_cpu_path(cgroups).ok_or_else(|| "no cgroup v1 `cpu` controller either".to_owned())?;
    let (root, mountpoint) = cpu_mount(mountinfo)
        .ok_or_else(|| "the cgroup v1 `cpu` controller is not mounted".to_owned())?;
    let rel = own
        .strip_prefix(&root)
        .unwrap_or(own.as_str())
        .trim_start_matches('/');
    let dir = if rel.is_empty() {
        PathBuf::from(&mountpoint)
    } else {
        Path::new(&mountpoint).join(rel)
    };
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    Ok(dir)
}

/// The path of the v1 cgroup whose controllers include `cpu`, from /proc/self/cgroup.
fn own_cpu_path(cgroups: &str) -> Option<String> {
    cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "cpu")
            .then(|| path.to_owned())
    })
}

/// The root and mount point of the v1 `cpu` hierarchy, from /proc/self/mountinfo.
fn cpu_mount(mountinfo: &str) -> Option<(String, String)> {
    mount_points(mountinfo, |fstype, options| {
        fstype == "cgroup" && options.split(',').any(|o| o == "cpu")
    })
    .into_iter()
    .next()
}

/// The root and mount point of each mount in /proc/self/mountinfo whose file system type and
/// options `wanted` accepts, in mount order.
fn mount_points(mountinfo: &str, wanted: impl Fn(&str, &str) -> bool) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let (fstype, _source, options) = (right.next()?, right.next()?, right.next()?);
            (wanted(fstype, options) && fields.len() >= 5)
                .then(|| (unescape(fields[3]), unescape(fields[4])))
        })
        .collect()
}

/// mountinfo writes a space, tab, newline and backslash in a path as octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_cpu_hierarchy_is_found_among_the_others_and_its_root_stripped() {
        let cgroups =
            "9:name=systemd:/\n4:memory:/a/b\n2:cpuacct:/\n1:cpu,cpuacct:/kubepods/pod1/c1\n0::/\n";
        assert_eq!(own_cpu_path(cgroups).as_deref(), Some("/kubepods/pod1/c1"));
        // `cpuacct` alone is not `cpu`.
        assert_eq!(own_cpu_path("2:cpuacct:/x\n0::/\n"), None);
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
            32 31 0:29 /kubepods /sys/fs/cgroup/cpu\\040x rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
            40 23 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cpu_mount(mountinfo),
            Some(("/kubepods".into(), "/sys/fs/cgroup/cpu x".into()))
        );
        assert_eq!(
            cpu_mount("40 23 0:35 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            None
        );
    }

    #[test]
    fn the_v2_cgroup_is_the_last_cgroup2_mount_that_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::create_dir_all(new.join("svc")).unwrap();
        std::fs::write(new.join("svc/cgroup.procs"), "").unwrap();
        std::fs::create_dir_all(&old).unwrap();
        let mountinfo = format!(
            "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n\
             32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             90 23 0:38 / {} rw - cgroup2 none rw\n",
            old.display(),
            new.display()
        );
        assert_eq!(
            v2_dir("1:cpu:/\n0::/svc\n", &mountinfo),
            Some(new.join("svc"))
        );
        // The root of the hierarchy is the mount point itself, with no trailing slash.
        std::fs::write(new.join("cgroup.procs"), "").unwrap();
        assert_eq!(v2_dir("0::/\n", &mountinfo), Some(new.clone()));
        // Control: no v2 line, or no mount that holds the cgroup.
        assert_eq!(v2_dir("1:cpu:/\n", &mountinfo), None);
        assert_eq!(v2_dir("0::/elsewhere\n", &mountinfo), None);
    }
}
