#!/usr/bin/env bash
# Re-export tests/model/data/vspec/instances.vspec with vss-tools 6.0 and 6.1 (from PyPI, each in a
# throwaway environment), expanded and with --no-expand: the fixtures tests/model/test_vss_exports.py loads.
set -euo pipefail
here="$(cd "$(dirname "$0")/../tests/model/data/vspec" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for version in 6.0 6.1; do
    python3 -m venv "$scratch/$version"
    "$scratch/$version/bin/pip" install --quiet --disable-pip-version-check "vss-tools==$version"
    for mode in expand no-expand; do
        "$scratch/$version/bin/vspec" export json -s "$here/instances.vspec" -u "$here/units.yaml" \
            -q "$here/quantities.yaml" "--$mode" --pretty -o "$here/vss-tools-$version-$mode.json" > /dev/null
    done
done
echo "wrote $here/vss-tools-{6.0,6.1}-{expand,no-expand}.json"
