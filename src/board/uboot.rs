//! ostool's U-Boot config (`uboot.toml`, passed as `--uboot-config`) and tgoskits' board run
//! configs (`smoke/board-*.toml`), read unmodified into one typed [`UbootConfig`].
//!
//! The keys are ostool's (`serial`, `baud_rate`, `dtb_file`, `kernel_load_addr`,
//! `fit_load_addr`, `bootm_addr`, `board_reset_cmd`, `board_power_off_cmd`, `success_regex`,
//! `fail_regex`, `uboot_cmd`, `[net]` with `interface`, `board_ip`, `gatewayip`, `netmask`,
//! `tftp_dir`), axbuild's `board_type`, and the console grammar keys shared with the QEMU TOML
//! (`timeout`, `shell_prefix`, `shell_init_cmd`, `shell_check_steps`, … see
//! [`crate::config::grammar`]). Every string value of an ostool key has `${env:NAME}`,
//! `${env:NAME:-default}` and `${workspaceFolder}` substituted as ostool does, through the one
//! substitution ([`crate::config::vars`]); an unset variable is a config error at the value's
//! line:column naming the variable. Unknown keys follow the one rule of every config file
//! ([`field::unknown_key`]): close to a known key is an error with "did you mean", anything else
//! a warning. Patterns are kept as [`PatternSpec`]s with their places and compiled by the same
//! code as a QEMU config's (`qemu-test check` does it).
//!
//! Every key is optional here: a board run config has no `serial`, and `qemu-test check` must
//! read both shapes. What a board run needs (a serial device, say) is required when it runs.
//!
//! [`UbootConfig::load_deferring_unset`] reads a config whose variables belong to another
//! machine (the board job's, read by `check --test-suit` on any runner): a value using an unset
//! variable is left unchecked — a string keeps its text as written, a typed value (rate,
//! address, IPv4) and a pattern are left out — and listed in [`UbootConfig::unset`].

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use toml_edit::{Item, TableLike};

use crate::config::PatternSpec;
use crate::config::field::{self, Field};
use crate::config::grammar::{GRAMMAR_KEYS, GrammarSpec};
use crate::config::qemu::{self, Warning};
use crate::config::source::SourceText;
use crate::config::vars;
use crate::error::{Error, Location};

/// One value as it is after substitution, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub location: Location,
}

/// ostool's `[net]`: the board's network for TFTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The host interface the board is wired to (its address is the TFTP server's).
    pub interface: Setting<String>,
    pub board_ip: Option<Setting<Ipv4Addr>>,
    pub gatewayip: Option<Setting<Ipv4Addr>>,
    pub netmask: Option<Setting<Ipv4Addr>>,
    /// An existing TFTP root to copy the images into instead of serving them.
    pub tftp_dir: Option<Setting<PathBuf>>,
    /// Where `[net]` is written.
    pub location: Location,
}

/// A parsed U-Boot config or board run config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbootConfig {
    pub path: PathBuf,
    /// The serial device of the board's console (`/dev/ttyUSB0`).
    pub serial: Option<Setting<String>>,
    pub baud_rate: Option<Setting<u32>>,
    pub dtb_file: Option<Setting<PathBuf>>,
    /// An initrd (initramfs) loaded beside the kernel and passed to `booti`/`bootm`; this
    /// project's key (ostool has none).
    pub initrd_file: Option<Setting<PathBuf>>,
    pub kernel_load_addr: Option<Setting<u64>>,
    pub fit_load_addr: Option<Setting<u64>>,
    pub bootm_addr: Option<Setting<u64>>,
    /// Shell command that powers the board on or resets it (starts the boot).
    pub board_reset_cmd: Option<Setting<String>>,
    /// Shell command that powers the board off (always run at the end).
    pub board_power_off_cmd: Option<Setting<String>>,
    /// axbuild's board name in a board run config (`PhytiumPi`).
    pub board_type: Option<Setting<String>>,
    pub success_regex: Vec<PatternSpec>,
    pub fail_regex: Vec<PatternSpec>,
    /// Where `fail_regex` is written (`fail_regex = []` then means none, as in a QEMU config).
    pub fail_regex_at: Option<Location>,
    /// U-Boot commands typed at its prompt before booting.
    pub uboot_cmd: Vec<Setting<String>>,
    /// Deadline of each U-Boot stage (power-on to prompt, each command, boot command to
    /// kernel start); this project's key (`board::load` has the defaults).
    pub uboot_timeout: Option<Setting<std::time::Duration>>,
    pub net: Option<NetConfig>,
    /// Console grammar keys (`timeout`, `shell_prefix`, `shell_check_steps`, …).
    pub grammar: GrammarSpec,
    pub warnings: Vec<Warning>,
    /// With [`UbootConfig::load_deferring_unset`]: each unset variable a value uses (its name,
    /// at the value's place); that value was not checked.
    pub unset: Vec<Setting<String>>,
}

/// How a value's `${...}` are resolved: the workspace for `${workspaceFolder}` and a lookup for
/// `${env:NAME}`.
pub struct Env<'a> {
    pub workspace: &'a Path,
    pub lookup: &'a dyn Fn(&str) -> Option<OsString>,
}

/// One key of the U-Boot config and how it is read.
struct KeySpec {
    name: &'static str,
    read: fn(&mut UbootConfig, &Reader<'_>, &Field<'_>) -> Result<(), Error>,
}

/// The U-Boot config's one key table (top level).
const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "serial",
        read: |c, r, f| {
            c.serial = Some(r.nonempty(f, r#"`serial = "/dev/ttyUSB0"`"#)?);
            Ok(())
        },
    },
    KeySpec {
        name: "baud_rate",
        read: |c, r, f| {
            c.baud_rate = r.baud_rate(f)?;
            Ok(())
        },
    },
    KeySpec {
        name: "dtb_file",
        read: |c, r, f| {
            c.dtb_file = Some(r.path(f, r#"`dtb_file = "board.dtb"`"#)?);
            Ok(())
        },
    },
    KeySpec {
        name: "initrd_file",
        read: |c, r, f| {
            c.initrd_file = Some(r.path(f, r#"`initrd_file = "initramfs.cpio.gz"`"#)?);
            Ok(())
        },
    },
    KeySpec {
        name: "kernel_load_addr",
        read: |c, r, f| {
            c.kernel_load_addr = r.address(f)?;
            Ok(())
        },
    },
    KeySpec {
        name: "fit_load_addr",
        read: |c, r, f| {
            c.fit_load_addr = r.address(f)?;
            c.warnings.push(not_used_without_fit(f));
            Ok(())
        },
    },
    KeySpec {
        name: "bootm_addr",
        read: |c, r, f| {
            c.bootm_addr = r.address(f)?;
            c.warnings.push(not_used_without_fit(f));
            Ok(())
        },
    },
    KeySpec {
        name: "board_reset_cmd",
        read: |c, r, f| {
            c.board_reset_cmd = Some(r.string(f, r#"`board_reset_cmd = "..."`"#)?);
            Ok(())
        },
    },
    KeySpec {
        name: "board_power_off_cmd",
        read: |c, r, f| {
            let example = r#"`board_power_off_cmd = "..."`"#;
            c.board_power_off_cmd = Some(r.string(f, example)?);
            Ok(())
        },
    },
    KeySpec {
        name: "board_type",
        read: |c, r, f| {
            c.board_type = Some(r.string(f, r#"`board_type = "PhytiumPi"`"#)?);
            Ok(())
        },
    },
    KeySpec {
        name: "success_regex",
        read: |c, r, f| {
            c.success_regex = r.patterns(f, r#"`success_regex = ["login:"]`"#)?;
            Ok(())
        },
    },
    KeySpec {
        name: "fail_regex",
        read: |c, r, f| {
            c.fail_regex = r.patterns(f, r#"`fail_regex = ["panicked at"]`"#)?;
            c.fail_regex_at = Some(f.key_location.clone());
            Ok(())
        },
    },
    KeySpec {
        name: "uboot_cmd",
        read: |c, r, f| {
            let example = r#"`uboot_cmd = ["run ab_select_cmd", "run avb_boot"]`"#;
            c.uboot_cmd = r.strings(f, example)?;
            Ok(())
        },
    },
    KeySpec {
        name: "uboot_timeout",
        read: |c, r, f| {
            let s = r.string(f, r#"`uboot_timeout = "20s"`"#)?;
            match crate::duration::parse(s.value.trim()) {
                Ok(d) if !d.is_zero() => {
                    c.uboot_timeout = Some(Setting {
                        value: d,
                        location: s.location,
                    });
                    Ok(())
                }
                _ => Err(r.bad_value(
                    f,
                    &s,
                    "must be a duration above zero",
                    r#"`uboot_timeout = "20s"`"#,
                )),
            }
        },
    },
    KeySpec {
        name: "net",
        read: |c, r, f| {
            c.net = Some(r.net(f, &mut c.warnings)?);
            Ok(())
        },
    },
];

/// The keys of `[net]`.
const NET_KEYS: &[&str] = &["interface", "board_ip", "gatewayip", "netmask", "tftp_dir"];

impl UbootConfig {
    /// Reads a U-Boot config or board run config, substituting from the process environment.
    pub fn load(path: &Path, workspace: &Path) -> Result<UbootConfig, Error> {
        Self::load_with(path, workspace, false)
    }

    /// [`UbootConfig::load`], but an unset variable leaves its value unchecked (listed in
    /// [`UbootConfig::unset`]) instead of being an error.
    pub fn load_deferring_unset(path: &Path, workspace: &Path) -> Result<UbootConfig, Error> {
        Self::load_with(path, workspace, true)
    }

    fn load_with(path: &Path, workspace: &Path, defer: bool) -> Result<UbootConfig, Error> {
        let text = crate::config::source::read_input(path, "U-Boot config")?;
        let lookup = crate::environment::config_variable;
        let env = Env {
            workspace,
            lookup: &lookup,
        };
        Self::parse_with(path, &text, &env, defer)
    }

    /// Parses config text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str, env: &Env<'_>) -> Result<UbootConfig, Error> {
        Self::parse_with(path, text, env, false)
    }

    fn parse_with(
        path: &Path,
        text: &str,
        env: &Env<'_>,
        defer: bool,
    ) -> Result<UbootConfig, Error> {
        let source = SourceText::new(path, text.to_string());
        let doc = toml_edit::Document::parse(text).map_err(|e| qemu::syntax_error(&source, &e))?;
        let reader = Reader {
            env,
            source: &source,
            defer,
            unset: std::cell::RefCell::new(Vec::new()),
        };
        let mut config = UbootConfig::empty(path);
        for (key, item) in doc.iter() {
            let key_location = doc
                .key(key)
                .and_then(|k| k.span())
                .map_or_else(|| source.location(0), |s| source.location(s.start));
            let field = Field {
                key,
                item,
                key_location: key_location.clone(),
                source: &source,
            };
            match KEYS.iter().find(|k| k.name == key) {
                Some(spec) => (spec.read)(&mut config, &reader, &field)?,
                None if config.grammar.read_key(key, item, &source)? => {}
                None => config.warnings.push(unknown_key(
                    key,
                    &known_keys(),
                    key_location,
                    "the U-Boot config",
                )?),
            }
        }
        config.grammar.finish()?;
        config.unset = reader.unset.into_inner();
        Ok(config)
    }

    fn empty(path: &Path) -> UbootConfig {
        UbootConfig {
            path: path.to_path_buf(),
            serial: None,
            baud_rate: None,
            dtb_file: None,
            initrd_file: None,
            kernel_load_addr: None,
            fit_load_addr: None,
            bootm_addr: None,
            board_reset_cmd: None,
            board_power_off_cmd: None,
            board_type: None,
            success_regex: Vec::new(),
            fail_regex: Vec::new(),
            fail_regex_at: None,
            uboot_cmd: Vec::new(),
            uboot_timeout: None,
            net: None,
            grammar: GrammarSpec::default(),
            warnings: Vec::new(),
            unset: Vec::new(),
        }
    }
}

/// Every top-level key a U-Boot config may have: ostool's and axbuild's, then the grammar's.
pub fn known_keys() -> Vec<&'static str> {
    KEYS.iter()
        .map(|k| k.name)
        .chain(GRAMMAR_KEYS.iter().copied())
        .collect()
}

/// The one unknown-key rule, with what ostool does with such a key.
fn unknown_key(
    key: &str,
    known: &[&'static str],
    location: Location,
    what: &str,
) -> Result<Warning, Error> {
    let message = field::unknown_key(
        key,
        known,
        location.clone(),
        what,
        &format!("it is not used (known keys: {})", known.join(", ")),
    )?;
    Ok(Warning { location, message })
}

/// ostool's FIT keys (`fit_load_addr`, `bootm_addr`) are read and checked, but a board run
/// builds no FIT: the kernel is loaded raw at `kernel_load_addr` (`board::load`), so they are
/// said to be unused rather than silently dropped.
fn not_used_without_fit(f: &Field<'_>) -> Warning {
    Warning {
        location: f.key_location.clone(),
        message: format!(
            "`{}` is not used: qemu-test builds no FIT image, it loads the kernel as it is at \
             `kernel_load_addr` (else U-Boot's ${{kernel_addr_r}}) and boots it with \
             booti/bootm/go by its format; remove the key, or set `kernel_load_addr`",
            f.key
        ),
    }
}

/// Typed reads with substitution, at the value's place.
struct Reader<'a> {
    env: &'a Env<'a>,
    source: &'a SourceText,
    /// Leave values with unset variables unchecked (recorded in `unset`) instead of failing.
    defer: bool,
    unset: std::cell::RefCell<Vec<Setting<String>>>,
}

impl Reader<'_> {
    /// A string value with its `${...}` substituted.
    fn string(&self, f: &Field<'_>, example: &str) -> Result<Setting<String>, Error> {
        let Some(text) = f.item.as_str() else {
            return Err(f.wrong_type("a string", example));
        };
        let location = f.location();
        Ok(Setting {
            value: self.substitute(text, &location)?,
            location,
        })
    }

    /// The text with its `${...}` substituted; when deferring, a text using an unset variable
    /// is kept as written and the variable recorded (see [`Reader::deferred`]).
    fn substitute(&self, text: &str, location: &Location) -> Result<String, Error> {
        if self.deferred(text) {
            let mut unset = self.unset.borrow_mut();
            for name in vars::unset_variables(text, self.env.lookup) {
                unset.push(Setting {
                    value: name,
                    location: location.clone(),
                });
            }
            return Ok(text.to_string());
        }
        vars::substitute_with(text, self.env.workspace, Some(location), self.env.lookup)
    }

    /// Whether `text` (as written) is left unchecked: it uses an unset variable and this reader
    /// defers those.
    fn deferred(&self, text: &str) -> bool {
        self.defer && !vars::unset_variables(text, self.env.lookup).is_empty()
    }

    /// Whether the value of `f` (a string as written) is left unchecked.
    fn deferred_field(&self, f: &Field<'_>) -> bool {
        f.item.as_str().is_some_and(|t| self.deferred(t))
    }

    /// Each element of a string array, substituted, with its own place.
    fn strings(&self, f: &Field<'_>, example: &str) -> Result<Vec<Setting<String>>, Error> {
        f.strings(example)?
            .into_iter()
            .map(|(text, location)| {
                Ok(Setting {
                    value: self.substitute(&text, &location)?,
                    location,
                })
            })
            .collect()
    }

    /// The patterns, without those left unchecked (a pattern made of an unset variable's text
    /// would be a different pattern).
    fn patterns(&self, f: &Field<'_>, example: &str) -> Result<Vec<PatternSpec>, Error> {
        Ok(self
            .strings(f, example)?
            .into_iter()
            .filter(|s| !self.deferred(&s.value))
            .map(|s| PatternSpec {
                regex: s.value,
                location: Some(s.location),
            })
            .collect())
    }

    /// A string that must not be empty once substituted (a device name, an interface).
    fn nonempty(&self, f: &Field<'_>, example: &str) -> Result<Setting<String>, Error> {
        let s = self.string(f, example)?;
        if s.value.trim().is_empty() && !self.deferred_field(f) {
            return Err(self.bad_value(f, &s, "must not be empty", example));
        }
        Ok(s)
    }

    fn path(&self, f: &Field<'_>, example: &str) -> Result<Setting<PathBuf>, Error> {
        let s = self.nonempty(f, example)?;
        Ok(Setting {
            value: PathBuf::from(s.value),
            location: s.location,
        })
    }

    /// ostool writes the rate as a string (`"115200"`); a TOML integer is read too. `None`:
    /// left unchecked (an unset variable, when deferring).
    fn baud_rate(&self, f: &Field<'_>) -> Result<Option<Setting<u32>>, Error> {
        let example = r#"`baud_rate = "115200"`"#;
        if self.deferred_field(f) {
            self.string(f, example)?;
            return Ok(None);
        }
        let s = match f.item.as_integer() {
            Some(n) => Setting {
                value: n.to_string(),
                location: f.location(),
            },
            None => self.string(f, example)?,
        };
        match s.value.trim().parse::<u32>() {
            Ok(rate) if rate > 0 => Ok(Some(Setting {
                value: rate,
                location: s.location,
            })),
            _ => Err(self.bad_value(
                f,
                &s,
                "must be a positive number of bits per second",
                example,
            )),
        }
    }

    /// A memory address, `0x…` hexadecimal or decimal (as ostool parses it); `None`: left
    /// unchecked.
    fn address(&self, f: &Field<'_>) -> Result<Option<Setting<u64>>, Error> {
        let example = &format!("`{} = \"0x80080000\"`", f.key);
        let s = self.string(f, example)?;
        if self.deferred_field(f) {
            return Ok(None);
        }
        let text = s.value.trim();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse::<u64>(),
        };
        match parsed {
            Ok(value) => Ok(Some(Setting {
                value,
                location: s.location,
            })),
            Err(_) => Err(self.bad_value(f, &s, "must be an address (0x… or decimal)", example)),
        }
    }

    /// An IPv4 address; `None`: left unchecked.
    fn ipv4(&self, f: &Field<'_>) -> Result<Option<Setting<Ipv4Addr>>, Error> {
        let example = &format!("`{} = \"192.168.1.100\"`", f.key);
        let s = self.string(f, example)?;
        if self.deferred_field(f) {
            return Ok(None);
        }
        match s.value.trim().parse() {
            Ok(value) => Ok(Some(Setting {
                value,
                location: s.location,
            })),
            Err(_) => Err(self.bad_value(f, &s, "must be an IPv4 address", example)),
        }
    }

    /// A value that is the right type but not a valid value; names what the text became when
    /// it came from a variable.
    fn bad_value(&self, f: &Field<'_>, s: &Setting<String>, what: &str, example: &str) -> Error {
        let written = f.item.as_str().unwrap_or_default();
        let from = if written != s.value {
            format!(" (from `{written}`)")
        } else {
            String::new()
        };
        Error::config(format!("`{}` {what}; found `{}`{from}", f.key, s.value))
            .at(s.location.clone())
            .help(format!("write it as {example}"))
    }

    /// `[net]`: its keys by the same rule as the top level; `interface` is required (ostool's
    /// too).
    fn net(&self, f: &Field<'_>, warnings: &mut Vec<Warning>) -> Result<NetConfig, Error> {
        let example = "a `[net]` table with `interface = \"eth0\"`";
        let Some(table) = f.item.as_table_like() else {
            return Err(f.wrong_type("a table", example));
        };
        let location = f.key_location.clone();
        let (mut interface, mut board_ip, mut gatewayip, mut netmask, mut tftp_dir) =
            (None, None, None, None, None);
        for (key, item) in table.iter() {
            let key_location = key_place(table, key, item, self.source);
            let field = Field {
                key,
                item,
                key_location: key_location.clone(),
                source: self.source,
            };
            match key {
                "interface" => interface = Some(self.nonempty(&field, r#"`interface = "eth0"`"#)?),
                "board_ip" => board_ip = self.ipv4(&field)?,
                "gatewayip" => gatewayip = self.ipv4(&field)?,
                "netmask" => netmask = self.ipv4(&field)?,
                "tftp_dir" => tftp_dir = Some(self.path(&field, r#"`tftp_dir = "/srv/tftp"`"#)?),
                _ => warnings.push(unknown_key(key, NET_KEYS, key_location, "[net]")?),
            }
        }
        let interface = interface.ok_or_else(|| {
            Error::config("`[net]` needs `interface`: the host interface wired to the board")
                .at(location.clone())
                .help("add `interface = \"eth0\"` (the host's interface name) under [net]")
        })?;
        Ok(NetConfig {
            interface,
            board_ip,
            gatewayip,
            netmask,
            tftp_dir,
            location,
        })
    }
}

/// Where a key of a nested table is written (its value's place when the key has no span).
fn key_place(table: &dyn TableLike, key: &str, item: &Item, source: &SourceText) -> Location {
    table
        .key(key)
        .and_then(|k| k.span())
        .or_else(|| item.span())
        .map_or_else(|| source.location(0), |s| source.location(s.start))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// Parses `text` with `vars` as the environment (the other board modules' tests use it).
    pub(crate) fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<UbootConfig, Error> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        };
        UbootConfig::parse(
            Path::new("u.toml"),
            text,
            &Env {
                workspace: Path::new("/ws"),
                lookup: &lookup,
            },
        )
    }

    #[test]
    fn typed_values_after_substitution() {
        let c = parse_env(
            "serial = \"${env:DEV}\"\nbaud_rate = \"${env:BAUD:-115200}\"\n\
             kernel_load_addr = \"0x80080000\"\nfit_load_addr = \"4096\"\n\
             dtb_file = \"${workspaceFolder}/b.dtb\"\n\
             [net]\ninterface = \"eth0\"\nboard_ip = \"10.0.2.15\"\nnetmask = \"255.255.255.0\"\n",
            &[("DEV", "/dev/ttyS9")],
        )
        .unwrap();
        assert_eq!(c.serial.unwrap().value, "/dev/ttyS9");
        assert_eq!(c.baud_rate.unwrap().value, 115_200);
        assert_eq!(c.kernel_load_addr.unwrap().value, 0x8008_0000);
        assert_eq!(c.fit_load_addr.unwrap().value, 4096);
        assert_eq!(c.dtb_file.unwrap().value, Path::new("/ws/b.dtb"));
        let net = c.net.unwrap();
        assert_eq!(net.board_ip.unwrap().value, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!((net.location.line, net.interface.location.line), (6, 7));
        // The one warning: fit_load_addr is not used (below).
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    /// ostool's FIT addresses are checked as addresses, then said to be unused at their line.
    #[test]
    fn fit_addresses_are_checked_and_said_to_be_unused() {
        let c = parse_env(
            "kernel_load_addr = \"0x102200000\"\nfit_load_addr = \"0x140000000\"\n\
             bootm_addr = \"0x140000000\"\n",
            &[],
        )
        .unwrap();
        let said: Vec<(usize, &str)> = c
            .warnings
            .iter()
            .map(|w| (w.location.line, w.message.as_str()))
            .collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[0].0, 2);
        assert!(
            said[0]
                .1
                .starts_with("`fit_load_addr` is not used: qemu-test builds no FIT image"),
            "{said:?}"
        );
        assert_eq!(said[1].0, 3);
        assert!(
            said[1].1.starts_with("`bootm_addr` is not used"),
            "{said:?}"
        );
        let err = parse_env("bootm_addr = \"0xZZ\"\n", &[]).unwrap_err();
        assert!(err.message.contains("must be an address"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_the_text_and_its_source() {
        let err = parse_env("baud_rate = \"${env:B}\"\n", &[("B", "fast")]).unwrap_err();
        assert_eq!(
            err.message,
            "`baud_rate` must be a positive number of bits per second; found `fast` (from `${env:B}`)"
        );
        assert_eq!(err.location.unwrap().column, 13);
        let err = parse_env("[net]\ninterface = \"e\"\nboard_ip = \"10.0.2\"\n", &[]).unwrap_err();
        assert_eq!(err.location.as_ref().unwrap().line, 3, "{err}");
        let err = parse_env("kernel_load_addr = \"0xZZ\"\n", &[]).unwrap_err();
        assert!(err.message.contains("must be an address"), "{err}");
        let err = parse_env("[net]\nboard_ip = \"10.0.2.15\"\n", &[]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.contains("needs `interface`"), "{err}");
        // "0s" is a duration: the message says what is wrong with it.
        for (text, found) in [("0s", "`0s`"), ("soon", "`soon`")] {
            let err = parse_env(&format!("uboot_timeout = \"{text}\"\n"), &[]).unwrap_err();
            assert_eq!(
                err.message,
                format!("`uboot_timeout` must be a duration above zero; found {found}")
            );
        }
        let err = parse_env("serial = \"${env:E}\"\n", &[("E", "")]).unwrap_err();
        assert!(err.message.contains("must not be empty"), "{err}");
    }

    #[test]
    fn deferring_leaves_values_with_unset_variables_unchecked() {
        let lookup = |name: &str| (name == "SET").then(|| OsString::from("ttyS1"));
        let text = "serial = \"/dev/${env:SET}\"\nbaud_rate = \"${env:RATE}\"\n\
                    dtb_file = \"${env:DTB}\"\nsuccess_regex = [\"${env:OK}\", \"login:\"]\n\
                    [net]\ninterface = \"${env:IFACE}\"\nboard_ip = \"${env:IP}\"\n";
        let env = Env {
            workspace: Path::new("/ws"),
            lookup: &lookup,
        };
        let c = UbootConfig::parse_with(Path::new("u.toml"), text, &env, true).unwrap();
        assert_eq!(c.serial.unwrap().value, "/dev/ttyS1");
        assert!(c.baud_rate.is_none());
        assert_eq!(c.dtb_file.unwrap().value, Path::new("${env:DTB}"));
        let patterns: Vec<&str> = c.success_regex.iter().map(|p| p.regex.as_str()).collect();
        assert_eq!(patterns, ["login:"]);
        let net = c.net.unwrap();
        assert_eq!(net.interface.value, "${env:IFACE}");
        assert!(net.board_ip.is_none());
        let unset: Vec<(&str, usize)> = c
            .unset
            .iter()
            .map(|v| (v.value.as_str(), v.location.line))
            .collect();
        assert_eq!(
            unset,
            [("RATE", 2), ("DTB", 3), ("OK", 4), ("IFACE", 6), ("IP", 7)]
        );
        // Without deferring, the first unset variable is the error.
        let err = UbootConfig::parse(Path::new("u.toml"), text, &env).unwrap_err();
        assert!(err.message.contains("`RATE` is not set"), "{err}");
    }

    #[test]
    fn unknown_net_keys_follow_the_one_rule() {
        let err = parse_env("[net]\ninterface = \"e\"\nboardip = \"1.2.3.4\"\n", &[]).unwrap_err();
        assert_eq!(
            err.message,
            "unknown key `boardip` in [net] (did you mean `board_ip`?)"
        );
        assert_eq!(err.location.unwrap().line, 3);
        let c = parse_env(
            "[net]\ninterface = \"e\"\nserver_ip_override = \"x\"\n",
            &[],
        )
        .unwrap();
        assert!(
            c.warnings[0]
                .message
                .starts_with("unknown key `server_ip_override` in [net]; it is not used"),
            "{:?}",
            c.warnings
        );
    }
}
