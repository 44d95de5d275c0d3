//! The `twostep` binary's library half: configuration, start-up wiring and
//! the CLI commands. Concrete types (SQL store, system clock, OS random)
//! meet the domain only here.

pub mod access_config;
pub mod cli;
pub mod config;
pub mod health;
pub mod keyfile;
pub mod metrics;
pub mod oidc_config;
pub mod server_lock;
pub mod shutdown;
pub mod startup;
pub mod workers;
