#!/usr/bin/env bash
# Upgrade the test environment's lock on purpose, then run the whole test command on it.
#
#   bash scripts/upgrade-lock.sh                 # every package to the newest release the ranges allow
#   bash scripts/upgrade-lock.sh -P schemathesis # only these packages (pip-compile --upgrade-package)
#
# Re-resolves requirements/test.txt from pyproject.toml (extras `all` and `dev`) and requirements/test.in with
# pip-tools (hashes for every file), then runs scripts/test.sh in a new virtualenv built from the new lock.
# When that passes, review `git diff requirements/test.txt` and commit it: an upgrade is a commit.
#
# Why pip-tools and not uv's lock: pip-compile resolves with pip, so it sees the same indexes and local wheels
# (this project's machines keep torch's CPU build as one) that `pip install` in scripts/test.sh installs from;
# uv neither reads pip's configuration nor finds that wheel, and would lock torch's multi-GB CUDA build.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PIP_TOOLS_VERSION=7.7.0
LOCK=requirements/test.txt
TOOLS=.venv-lock-tools

if [ "$#" -eq 0 ]; then
    upgrade=(--upgrade)
else
    upgrade=()
    while [ "$#" -gt 0 ]; do
        case "$1" in
        -P | --upgrade-package)
            upgrade+=(--upgrade-package "$2")
            shift 2
            ;;
        *)
            echo "usage: bash scripts/upgrade-lock.sh [-P PACKAGE ...]" >&2
            exit 2
            ;;
        esac
    done
fi

if [ ! -x "${TOOLS}/bin/pip-compile" ]; then
    python3 -m venv "${TOOLS}"
    "${TOOLS}/bin/python3" -m pip install -q "pip-tools==${PIP_TOOLS_VERSION}"
fi

echo "==> resolving ${LOCK} (${upgrade[*]})"
"${TOOLS}/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
    --no-emit-find-links --extra all --extra dev "${upgrade[@]}" --output-file "${LOCK}" pyproject.toml requirements/test.in

# The extras refer to pitlane itself (all = pitlane[sim,...]); pitlane is installed from the checkout, not the lock.
python3 - "${LOCK}" <<'EOF'
import re
import sys

path = sys.argv[1]
text = open(path, encoding="utf-8").read()
text = re.sub(r"(# WARNING: pip install will require.*\n(# .*\n)*)?pitlane @ file:.*\n(    #.*\n)*", "", text)
open(path, "w", encoding="utf-8").write(text)
EOF

echo "==> testing the new lock in a new virtualenv"
if [ -n "${VIRTUAL_ENV:-}" ]; then # test in the checkout's own .venv, not in the caller's
    PATH="${PATH//${VIRTUAL_ENV}\/bin:/}"
    unset VIRTUAL_ENV
fi
rm -rf .venv
bash scripts/test.sh
echo "==> the suite passed on the new lock: review 'git diff ${LOCK}' and commit it"
