//! Placeholder until its issue lands.

/// Entry point of the `coreloop` binary; returns the process exit code.
pub fn main() -> i32 {
    eprintln!("coreloop: not built yet");
    2
}
