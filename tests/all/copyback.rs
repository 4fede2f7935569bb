//! Single-file grants against a hostile guest: what the guest leaves in place of its staged
//! copy is never followed, copy-back is bounded and atomic, a read grant stays read-only, and
//! the staging folder is private and removed however the run ends.
//!
//! The staging folder is made under `$TMPDIR`; these tests point it at a folder of the scene,
//! so they can look at it (and see that it is gone) and so a relative symlink the guest makes
//! can name a file of the scene.

use crate::guests;
use crate::util::{Outcome, Scene, both, warden};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "TOP-SECRET-HOST-FILE";

/// A scene with `state/cursor` ("41") granted read-write at `/state/cursor`, a host file the
/// guest must never reach (`secret.txt`), a `tmp` folder for `$TMPDIR`, and `limits` added to
/// the manifest.
fn rw_scene(limits: &str) -> (Scene, PathBuf) {
    let s = Scene::new();
    s.file("state/cursor", "41");
    s.file("secret.txt", SECRET);
    s.mkdir("tmp");
    let m = s.manifest(&format!(
        "[[files]]\nhost = \"state/cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n\
         {limits}"
    ));
    (s, m)
}

fn run(s: &Scene, m: &Path, guest: &str, args: &[&str]) -> Outcome {
    s.run_with(Some(m), guest, args, |c| {
        c.env("TMPDIR", s.path("tmp"));
    })
}

fn cursor(s: &Scene) -> String {
    std::fs::read_to_string(s.path("state/cursor")).unwrap()
}

/// Staging folders left in the scene's `tmp`.
pub(crate) fn staging(s: &Scene) -> Vec<PathBuf> {
    std::fs::read_dir(s.path("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("warden-files-")
        })
        .collect()
}

/// The copy-back refusal about `/state/cursor`, if one was audited.
fn refusal(r: &Outcome) -> Option<String> {
    r.denials("fs")
        .iter()
        .find(|d| d["target"] == "/state/cursor")
        .map(|d| d["reason"].as_str().unwrap().to_string())
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_plain_write_is_copied_back() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("");
        let r = run(&s, &m, fs, &["write", "/state/cursor", "42"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "42", "{kind}");
        assert_eq!(refusal(&r), None, "{kind}: {r:#?}");
        assert!(staging(&s).is_empty(), "{kind}: staging removed");
    }
}

#[test]
fn a_symlink_in_place_of_the_staged_file_is_not_followed() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("");
        // From tmp/warden-files-XXXX/cursor, `../../secret.txt` is the scene's secret.
        let r = run(
            &s,
            &m,
            fs,
            &[
                "seq",
                "rm /state/cursor",
                "symlink ../../secret.txt /state/cursor",
            ],
        );
        assert_eq!(r.code, 0, "{kind}: the guest made its symlink: {r:#?}");
        assert_eq!(r.stdout, "ok\nok\n", "{kind}");
        assert_eq!(cursor(&s), "41", "{kind}: the host file is untouched");
        let why = refusal(&r).unwrap_or_else(|| panic!("{kind}: deny audited: {r:#?}"));
        assert!(why.contains("symlink"), "{kind}: {why}");
        assert!(!r.stdout.contains(SECRET) && !cursor(&s).contains(SECRET));
        assert!(staging(&s).is_empty(), "{kind}: staging removed");
    }
}

#[test]
fn a_hard_link_of_the_staged_file_is_refused() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("");
        let r = run(
            &s,
            &m,
            fs,
            &[
                "seq",
                "link /state/cursor /state/twin",
                "write /state/cursor 42",
            ],
        );
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "41", "{kind}: not copied through a linked file");
        let why = refusal(&r).unwrap_or_else(|| panic!("{kind}: deny audited: {r:#?}"));
        assert!(why.contains("hard link"), "{kind}: {why}");
    }
}

#[test]
fn a_folder_in_place_of_the_staged_file_is_refused() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("");
        let r = run(
            &s,
            &m,
            fs,
            &["seq", "rm /state/cursor", "mkdir /state/cursor"],
        );
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "41", "{kind}");
        let why = refusal(&r).unwrap_or_else(|| panic!("{kind}: deny audited: {r:#?}"));
        assert!(why.contains("a directory"), "{kind}: {why}");
        assert!(s.path("state/cursor").is_file(), "{kind}");
        assert!(staging(&s).is_empty(), "{kind}: staging removed");
    }
}

#[test]
fn a_staged_file_renamed_away_leaves_the_original() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("");
        let r = run(
            &s,
            &m,
            fs,
            &[
                "seq",
                "write /state/cursor 42",
                "rename /state/cursor /state/moved",
            ],
        );
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "41", "{kind}");
        assert!(!s.path("state/moved").exists(), "{kind}");
        let why = refusal(&r).unwrap_or_else(|| panic!("{kind}: deny audited: {r:#?}"));
        assert!(why.contains("gone"), "{kind}: {why}");
    }
}

#[test]
fn copy_back_is_bounded_by_the_staged_file_limit() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("[limits]\nstaged-file = \"1KiB\"\n");
        // Over the bound: refused, original untouched.
        let r = run(&s, &m, fs, &["setlen", "/state/cursor", "1025"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "41", "{kind}");
        let why = refusal(&r).unwrap_or_else(|| panic!("{kind}: deny audited: {r:#?}"));
        assert!(
            why.contains("over [limits] staged-file (1 KiB)"),
            "{kind}: {why}"
        );
        // Control: at the bound, copied back.
        let r = run(&s, &m, fs, &["setlen", "/state/cursor", "1024"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(refusal(&r), None, "{kind}: {r:#?}");
        assert_eq!(
            std::fs::metadata(s.path("state/cursor")).unwrap().len(),
            1024
        );
    }
}

#[test]
fn a_huge_sparse_staged_file_is_refused_without_reading_it() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let (s, m) = rw_scene("");
        // 64 GiB of holes: the default bound (16 MiB) refuses it on its size.
        let r = run(&s, &m, fs, &["setlen", "/state/cursor", "68719476736"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "41", "{kind}");
        let why = refusal(&r).unwrap_or_else(|| panic!("{kind}: deny audited: {r:#?}"));
        assert!(why.contains("68719476736 bytes"), "{kind}: {why}");
        assert!(staging(&s).is_empty(), "{kind}: staging removed");
    }
}

#[test]
fn a_granted_file_over_the_bound_stops_the_start() {
    let (s, m) = rw_scene("[limits]\nstaged-file = \"1KiB\"\n");
    std::fs::write(s.path("state/cursor"), vec![b'x'; 2000]).unwrap();
    let r = run(&s, &m, guests::FS_P1, &["read", "/state/cursor"]);
    r.assert_one_line_error("is 2000 bytes, over [limits] staged-file (1 KiB)");
    assert!(r.stderr.contains("state/cursor"), "{r:#?}");
    assert!(staging(&s).is_empty(), "staging removed");
    // Control: within the bound it runs.
    std::fs::write(s.path("state/cursor"), vec![b'x'; 1024]).unwrap();
    let r = run(&s, &m, guests::FS_P1, &["read", "/state/cursor"]);
    assert_eq!(r.code, 0, "{r:#?}");
}

/// Spawns `warden run` with `$TMPDIR` in the scene, stdin piped, stdout and stderr to files.
fn spawn(s: &Scene, m: &Path, guest: &str, args: &[&str]) -> (Child, PathBuf, String) {
    let id = format!("{:?}", Instant::now()).replace(|c: char| !c.is_ascii_digit(), "");
    let audit = s.path(&format!("audit-spawned-{id}.jsonl"));
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--audit")
        .arg(&audit)
        .arg("--manifest")
        .arg(m)
        .arg(guest);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    cmd.env("TMPDIR", s.path("tmp"))
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(s.path(&format!("out-{id}"))).unwrap())
        .stderr(std::fs::File::create(s.path(&format!("err-{id}"))).unwrap());
    (cmd.spawn().unwrap(), audit, id)
}

/// Waits for `child` at most `limit`; kills it and fails the test past that.
fn wait(s: &Scene, mut child: Child, audit: &Path, id: &str, limit: Duration) -> Outcome {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warden still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let audit = std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Outcome {
        code: status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        stdout: std::fs::read_to_string(s.path(&format!("out-{id}"))).unwrap(),
        stderr: std::fs::read_to_string(s.path(&format!("err-{id}"))).unwrap(),
        audit,
    }
}

/// Waits until a staging folder holds `name`, and returns the folder.
fn staged_folder(s: &Scene, name: &str) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Some(dir) = staging(s).into_iter().find(|d| d.join(name).exists()) {
            return dir;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no staging appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn staging_is_private_whatever_the_host_modes_and_removed_afterwards() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        s.mkdir("tmp");
        let state = s.file("state/cursor", "41");
        let config = s.file("config/app.toml", "region = \"eu\"\n");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let m = s.manifest(
            "[stdio]\nstdin = \"inherit\"\n\
             [[files]]\nhost = \"state/cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n\
             [[files]]\nhost = \"config/app.toml\"\nguest = \"/config/app.toml\"\naccess = \"read\"\n",
        );
        let (mut child, audit, id) = spawn(&s, &m, fs, &["seq", "write /state/cursor 42", "stdin"]);
        // The guest waits on its stdin while the staging is looked at.
        let rw = staged_folder(&s, "cursor");
        let ro = staged_folder(&s, "app.toml");
        assert_eq!(mode(&rw), 0o700, "{kind}");
        assert_eq!(mode(&ro), 0o700, "{kind}");
        assert_eq!(mode(&rw.join("cursor")), 0o600, "{kind}");
        assert_eq!(mode(&ro.join("app.toml")), 0o400, "{kind}");
        drop(child.stdin.take());
        let r = wait(&s, child, &audit, &id, Duration::from_secs(60));
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "42", "{kind}");
        assert_eq!(mode(&state), 0o640, "{kind}: the host file keeps its mode");
        assert!(staging(&s).is_empty(), "{kind}: staging removed");
        let left: Vec<_> = std::fs::read_dir(s.path("state")).unwrap().collect();
        assert_eq!(left.len(), 1, "{kind}: no temporary file left: {left:?}");
    }
}

#[test]
fn staging_is_removed_when_a_limit_ends_the_run() {
    let cases = [
        (
            "memory",
            guests::MEMBOMB_P1,
            guests::MEMBOMB_P2,
            "memory = \"48MiB\"",
            121,
        ),
        (
            "wall",
            guests::SPIN_P1,
            guests::SPIN_P2,
            "wall = \"300ms\"",
            124,
        ),
        (
            "output",
            guests::FLOOD_P1,
            guests::FLOOD_P2,
            "output = \"4KiB\"",
            120,
        ),
        ("trap", guests::RECURSE_P1, guests::RECURSE_P2, "", 123),
    ];
    for (limit, p1, p2, setting, code) in cases {
        for (kind, guest) in both(p1, p2) {
            let (s, m) = rw_scene(&format!("[limits]\n{setting}\n"));
            let r = run(&s, &m, guest, &[]);
            assert_eq!(r.code, code, "{limit} {kind}: {r:#?}");
            assert!(staging(&s).is_empty(), "{limit} {kind}: staging removed");
            assert_eq!(cursor(&s), "41", "{limit} {kind}");
        }
    }
}

#[test]
fn the_wall_watchdog_copies_back_and_removes_staging() {
    let (s, m) = rw_scene("[limits]\nwall = \"1s\"\n[stdio]\nstdin = \"inherit\"\n");
    let started = Instant::now();
    // The module writes its cursor, then blocks in a read of stdin, which the test keeps open:
    // only the watchdog can stop it.
    let (child, audit, id) = spawn(
        &s,
        &m,
        guests::FS_P1,
        &["seq", "write /state/cursor 42", "stdin"],
    );
    staged_folder(&s, "cursor");
    let r = wait(&s, child, &audit, &id, Duration::from_secs(60));
    assert_eq!(r.code, 124, "{r:#?}");
    assert!(started.elapsed() >= Duration::from_millis(2900), "{r:#?}");
    assert_eq!(r.exit()["outcome"], "wall-limit");
    assert_eq!(cursor(&s), "42", "copied back at the watchdog's stop");
    assert!(staging(&s).is_empty(), "staging removed");
}

fn stopped_by(signal: &str, code: i32) {
    for (kind, spin) in both(guests::SPIN_P1, guests::SPIN_P2) {
        let (s, m) = rw_scene("");
        let (child, audit, id) = spawn(&s, &m, spin, &[]);
        // Control: the staging exists while the guest runs.
        staged_folder(&s, "cursor");
        std::thread::sleep(Duration::from_millis(300));
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let r = wait(&s, child, &audit, &id, Duration::from_secs(30));
        assert_eq!(r.code, code, "{signal} {kind}: {r:#?}");
        assert!(staging(&s).is_empty(), "{signal} {kind}: staging removed");
        let exit = r.exit();
        assert_eq!(exit["outcome"], "signal", "{signal} {kind}");
        assert_eq!(exit["code"], code, "{signal} {kind}");
        assert_eq!(cursor(&s), "41", "{signal} {kind}");
    }
}

#[test]
fn sigterm_removes_staging_and_exits_143() {
    stopped_by("TERM", 143);
}

#[test]
fn sigint_removes_staging_and_exits_130() {
    stopped_by("INT", 130);
}

#[test]
fn a_read_single_file_is_never_writable() {
    let s = Scene::new();
    s.mkdir("tmp");
    s.file("config/app.toml", "region = \"eu\"\n");
    s.file("state/cursor", "41");
    let grant = |host: &str, guest: &str, access: &str| {
        format!("[[files]]\nhost = \"{host}\"\nguest = \"{guest}\"\naccess = \"{access}\"\n")
    };
    // Sharing a guest folder with a read-write file would make the read copy writable.
    let m = s.manifest(&format!(
        "{}{}",
        grant("config/app.toml", "/etc/app.toml", "read"),
        grant("state/cursor", "/etc/cursor", "read-write"),
    ));
    let r = run(&s, &m, guests::FS_P1, &["read", "/etc/app.toml"]);
    r.assert_one_line_error("expected read and read-write single files in different guest folders");
    // Control: in separate folders, the read-write file is written and the read one is not.
    let m = s.manifest(&format!(
        "{}{}",
        grant("config/app.toml", "/etc/app.toml", "read"),
        grant("state/cursor", "/state/cursor", "read-write"),
    ));
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let r = run(&s, &m, fs, &["write", "/state/cursor", "42"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(cursor(&s), "42");
        for attack in [
            "write /etc/app.toml region=\"us\"",
            "rm /etc/app.toml",
            "rename /etc/app.toml /etc/x",
            "symlink cursor /etc/evil",
        ] {
            let r = run(&s, &m, fs, &["seq", attack, "read /etc/app.toml"]);
            assert_eq!(r.code, 1, "{kind} {attack}: refused in the guest: {r:#?}");
        }
        let r = run(&s, &m, fs, &["read", "/etc/app.toml"]);
        assert_eq!(r.stdout, "region = \"eu\"\n", "{kind}");
        assert_eq!(
            std::fs::read_to_string(s.path("config/app.toml")).unwrap(),
            "region = \"eu\"\n"
        );
    }
}

/// Runs `warden run` on a manifest granting `host` as a single file, failing if it takes more
/// than 20 s (a FIFO opened for reading would block forever).
fn run_granting(s: &Scene, host: &str) -> Outcome {
    let m = s.manifest(&format!(
        "[[files]]\nhost = \"{host}\"\nguest = \"/in/{host}\"\naccess = \"read\"\n"
    ));
    let (child, audit, id) = spawn(s, &m, guests::FS_P1, &["read", &format!("/in/{host}")]);
    wait(s, child, &audit, &id, Duration::from_secs(20))
}

#[test]
fn a_fifo_or_socket_granted_as_a_file_stops_the_start_without_blocking() {
    let s = Scene::new();
    s.mkdir("tmp");
    let made = Command::new("mkfifo").arg(s.path("pipe")).status().unwrap();
    assert!(made.success());
    let started = Instant::now();
    let r = run_granting(&s, "pipe");
    r.assert_one_line_error("host path `pipe` is a FIFO");
    assert!(started.elapsed() < Duration::from_secs(10), "{r:#?}");
    let _listener = std::os::unix::net::UnixListener::bind(s.path("sock")).unwrap();
    let r = run_granting(&s, "sock");
    r.assert_one_line_error("host path `sock` is a socket");
    // Control: a regular file at such a grant runs.
    s.file("plain", "plain text");
    let r = run_granting(&s, "plain");
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "plain text");
}
