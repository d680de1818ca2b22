//! `overlaysnap`: the operator's command line for an overlaysnap root.
//!
//! [`args`] reads the command line, [`commands`] carries it out against the library (or,
//! with `--address`, [`live`] through a running overlaysnapd),
//! [`output`] prints the result (tables or JSON), and [`exit`] turns failures into one
//! line on stderr and an exit code. See cli/README.md.

mod args;
mod commands;
mod exit;
mod live;
mod output;
mod rfc3339;
mod tree;

use clap::Parser;
use exit::{Code, Failure};
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let output = match &cli.address {
        None => commands::run(&cli).map(Some),
        Some(address) => live::run(&cli, address),
    };
    // `events` has printed as it went: nothing more to print.
    let outcome = output.and_then(|output| {
        let Some(output) = output else { return Ok(()) };
        let mut text = Vec::new();
        output.write(cli.json, &mut text).map_err(Failure::Output)?;
        match io::stdout().lock().write_all(&text) {
            // A reader that stopped early (`| head`) is not a failure.
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(Failure::Output(e)),
            _ => {}
        }
        output.damage().map_or(Ok(()), |d| Err(Failure::Damage(d)))
    });
    match outcome {
        Ok(()) => Code::Ok.into(),
        Err(failure) => {
            eprintln!("overlaysnap: {}", failure.message());
            failure.code().into()
        }
    }
}
