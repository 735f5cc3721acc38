//! `qemu-test`: CLI wiring only; the pipeline lives in the library.

fn main() {
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
