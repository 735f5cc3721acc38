# shellcheck shell=bash
# Shared functions of the composite action's step scripts (sourced, not run).
# Messages become GitHub workflow commands when GITHUB_ACTIONS=true, plain lines otherwise, and
# every value that reaches a command or an output is escaped or checked first. All messages go to
# stderr (the runner reads workflow commands there too), so stdout stays free for values that
# functions return through $(...).

# qt_escape TEXT: escape a workflow-command message ('%' first, then CR and LF).
qt_escape() {
    local s=$1
    s=${s//%/%25}
    s=${s//$'\r'/%0D}
    s=${s//$'\n'/%0A}
    printf '%s' "$s"
}

# qt_log TEXT: an ordinary log line, prefixed so it is clear which step said it.
qt_log() {
    printf 'qemu-test-action: %s\n' "$*" >&2
}

# qt_annotate LEVEL TEXT: a notice/warning/error annotation in Actions, a prefixed line elsewhere.
qt_annotate() {
    local level=$1
    shift
    if [ "${GITHUB_ACTIONS:-}" = true ]; then
        printf '::%s title=qemu-test-action::%s\n' "$level" "$(qt_escape "$*")" >&2
    else
        printf 'qemu-test-action: %s: %s\n' "$level" "$*" >&2
    fi
}

qt_notice() { qt_annotate notice "$@"; }
qt_warn() { qt_annotate warning "$@"; }

# qt_die TEXT: an error annotation, then exit 1.
qt_die() {
    qt_annotate error "$@"
    exit 1
}

# qt_random_hex N: N random bytes as lower-case hex.
qt_random_hex() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# qt_output NAME VALUE: append a step output to $GITHUB_OUTPUT (when set). Multi-line values use a
# random heredoc delimiter that is checked not to occur in the value, as the toolkit does.
qt_output() {
    local name=$1 value=$2 delim
    [ -n "${GITHUB_OUTPUT:-}" ] || return 0
    if [[ $value != *$'\n'* && $value != *$'\r'* ]]; then
        printf '%s=%s\n' "$name" "$value" >> "$GITHUB_OUTPUT"
        return 0
    fi
    delim="ghadelimiter_$(qt_random_hex 16)"
    if [[ $value == *"$delim"* ]]; then
        qt_die "output $name contains its own delimiter; refusing to write it"
    fi
    printf '%s<<%s\n%s\n%s\n' "$name" "$delim" "$value" "$delim" >> "$GITHUB_OUTPUT"
}
