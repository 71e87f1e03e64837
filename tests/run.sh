#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs them.
# Integration tests run when COMFYUI_PATH points at a ComfyUI checkout; otherwise they skip with a reason.
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[test]" || exit 1
python -m pytest -q -rs tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
