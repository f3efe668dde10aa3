#!/usr/bin/env bash
# Regenerates the "Command reference" of docs/cli.md from miroir-ctl's help
# texts (the hidden `miroir-ctl help-all`). tests/ctl/help_test.cc fails when the
# section differs from the binary's help, so run this after changing a command:
#   docs/gen-cli-reference.sh [path/to/miroir-ctl]     (default build/ctl/miroir-ctl)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ctl="${1:-$here/../build/ctl/miroir-ctl}"
doc="$here/cli.md"
begin='<!-- BEGIN GENERATED: miroir-ctl help-all -->'
end='<!-- END GENERATED: miroir-ctl help-all -->'
grep -qF "$begin" "$doc" && grep -qF "$end" "$doc" || { echo "markers missing in $doc" >&2; exit 1; }
ref="$(mktemp)"
trap 'rm -f "$ref" "$ref.new"' EXIT
"$ctl" help-all > "$ref"
awk -v b="$begin" -v e="$end" -v ref="$ref" '
  $0 == b { print; print ""; while ((getline line < ref) > 0) print line; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }
' "$doc" > "$ref.new"
mv "$ref.new" "$doc"
echo "updated $doc from $ctl"
