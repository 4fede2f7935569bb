//! `warden completions SHELL` and `warden man [COMMAND]`: shell completion scripts and man
//! pages generated from the very clap definition the command line is parsed with, so they
//! list exactly the commands and flags warden has.

use clap::CommandFactory;

/// The completion script for `shell`, as text.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "warden", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page (roff) of warden, or of one of its commands (`run` gives `warden-run(1)`).
///
/// # Errors
/// A name that is no command of warden's, with the list of those that are.
pub fn man(command: Option<&str>) -> Result<String, String> {
    let mut cmd = crate::Cli::command();
    // Building gives each command its display name, `warden-run`, which titles its page.
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                return Err(format!(
                    "no command `{name}`; expected one of: {}",
                    names.join(", ")
                ));
            }
        },
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .source(concat!("warden ", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .map_err(|e| format!("cannot render the man page: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
