#!/usr/bin/env bash
# Real ComfyUI for the integration and browser tests, built outside the project (sourced by tests/run.sh).
#
#   comfy_venv                 -> prints the python of a venv (cached) with torch==2.14.1, torchvision==0.29.1,
#                                 torchaudio, the newest archived version's requirements, pytest, playwright
#                                 and this pack (editable, no deps)
#   comfy_checkouts            -> prints "VERSION DIR" per ComfyUI to test, oldest first: every archive in
#                                 ../shared/comfyui (extracted once into the cache), else a clone of the pinned
#                                 newest release tag plus any version an earlier run extracted into the cache;
#                                 prints nothing (and the reason on stderr) when neither works
#   comfy_pins PY VERSION DIR  -> prints the folder with that version's comfyui-* packages (installed once)
#   comfy_browser_ready        -> 0 when chromium is there (installed with apt-get when missing and root)
#
# The cache lives in $SPECTRAL_CACHE (default ~/.cache/spectral_progressive); nothing is written into the
# project or next to the archives.  Each version's three comfyui-* packages (frontend, templates, docs) go
# into their own --target folder that run.sh puts first on PYTHONPATH for that version: one venv serves all.

SPECTRAL_CACHE="${SPECTRAL_CACHE:-$HOME/.cache/spectral_progressive}"
COMFY_TORCH_PINS="torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.1"
COMFY_CLONE_URL="https://github.com/comfyanonymous/ComfyUI"
COMFY_CLONE_TAG="v0.33.0"   # the newest release the tests were run against
_REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMFY_ARCHIVES_DIR="${COMFY_ARCHIVES_DIR:-$(cd "$_REPO_DIR/.." && pwd)/shared/comfyui}"

_log() { echo "[comfyui-env] $*" >&2; }

# requirements of a ComfyUI tree without torch* and without the comfyui-* pins (those go per version)
_common_requirements() {
  grep -v -E '^\s*(#|$)' "$1/requirements.txt" | grep -v -E '^(torch|torchvision|torchaudio)\b' \
    | grep -v -E '^comfyui-(frontend-package|workflow-templates|embedded-docs)'
}

_pins() { grep -E '^comfyui-(frontend-package|workflow-templates|embedded-docs)' "$1/requirements.txt"; }

_version_key() {  # 0.3.64 -> 000000003000064 (sortable)
  local IFS=.; local a=($1); printf '%05d%05d%05d\n' "${a[0]:-0}" "${a[1]:-0}" "${a[2]:-0}"
}

comfy_checkouts() {
  mkdir -p "$SPECTRAL_CACHE/comfyui"
  local found=0 arc ver dir lines=()
  for arc in "$COMFY_ARCHIVES_DIR"/ComfyUI-*.tar.gz; do
    [ -f "$arc" ] || continue
    ver="$(basename "$arc" .tar.gz)"; ver="${ver#ComfyUI-}"
    dir="$SPECTRAL_CACHE/comfyui/ComfyUI-$ver"
    if [ ! -f "$dir/.extracted" ]; then
      _log "extracting $arc"
      rm -rf "$dir" && mkdir -p "$SPECTRAL_CACHE/comfyui" || return 1
      tar -xzf "$arc" -C "$SPECTRAL_CACHE/comfyui" || { _log "cannot extract $arc"; continue; }
      [ -d "$dir" ] || { _log "$arc did not unpack to ComfyUI-$ver/"; continue; }
      touch "$dir/.extracted"
    fi
    lines+=("$(_version_key "$ver") $ver $dir")
    found=1
  done
  if [ "$found" = 0 ]; then
    dir="$SPECTRAL_CACHE/comfyui/ComfyUI-${COMFY_CLONE_TAG#v}"
    _log "no archives in $COMFY_ARCHIVES_DIR: testing against ComfyUI $COMFY_CLONE_TAG and the versions already in the cache"
    if [ ! -f "$dir/.extracted" ]; then
      _log "cloning $COMFY_CLONE_URL at $COMFY_CLONE_TAG"
      rm -rf "$dir"
      if git clone -q --depth 1 --branch "$COMFY_CLONE_TAG" "$COMFY_CLONE_URL" "$dir" 2>/dev/null; then
        touch "$dir/.extracted"
      else
        _log "cloning ComfyUI failed (offline?)"
        rm -rf "$dir"
      fi
    fi
    # every checkout in the cache: the clone above and the versions earlier runs extracted from archives
    for dir in "$SPECTRAL_CACHE"/comfyui/ComfyUI-*; do
      [ -f "$dir/.extracted" ] || continue
      ver="${dir##*/ComfyUI-}"
      _log "ComfyUI $ver: testing the checkout in $dir"
      lines+=("$(_version_key "$ver") $ver $dir")
    done
    [ "${#lines[@]}" -gt 0 ] || { _log "no ComfyUI to test against"; return 0; }
  fi
  printf '%s\n' "${lines[@]}" | sort | while read -r _ v d; do echo "$v $d"; done
}

# comfy_pins PYTHON VERSION DIR -> the folder holding that version's comfyui-* packages (installed once)
comfy_pins() {
  local py="$1" v="$2" d="$3" pins="$SPECTRAL_CACHE/pins/$2"
  if [ ! -f "$pins/.installed" ]; then
    _log "installing the comfyui-* packages ComfyUI $v pins into $pins"
    rm -rf "$pins"; mkdir -p "$pins"
    # shellcheck disable=SC2046
    _pip "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$pins" $(_pins "$d") \
      || { _log "cannot install the pins of ComfyUI $v"; return 1; }
    touch "$pins/.installed"
  fi
  echo "$pins"
}

_newest_archive() {
  ls "$COMFY_ARCHIVES_DIR"/ComfyUI-*.tar.gz 2>/dev/null | sort -V | tail -n 1
}

_newest_requirements() {
  local arc; arc="$(_newest_archive)"
  if [ -n "$arc" ]; then
    tar -xzOf "$arc" --wildcards '*/requirements.txt' | grep -v -E '^\s*(#|$)' \
      | grep -v -E '^(torch|torchvision|torchaudio)\b' | grep -v -E '^comfyui-'
  else
    local d="$SPECTRAL_CACHE/comfyui/ComfyUI-${COMFY_CLONE_TAG#v}"
    [ -f "$d/requirements.txt" ] && _common_requirements "$d"
  fi
}

# pip, without the warnings about this machine's local package indexes
_pip() { "$@" 2> >(grep -v -E "is ignored: it is neither a file nor a directory" >&2); }

comfy_venv() {
  local venv="$SPECTRAL_CACHE/venv-comfy"
  local py="$venv/bin/python"
  local req_file="$SPECTRAL_CACHE/venv-requirements.txt" want
  want="$(_newest_requirements; echo "$COMFY_TORCH_PINS pytest playwright")"
  if [ -x "$py" ] && [ -f "$venv/.ready" ] && [ "$(cat "$venv/.ready")" = "$want" ]; then echo "$py"; return 0; fi
  mkdir -p "$SPECTRAL_CACHE"
  if [ ! -x "$py" ]; then
    _log "creating the ComfyUI venv in $venv (torch 2.14.1 + torchvision 0.29.1: a few minutes, once)"
    python3 -m venv "$venv" || return 1
    _pip "$py" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  fi
  _log "installing ComfyUI's requirements (the newest archived version's serve the older ones too)"
  _newest_requirements > "$req_file"
  [ -s "$req_file" ] || { _log "no ComfyUI requirements found"; return 1; }
  # shellcheck disable=SC2086
  _pip "$py" -m pip install -q --disable-pip-version-check $COMFY_TORCH_PINS || return 1
  # shellcheck disable=SC2086
  _pip "$py" -m pip install -q --disable-pip-version-check -r "$req_file" "pytest>=7" playwright \
    -e "$_REPO_DIR[test]" $COMFY_TORCH_PINS || return 1
  echo "$want" > "$venv/.ready"
  echo "$py"
}

comfy_browser_ready() {
  if [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    _log "installing Debian chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) >&2 \
      || { _log "apt-get install chromium failed"; return 1; }
    [ -x /usr/bin/chromium ]
    return $?
  fi
  _log "no chromium and not root: browser tests will skip"
  return 1
}
