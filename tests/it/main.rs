//! Integration tests, built into one binary. Each module drives one front end
//! or one promise of the product against real components.

mod cli;
mod corpus;
mod fakedocker;
mod faults;
mod fleet;
mod fuzz;
mod harness;
mod hostile;
mod hosts;
mod mcp;
mod mcp_client;
mod reconcile;
mod remote;
mod schemas;
mod secrets;
mod tidy;
mod watch;
