//! `twostep config check`: validate and print the effective configuration,
//! secrets masked.

use clap::Subcommand;

use crate::config::{Config, KeyMode};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check the configuration and print it with secrets masked.
    Check,
}

pub fn run(config: &Config, cmd: &ConfigCommand) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        ConfigCommand::Check => {
            let resolved = config.resolve_with(KeyMode::Peek)?;
            print!("{}", config.masked_toml());
            println!("# master key: {}", resolved.key_source);
            println!("# configuration is valid");
            Ok(())
        }
    }
}
