#!/usr/bin/env bash
# The project's test command (README "Quick start"; .ci/run calls exactly this).
# Installs pitlane with every extra plus the dev tools, then runs lint, format check, import contracts and pytest.
# Any extra arguments are passed to pytest, e.g. `bash scripts/test.sh tests/sim -x`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
export PIP_ROOT_USER_ACTION=ignore

stage() {
    printf '\n==> %s\n' "$*"
}

stage "[1/6] torch (CPU build)"
if python3 -c 'import torch' >/dev/null 2>&1; then
    echo "torch already installed: $(python3 -c 'import torch; print(torch.__version__)')"
else
    # On the project's machines this pinned version is a local CPU build; any other torch request
    # would download a multi-GB CUDA build, so it is installed before the extras resolve torch.
    python3 -m pip install -q "torch==2.13.0"
fi

stage "[2/6] pip install -e .[all,dev]"
python3 -m pip install -q -e ".[all,dev]"

# The web tests drive Debian's chromium through Playwright's Python package (never `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Debian's chromium for the headless browser tests"
    as_root=""
    if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
    ${as_root} apt-get update -q && DEBIAN_FRONTEND=noninteractive ${as_root} apt-get install -y -q chromium \
        || echo "could not install chromium: the web tests will fail in CI" >&2
fi

# Use the console scripts of the interpreter we just installed into, whatever PATH says.
scripts_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="${scripts_dir}:${PATH}"

stage "[3/6] ruff check"
ruff check .

stage "[4/6] ruff format --check"
ruff format --check .

stage "[5/6] lint-imports (package boundaries from DESIGN.md)"
lint-imports

stage "[6/6] pytest"
rc=0
python3 -m pytest -q "$@" || rc=$?
if [ "${rc}" -eq 5 ]; then
    echo "pytest collected no tests: that counts as a failure" >&2
fi
if [ "${rc}" -ne 0 ]; then
    exit "${rc}"
fi

stage "all checks passed"
