#!/bin/sh
# Host packages for building the test guests (fixtures/build.sh) and running the tests, on
# Debian 12 (bookworm), as root. Idempotent: when everything is already installed it only checks
# with dpkg-query and prints the versions (no apt-get at all). INSTALL_DEPS_FORCE=1 runs apt anyway.
#
# QEMU comes from bookworm-backports (10.x). When that suite is missing from apt's sources it is
# added on the same archive URI apt already uses for bookworm (DEBIAN_ARCHIVE_URI=<uri> overrides).
# GOTCHA: some Debian 12 images ship qemu-utils from backports without having backports in their
# sources. That qemu-utils has "Breaks: qemu-system-common (<< 1:8.0+dfsg-5~)", so installing
# bookworm's qemu-system-* 7.2 silently REMOVES it (and qemu-img). Hence every QEMU package,
# qemu-utils included, is installed from bookworm-backports in one command.
set -eu
export DEBIAN_FRONTEND=noninteractive

# qemu-system-misc has riscv64 and loongarch64; backports' riscv QEMU needs backports' opensbi
# (OpenSBI for `-bios default`), so opensbi is one of the QEMU packages.
QEMU_PKGS="qemu-system-arm qemu-system-x86 qemu-system-misc opensbi qemu-utils"
# UEFI firmware (qemu-efi-aarch64 = AAVMF, ovmf = x86 OVMF; Debian 12 has none for loongarch64),
# guest building (aarch64 and riscv64 cross
# toolchains, busybox, cpio, ext4/FAT tools, xz, file), host gcc/libc for native helpers, and
# xmllint (libxml2-utils) for validating JUnit XML against its XSD; shellcheck for the action scripts; python3 for benches/bench.py,
# python3-venv for the test-only JUnit consumers (scripts/test.sh); u-boot-qemu is the QEMU
# "board" (U-Boot's loady, TFTP), lrzsz's rb a second YMODEM receiver (tests/ymodem.rs) and
# device-tree-compiler's fdtput writes the board's DTB (tests/board/qemu-board.sh dtb); gdb-multiarch
# is the real debugger attaching to `run --gdb` and `--pause-on-fail` (tests/debugger.rs)
TOOL_PKGS="qemu-efi-aarch64 ovmf u-boot-qemu gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
 gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu busybox-static
 cpio e2fsprogs dosfstools mtools xz-utils file gcc libc6-dev libxml2-utils shellcheck python3 python3-venv
 lrzsz device-tree-compiler gdb-multiarch"
APT_OPTS="-y -q --no-install-recommends -o DPkg::Lock::Timeout=300"

say() { printf '[install-deps] %s\n' "$*" >&2; }
die() { printf '[install-deps] error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "run as root (apt-get and dpkg --add-architecture need it)"
    exec sudo -E sh "$0" "$@"
fi
# shellcheck disable=SC1091
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] ||
    die "this script is for Debian 12 (bookworm); found ${PRETTY_NAME:-an unknown system}. Install the equivalents of: $QEMU_PKGS $TOOL_PKGS"

# installed PKG : true when dpkg has PKG fully installed
installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# from_backports PKG : true when the installed PKG is a bookworm-backports build
from_backports() {
    case $(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) in *bpo12*) return 0 ;; esac
    return 1
}

# archive_uri : URIs of the apt sources that carry the plain "bookworm" suite
# (deb822 *.sources stanzas and one-line *.list / sources.list entries)
archive_uri() {
    if [ -n "${DEBIAN_ARCHIVE_URI:-}" ]; then echo "$DEBIAN_ARCHIVE_URI"; return 0; fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'function flush() { if (uri != "" && ok) print uri; uri = ""; ok = 0 }
             /^[[:space:]]*$/ { flush(); next }
             tolower($1) == "uris:" { uri = $2 }
             tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok = 1 }
             END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        sed -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2 }'
    done
}

has_backports() {
    grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

add_backports() {
    uri=$(archive_uri | head -n1)
    [ -n "$uri" ] || die "no apt source for bookworm found; set DEBIAN_ARCHIVE_URI=<debian mirror URI>"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<EOS
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
    say "added bookworm-backports from $uri"
}

has_arm64_lists() {
    dpkg --print-foreign-architectures | grep -qx arm64 &&
        ls /var/lib/apt/lists/*_binary-arm64_Packages* >/dev/null 2>&1
}

missing_qemu=
for p in $QEMU_PKGS; do
    { installed "$p" && from_backports "$p"; } || missing_qemu="$missing_qemu $p"
done
missing_tools=
for p in $TOOL_PKGS; do installed "$p" || missing_tools="$missing_tools $p"; done

if [ -n "$missing_qemu$missing_tools" ] || ! has_arm64_lists || [ -n "${INSTALL_DEPS_FORCE:-}" ]; then
    [ -n "${INSTALL_DEPS_FORCE:-}" ] && { missing_qemu=$QEMU_PKGS; missing_tools=$TOOL_PKGS; }
    has_backports || add_backports
    # arm64 package lists let fixtures/build.sh apt-get download the arm64 kernel and busybox
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    say "apt-get update"
    apt-get update -q -o DPkg::Lock::Timeout=300
    if [ -n "$missing_qemu" ]; then
        # all QEMU packages together, qemu-utils included (see GOTCHA above)
        say "installing from bookworm-backports: $QEMU_PKGS"
        # shellcheck disable=SC2086 # word splitting of the option and package lists is intended
        apt-get install $APT_OPTS -t bookworm-backports $QEMU_PKGS
    fi
    if [ -n "$missing_tools" ]; then
        say "installing:$missing_tools"
        # shellcheck disable=SC2086
        apt-get install $APT_OPTS $missing_tools
    fi
else
    say "all packages already installed"
fi

# node + npm run the test-only consumers in tests/tools/node. Any nodejs will do (the image may
# carry NodeSource's, which bundles npm and conflicts with Debian's npm package): install
# Debian's only when a command is missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs npm"
    apt-get update -q -o DPkg::Lock::Timeout=300
    # shellcheck disable=SC2086
    apt-get install $APT_OPTS nodejs npm
fi
node --version | sed 's/^/node /'

# shellcheck disable=SC2086
dpkg-query -W -f='${Package} ${Version}\n' $QEMU_PKGS $TOOL_PKGS
qemu-system-aarch64 --version | head -n1
qemu-system-x86_64 --version | head -n1
qemu-system-riscv64 --version | head -n1
qemu-system-loongarch64 --version | head -n1
qemu-img --version | head -n1
aarch64-linux-gnu-gcc --version | head -n1
echo "dpkg foreign architectures: $(dpkg --print-foreign-architectures | tr '\n' ' ')"
