//! The board's console: its serial device, opened through `tokio-serial` (the maintained async
//! wrapper of the `serialport` crate: termios setup, baud rate, raw mode, non-blocking I/O on
//! tokio's reactor) and locked for the run.
//!
//! Locking: `serialport` opens the port exclusively, with `TIOCEXCL` (a second open by anyone
//! but root is refused) and an exclusive `flock` on the device's own descriptor (no lock file
//! anywhere; a second root-run job is refused too). Both hold until the port is dropped or
//! the process dies, so two runs on one board runner never interleave on its console.

use std::time::Duration;

use tokio_serial::{SerialPortBuilderExt, SerialStream};

use crate::error::Error;

/// The default rate when the config names none (ostool's too).
pub const DEFAULT_BAUD: u32 = 115_200;

/// An open, locked serial console (reads and writes on one stream: the console loop never
/// does both at once, and a YMODEM transfer needs both).
pub struct SerialConsole {
    pub device: String,
    pub baud: u32,
    pub port: SerialStream,
}

impl SerialConsole {
    /// Opens `device` at `baud` and locks it. A device that does not exist, cannot be opened,
    /// or is held by another run is an infrastructure error naming it.
    pub fn open(device: &str, baud: u32) -> Result<SerialConsole, Error> {
        let port = tokio_serial::new(device, baud)
            .timeout(Duration::from_millis(100))
            .open_native_async()
            .map_err(|e| open_error(device, &e))?;
        Ok(SerialConsole {
            device: device.to_string(),
            baud,
            port,
        })
    }
}

fn busy(device: &str) -> Error {
    Error::infra(format!(
        "the serial device {device} is busy: another run (or a terminal program) holds it"
    ))
    .help("wait for the other job on this board to end, or close the program using the port")
}

fn open_error(device: &str, e: &tokio_serial::Error) -> Error {
    use tokio_serial::ErrorKind;
    match e.kind() {
        ErrorKind::NoDevice | ErrorKind::Io(std::io::ErrorKind::NotFound)
            if !std::path::Path::new(device).exists() =>
        {
            Error::infra(format!("the serial device {device} does not exist"))
                .help("check `serial` in the U-Boot config (and the variable it names), and that the board's USB-serial adapter is plugged in")
        }
        ErrorKind::Io(std::io::ErrorKind::ResourceBusy) => busy(device),
        // serialport takes its own exclusive lock at open and says so when it is held.
        _ if e.description.contains("busy") || e.description.contains("exclusive lock") => {
            busy(device)
        }
        _ => Error::infra(format!(
            "cannot open the serial device {device}: {}",
            e.description
        ))
        .help("check its permissions (the runner's user in group `dialout`) and that it is a serial port"),
    }
}
