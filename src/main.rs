//! The `tomo` binary: a shim over `tomo::cli::run`.

fn main() {
    std::process::exit(tomo::cli::run());
}
