//! `agent-auth`: manage agents, their tokens, grants and the audit trail from a terminal,
//! and run the reference server.

#![deny(unsafe_code)]

mod args;
mod commands;
mod database;
mod duration;
mod output;
mod serve;

use args::Cli;
use clap::Parser;

/// clap's error on one line: every line but the usage block and the `--help` hint; a list's
/// items after its heading, tips after a `;`.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    let mut listing = false;
    for raw in rendered.lines() {
        let text = raw.trim();
        if text.starts_with("Usage:") {
            break;
        }
        if text.is_empty() || text.starts_with("For more information") {
            continue;
        }
        let text = text.strip_prefix("tip: ").unwrap_or(text);
        if line.is_empty() {
            line.push_str(text);
        } else if line.ends_with(':') {
            line.push(' ');
            line.push_str(text);
            listing = true;
        } else if listing && raw.starts_with("  ") && !raw.trim_start().starts_with("tip: ") {
            line.push_str(", ");
            line.push_str(text);
        } else {
            line.push_str("; ");
            line.push_str(text);
            listing = false;
        }
    }
    if line.is_empty() {
        line.push_str("error: invalid arguments");
    }
    format!("{line} (see --help)")
}

/// The subcommands a help text lists under "Commands:" (without `help`).
fn subcommands_in(help: &str) -> Vec<&str> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect()
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = error.print();
                    return std::process::ExitCode::SUCCESS;
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let help = error.render().to_string();
                    output::warn(&format!(
                        "error: a subcommand is required: {} (see --help)",
                        subcommands_in(&help).join(", ")
                    ));
                    return std::process::ExitCode::from(2);
                }
                _ => {}
            }
            output::warn(&one_line(&error.render().to_string()));
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output::warn(&format!("error: cannot start the runtime: {error}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Stdout closed (`| head`): whoever read it has what they wanted; end quietly.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            let message = error.to_string().replace(['\n', '\r'], " ");
            output::warn(&format!("error: {message}"));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_keep_their_content_on_one_line() {
        let missing = "error: the following required arguments were not provided:\n  \
                       --owner <OWNER>\n  <SLUG>\n\nUsage: agent-auth agent create --owner \
                       <OWNER> <SLUG>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(missing),
            "error: the following required arguments were not provided: --owner <OWNER>, \
             <SLUG> (see --help)"
        );
        let typo = "error: unrecognized subcommand 'tokn'\n\n  tip: a similar subcommand \
                    exists: 'token'\n\nUsage: agent-auth [OPTIONS] <COMMAND>\n\nFor more \
                    information, try '--help'.\n";
        assert_eq!(
            one_line(typo),
            "error: unrecognized subcommand 'tokn'; a similar subcommand exists: 'token' \
             (see --help)"
        );
    }
}
