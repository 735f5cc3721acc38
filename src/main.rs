//! `qemu-test`: CLI wiring only; the pipeline lives in the library.

fn main() {
    // Cargo runs the generated linker wrapper of an axbuild std build as
    // `qemu-test __axbuild-link …` (see build::axbuild_link): no runtime, no CLI.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(qemu_test_action::build::axbuild_link::LINK_MODE) {
        std::process::exit(qemu_test_action::build::axbuild_link::main(&args[1..]));
    }
    // One thread drives everything: QEMU children are spawned from it, which keeps
    // PR_SET_PDEATHSIG meaningful, and the work is I/O-bound.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(qemu_test_action::error::exit::INFRA);
        }
    };
    let code = runtime.block_on(qemu_test_action::cmd::main());
    std::process::exit(code);
}
