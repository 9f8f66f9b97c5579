#!/usr/bin/env bash
# No Docker engine runs on the development and CI machines, so this script performs the Dockerfile's
# install steps in fresh virtual environments instead, then runs the sample import from the installed
# package, outside the source tree, as the image would. Keep the two in step.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Build stage: pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .
mkdir "$work/src"
cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/importer" "$repo/mappings" "$work/src/"
python3 -m venv "$work/build"
(cd "$work/src" && "$work/build/bin/pip" wheel -q --no-cache-dir --no-deps --wheel-dir "$work/wheels" .)

# Runtime stage: pip install --no-cache-dir /wheels/*.whl, then the sample data beside it.
python3 -m venv "$work/runtime"
"$work/runtime/bin/pip" install -q --no-cache-dir "$work"/wheels/*.whl
mkdir -p "$work/opt/sample_data" "$work/data/state" "$work/data/out"
cp "$repo"/sample_data/*.csv "$repo"/sample_data/*.txt "$work/opt/sample_data/"

# Nothing of the source tree may be needed at run time: run from the empty output folder.
cd "$work/data/out"
status=0
XDG_STATE_HOME="$work/data/state" "$work/runtime/bin/mk-import" -q run "$work/opt/sample_data/dealervault_sales.csv" \
    --mapping dealervault --sandbox --rate 1000 --out "$work/data/out/sample" \
    --metrics-file "$work/data/out/sample.prom" || status=$?
if [ "$status" -gt 1 ]; then
    echo "check_image_steps: the sample import failed with exit code $status" >&2
    exit 1
fi
rows=$(($(wc -l < "$work/data/out/sample/results.csv") - 1))
if [ "$rows" -ne 250 ]; then
    echo "check_image_steps: results.csv has $rows rows, expected 250" >&2
    exit 1
fi
if ! grep -q '^mk_import_rows{' "$work/data/out/sample.prom"; then
    echo "check_image_steps: the sample import wrote no metrics" >&2
    exit 1
fi
"$work/runtime/bin/mk-import" mappings list > /dev/null
"$work/runtime/bin/mk-import" deploy kubernetes "$repo/deploy/dealers.yaml" > /dev/null
# The alert rules ship inside the package: the installed one prints them, the same as deploy/alerts.yaml.
if ! "$work/runtime/bin/mk-import" deploy alerts | cmp -s - "$repo/deploy/alerts.yaml"; then
    echo "check_image_steps: mk-import deploy alerts does not print deploy/alerts.yaml" >&2
    exit 1
fi
echo "check_image_steps: wheel installed non-editable; sample import accounted for all $rows rows (exit $status)"
