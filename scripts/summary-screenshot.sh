#!/usr/bin/env bash
# Pictures of the step summary as a user sees it on GitHub, one per demo suite (scripts/demo.sh):
# runs the suite with the Actions environment pointing at a scratch summary file, renders that
# Markdown with cmark-gfm and GitHub's extensions (table, strikethrough, autolink, tagfilter),
# draws the ```mermaid blocks with mermaid.js and styles the page with GitHub's Markdown CSS
# (both from npm, in scripts/summary-screenshot/), and screenshots it with headless Chromium into
# docs/summary-demo.png and docs/summary-demo-failing.png.
#
# Needs: apt-get install chromium cmark-gfm (Debian 12), npm, the fixtures (fixtures/build.sh).
# A tool for the docs, not a test: the test suite never needs Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in chromium cmark-gfm npm; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install chromium cmark-gfm npm" >&2; exit 1; }
done
tools=scripts/summary-screenshot
npm ci --prefix "$tools" --no-audit --no-fund --silent
bash fixtures/build.sh >/dev/null
cargo build --locked --quiet
QT=target/debug/qemu-test
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
modules="file://$PWD/$tools/node_modules"
mkdir -p docs

# Headless Chromium on a file, waiting (in virtual time) for mermaid.js to finish.
browse() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --allow-file-access-from-files --virtual-time-budget=20000 "$@" 2>/dev/null
}

shot() { # suite file, picture
  local suite=$1 png=$2 name
  name=$(basename "$suite" .toml)
  local md="$work/$name.md" page="$work/$name.html"
  : >"$md"
  local code=0
  env GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY="$md" GITHUB_OUTPUT="$work/output" \
    GITHUB_WORKSPACE="$PWD" GITHUB_SERVER_URL=https://github.com \
    GITHUB_REPOSITORY=axvisor/qemu-test-action GITHUB_SHA="$(git rev-parse HEAD)" \
    GITHUB_RUN_ID=1 QEMU_TEST_ARTIFACT_NAME="qemu-test-demo-$name-1-a1b2c3" \
    INPUT_ANNOTATIONS=false \
    "$QT" run --quiet --suite "$suite" --out-dir "$work/out-$name" >"$work/$name.log" 2>&1 || code=$?
  if [ "$code" -gt 1 ]; then cat "$work/$name.log" >&2; echo "$suite: exit code $code" >&2; exit 1; fi
  cmark-gfm --unsafe -e table -e strikethrough -e autolink -e tagfilter "$md" >"$work/$name.body"
  python3 - "$tools/page.html" "$work/$name.body" "$modules" "$page" <<'EOF'
import sys
frame, body, modules, out = sys.argv[1:]
html = open(frame).read().replace("@MODULES@", modules).replace("@BODY@", open(body).read())
open(out, "w").write(html)
EOF
  local title height
  title=$(browse --dump-dom "file://$page" | sed -n 's:.*<title>\(.*\)</title>.*:\1:p')
  case "$title" in
    height\ *) height=${title#height } ;;
    *) echo "$suite: the page did not render: $title" >&2; exit 1 ;;
  esac
  browse --screenshot="$png" --window-size=920,$((height + 16)) "file://$page" >/dev/null
  echo "$png: $(stat -c %s "$png") bytes"
}

shot examples/demo/suite.toml docs/summary-demo.png
shot examples/demo/failing.toml docs/summary-demo-failing.png
