#!/usr/bin/env bash
# One entry point for everything: set up (idempotently) and run.
#   bash scripts/run.sh demo   # napari with the sample, ROIs and scores (Xvfb + screenshot when headless)
#   bash scripts/run.sh test   # the whole test suite, headless
#   bash scripts/run.sh setup  # only the setup
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}
APT_PKGS="xvfb xauth libgl1 libegl1 libglib2.0-0 libdbus-1-3 libfontconfig1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0"

system_packages() {
  command -v dpkg >/dev/null 2>&1 || return 0   # not Debian/Ubuntu: assume present
  local missing=""
  for p in $APT_PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then missing="$missing python3-venv"; fi
  [ -z "$missing" ] && return 0
  echo "[setup] installing system packages:$missing"
  local SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

python_env() {
  [ -x "$VENV/bin/python" ] || { echo "[setup] creating $VENV"; "$PY" -m venv "$VENV"; }
  local stamp="$VENV/.roiscore-stamp"
  local want
  want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VENV/bin/python" -c "import napari_roiscore" 2>/dev/null; then
    echo "[setup] installing napari-roiscore and test dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q -U pip
    "$VENV/bin/python" -m pip install -q -e ".[qt,test]"
    echo "$want" > "$stamp"
  fi
}

setup() { system_packages; python_env; }

headless() {
  # run "$@" under Xvfb unless a display is available
  if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 1920x1200x24" "$@"; fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) setup ;;
  demo)
    setup
    if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
      "$VENV/bin/python" -m napari_roiscore._qt.demo "$@"
    else
      headless "$VENV/bin/python" -m napari_roiscore._qt.demo --no-window "$@"
    fi ;;
  test)
    setup
    # always a virtual screen for the tests, so a developer's desktop is not disturbed
    xvfb-run -a -s "-screen 0 1920x1200x24" "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash scripts/run.sh {demo|test|setup} [args]"; exit 2 ;;
esac
