//! Entry point: everything lives in the library (see `lib.rs`).

fn main() -> std::process::ExitCode {
    // No panic may reach the user as a stack trace: report it in one line
    // and exit UNKNOWN (3), as for any other internal error.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        eprintln!(
            "chatstack-status: error: internal error in thread {name}{at}: {msg}; please report it"
        );
        // Probe threads are caught and reported as a failed check; anything
        // else is fatal: exit UNKNOWN rather than limp on.
        if !chatstack_status::runner::panics_are_caught() {
            std::process::exit(3);
        }
    }));
    // `std::env::args` panics on an argument that is not UTF-8 (a
    // `--message` with a Latin-1 byte from a job's output): take every
    // argument lossily instead (U+FFFD for what is not UTF-8).
    let args = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    chatstack_status::main_with_args(args)
}
