#!/usr/bin/env bash
# Validate the action and every workflow against GitHub's schemas (action-validator) and lint the
# shell scripts the composite steps call (shellcheck).
#   usage: scripts/action/validate.sh
# Sourced files without a shebang (fixtures/lib.sh, …) are checked as bash.
# action-validator (crates.io, GPL-3.0, a tool and not a dependency) is installed into
# target/tools when it is missing; shellcheck comes from the distribution (apt-get install shellcheck).
set -euo pipefail
cd "$(dirname "$0")/../.."

ACTION_VALIDATOR_VERSION=${ACTION_VALIDATOR_VERSION:-0.9.0}
TOOLS=target/tools

find_validator() {
    if [ -x "$TOOLS/bin/action-validator" ]; then
        echo "$TOOLS/bin/action-validator"
    elif command -v action-validator >/dev/null 2>&1; then
        command -v action-validator
    fi
}

validator=$(find_validator)
if [ -z "$validator" ]; then
    echo "installing action-validator $ACTION_VALIDATOR_VERSION into $TOOLS (cargo install)"
    cargo install action-validator --locked --version "$ACTION_VALIDATOR_VERSION" --root "$TOOLS"
    validator=$TOOLS/bin/action-validator
fi

files=(action.yml)
while IFS= read -r -d '' f; do
    files+=("$f")
done < <(find .github/workflows examples -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 | sort -z)

status=0
for f in "${files[@]}"; do
    if "$validator" "$f"; then
        echo "ok: action-validator $f"
    else
        echo "FAIL: action-validator $f" >&2
        status=1
    fi
done

if ! command -v shellcheck >/dev/null 2>&1; then
    echo "shellcheck is missing: apt-get install shellcheck" >&2
    exit 1
fi
scripts=()
for f in scripts/action/*.sh fixtures/*.sh; do
    [ -f "$f" ] && scripts+=("$f")
done
if shellcheck -x --shell=bash "${scripts[@]}"; then
    echo "ok: shellcheck ${scripts[*]}"
else
    echo "FAIL: shellcheck" >&2
    status=1
fi
exit "$status"
