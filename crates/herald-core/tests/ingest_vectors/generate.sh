#!/usr/bin/env bash
# Regenerates the ingest verifiers' vectors (the *.json files beside this script) with the
# providers' official libraries at the pinned versions of requirements.txt and package.json.
# Deterministic: a second run writes identical files. The tests only read the committed files;
# this script is needed only to make them again (docs/receiving.md, "How the verifiers are
# tested"). Usage: generate.sh [OUT_DIR] (default: this directory).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here}" && cd "${1:-$here}" && pwd)"
work="${TMPDIR:-/tmp}/herald-ingest-vectors"
mkdir -p "$work"

# Python's libraries in a virtual environment of their own.
[ -x "$work/venv/bin/python" ] || python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"

# npm's libraries exactly as locked, beside the Node generator (ES modules resolve from there);
# installed again only when the lock file changed.
if ! cmp -s "$here/package-lock.json" "$work/installed-package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --silent --no-audit --no-fund >/dev/null)
  cp "$here/package-lock.json" "$work/installed-package-lock.json"
fi
cp "$here/generate.mjs" "$work/"

"$work/venv/bin/python" "$here/generate.py" "$out"
node "$work/generate.mjs" "$out"
echo "ingest vectors written to $out"
