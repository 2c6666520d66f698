#!/usr/bin/env bash
# Builds the Python package `backprop` in a virtual environment of its own and runs its pytest
# suite (crates/backprop-py/tests). Works from a clean clone, without a terminal (CI=true).
#
#   scripts/test-python.sh [pytest args...]
#
# Environment:
#   PYTHON                 interpreter that creates the venv (default: python3; CPython >= 3.9)
#   BACKPROP_PY_VENV       where the venv lives (default: $CARGO_TARGET_DIR or target/, then
#                          python-venv; reused between runs)
#   BACKPROP_PY_PROFILE    cargo profile of the extension (default: dev, which reuses the
#                          artifacts of `cargo test`; `release` is what a plain pip install builds)
#
# The extension is installed exactly as a user installs it, `pip install ./crates/backprop-py`
# (PEP 517, maturin backend); only the cargo profile is chosen here, through MATURIN_PEP517_ARGS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="${BACKPROP_PY_VENV:-$target_dir/python-venv}"
profile="${BACKPROP_PY_PROFILE:-dev}"

step() { printf '\n== %s\n' "$*" >&2; }

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "error: $python is missing or older than Python 3.9" >&2
    exit 2
fi

if [ ! -x "$venv/bin/python" ]; then
    step "creating virtual environment $venv"
    "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off

step "installing test dependencies (numpy, pytest, tqdm, maturin)"
"$vpy" -m pip install --quiet numpy pytest tqdm 'maturin>=1.9.4,<2'

step "pip install ./crates/backprop-py (cargo profile: $profile)"
"$vpy" -m pip uninstall --quiet --yes backprop >/dev/null 2>&1 || true
MATURIN_PEP517_ARGS="--profile $profile" \
    "$vpy" -m pip install --quiet ./crates/backprop-py

# The CLI, for the tests that round-trip model files between Python and `backprop`.
if [ -z "${BACKPROP_CLI:-}" ]; then
    step "building the CLI (for model-file round trips)"
    cargo build --quiet -p backprop-cli
    export BACKPROP_CLI="$target_dir/debug/backprop"
fi

step "pytest crates/backprop-py/tests"
# Run from the tests directory so `import backprop` finds the installed package, not the
# source tree.
cd "$root/crates/backprop-py/tests"
exec "$vpy" -m pytest -p no:cacheprovider "$@" .
