#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every suite.  `.ci/run` calls it.
#
#   integration tests  real ComfyUI.  With COMFYUI_PATH set: that checkout, run with $COMFYUI_PYTHON (the
#                      python of its environment) or this python.  Without it: every archive in
#                      ../shared/comfyui (0.3.64, 0.8.0, 0.33.0), extracted into a cache outside the project
#                      and run from one cached venv (torch 2.14.1, torchvision 0.29.1; tests/comfyui_env.sh);
#                      with no archive, a clone of the pinned newest release; where that fails too, the
#                      suites are skipped with the reason printed.
#   browser tests      the newest ComfyUI's frontend in headless Debian chromium (installed with apt-get when
#                      missing and root); with COMFYUI_PATH set they need SPECTRAL_BROWSER_TESTS=1.
#   unit tests         always, with this python (torch 2.13.0 CPU wheel).
#
# The last line counts every suite ("all: N passed, N failed, N skipped"); a suite that collects no test
# fails the run.  Set SPECTRAL_SUITES to a subset of "unit integration browser" to run fewer.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
# shellcheck source=tests/comfyui_env.sh
source tests/comfyui_env.sh
_pip python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[test]" || exit 1

SUITES="${SPECTRAL_SUITES:-unit integration browser}"
# one torch thread unless told otherwise: the tests' tensors are tiny, and on a shared machine two
# OpenMP threads per process were measured up to 70x slower than one (busy-waiting on each other)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
REPORTS="$(mktemp -d "${TMPDIR:-/tmp}/spectral_reports.XXXXXX")"
status=0
reports=()

wants() { case " $SUITES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# run_suite LABEL PYTHON [env assignments...] -- pytest args...
run_suite() {
  local label="$1" py="$2"; shift 2
  local envs=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local xml="$REPORTS/$label.xml"
  echo "=== $label"
  env "${envs[@]}" "$py" -m pytest -q -rs -p no:cacheprovider --junitxml="$xml" "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "$label: pytest collected no tests: failing on purpose" >&2; status=1
  elif [ "$rc" -ne 0 ]; then
    status=$rc
  fi
  reports+=("$xml")
}

comfy_py=""
comfy_runs=()   # "VERSION DIR PINS"
if wants integration || wants browser; then
  if [ -n "${COMFYUI_PATH:-}" ]; then
    comfy_py="${COMFYUI_PYTHON:-python}"
    comfy_runs+=("given $COMFYUI_PATH ")
  else
    checkouts=()
    while read -r line; do [ -n "$line" ] && checkouts+=("$line"); done < <(comfy_checkouts)
    if [ "${#checkouts[@]}" -eq 0 ]; then
      echo "integration and browser tests skipped: no ComfyUI archive in $COMFY_ARCHIVES_DIR and no clone possible"
    elif ! comfy_py="$(comfy_venv)"; then
      echo "integration and browser tests skipped: the ComfyUI venv could not be built (see above)"
      comfy_py=""
    else
      for line in "${checkouts[@]}"; do
        read -r ver dir <<<"$line"
        pins="$(comfy_pins "$comfy_py" "$ver" "$dir")" || exit 1
        comfy_runs+=("$ver $dir $pins")
      done
    fi
  fi
  if [ -n "$comfy_py" ] && [ "${#comfy_runs[@]}" -gt 0 ]; then
    _pip "$comfy_py" -m pip install -q --disable-pip-version-check --no-deps -e . || exit 1
  fi
fi

newest=""
for run in "${comfy_runs[@]}"; do
  read -r ver dir pins <<<"$run"
  newest="$ver $dir $pins"
  if wants integration; then
    run_suite "integration-comfyui-$ver" "$comfy_py" COMFYUI_PATH="$dir" PYTHONPATH="${pins:-}${PYTHONPATH:+:$PYTHONPATH}" \
      -- tests/integration
  fi
done

if wants browser && [ -n "$newest" ]; then
  read -r ver dir pins <<<"$newest"
  browser=1
  if [ "$ver" = "given" ] && [ "${SPECTRAL_BROWSER_TESTS:-}" != "1" ]; then
    echo "browser tests skipped: opt-in with COMFYUI_PATH (set SPECTRAL_BROWSER_TESTS=1)"; browser=0
  elif ! comfy_browser_ready; then
    echo "browser tests skipped: no chromium (apt-get install chromium)"; browser=0
  fi
  if [ "$browser" = 1 ]; then
    run_suite "browser-comfyui-$ver" "$comfy_py" COMFYUI_PATH="$dir" SPECTRAL_BROWSER_TESTS=1 \
      PYTHONPATH="${pins:-}${PYTHONPATH:+:$PYTHONPATH}" -- tests/browser
  fi
fi

if wants unit; then
  run_suite unit python -- tests/unit
fi

echo "=== summary ($REPO)"
python tests/summarize_junit.py "${reports[@]}" || status=1
exit "$status"
