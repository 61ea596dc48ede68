use clap::Parser;

fn main() {
    // Die quietly when the reader of our output goes away (`terroir ... | head`), like other
    // Unix tools, instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread or I/O exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match terroir::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1 (2 is kept for failed checks); --help and --version exit 0.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let printer = terroir::printer::Printer::new(cli.global.output.into());
    let status = match terroir::commands::run(cli, &printer) {
        Ok(status) => status,
        Err(e) => printer.error(&e),
    };
    std::process::exit(i32::from(status.code()));
}
