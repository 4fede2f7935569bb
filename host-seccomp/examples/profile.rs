//! Prints a profile: `cargo run -p warden-host-seccomp --example profile -- [--oci] [GROUP...]`
//! with groups named as in the text rendering (`file-read`, `stdin`, …).

use host_seccomp::{Group, Mode, Profile};

fn main() -> std::process::ExitCode {
    let mut oci = false;
    let mut groups = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--oci" {
            oci = true;
            continue;
        }
        match Group::ALL.iter().find(|g| g.name() == arg) {
            Some(g) => groups.push(*g),
            None => {
                eprintln!("unknown group `{arg}`");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let profile = Profile::new(&groups);
    if oci {
        println!("{}", profile.to_oci_json_pretty(Mode::Enforce));
    } else {
        print!("{}", profile.render_text());
    }
    std::process::ExitCode::SUCCESS
}
