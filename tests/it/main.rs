//! Integration tests, built into one binary. Each module drives one front end
//! or one promise of the product against real components.

mod cli;
mod compose;
mod corpus;
mod data;
mod data_folder;
mod debhost;
mod docker_engine_cli;
mod docker_install;
mod docker_methods;
mod docker_standin;
mod equiv;
mod fakedocker;
mod faults;
mod files;
mod fleet;
mod fuzz;
mod harness;
mod hints;
mod hostile;
mod hosts;
mod http_attack;
mod import;
mod mcp;
mod mcp_client;
mod namespaces;
mod networks;
mod reconcile;
mod remote;
mod runopts;
mod schemas;
mod secrets;
mod standin;
mod tidy;
mod watch;
