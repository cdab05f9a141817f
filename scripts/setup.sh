#!/usr/bin/env bash
# Idempotent set-up of the workspace on a fresh Debian 12 machine without ROS:
#   1. Debian packages (compiler, cmake, Mesa EGL for MuJoCo's offscreen rendering, chromium
#      for the GUI's browser tests),
#   2. the virtual environment .venv with the pinned packages of requirements.lock
#      (ROS 2 Kilted wheels, colcon, numpy, scipy, torch, mujoco, opencv, pytest, ...),
#   3. repairs of the ROS wheels' CMake exports so that custom interfaces build here,
#   4. `colcon build` of src/ into install/.
# Each step is skipped when its inputs have not changed, so a second run takes seconds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamps="$root/.venv/.stamps"
log() { printf '[setup] %s\n' "$*"; }

# Hash of the named files' contents (paths included), to detect changes.
hash_of() { (cd "$root" && sha256sum "$@" | sha256sum | cut -d' ' -f1); }

# 1. Debian packages ------------------------------------------------------------------------
debs=(cmake g++ make libegl1 libgl1 libgles2 python3-venv chromium)
missing=()
for deb in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Virtual environment with pinned packages ------------------------------------------------
python_bin="${GPS_PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($python_bin --version)"
  "$python_bin" -m venv .venv
fi
mkdir -p "$stamps"
lock_hash="$(hash_of requirements.lock)"
if [ "$(cat "$stamps/requirements" 2>/dev/null)" != "$lock_hash" ]; then
  log "installing pinned packages from requirements.lock (about a minute)"
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock \
      > "$stamps/pip.log" 2>&1; then
    grep -v "neither a file nor a directory" "$stamps/pip.log"
    exit 1
  fi
  rm -f "$stamps/cmake-exports"
  echo "$lock_hash" > "$stamps/requirements"
fi

# 3. Repair the wheels' CMake exports: they name the wheel build machine's Python and numpy
#    include directories, which CMake rejects as non-existent paths.
if [ ! -f "$stamps/cmake-exports" ]; then
  read -r py_include np_include < <(.venv/bin/python -c \
    "import sysconfig, numpy; print(sysconfig.get_paths()['include'], numpy.get_include())")
  # grep finds nothing (exit 1) when the files are already repaired
  { grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' .venv/share || true; } \
    | xargs -0 -r sed -i \
        -e "s|/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include|$np_include|g" \
        -e "s|/opt/python/cp311-cp311/include/python3.11|$py_include|g"
  log "repaired the ROS wheels' CMake exports"
  touch "$stamps/cmake-exports"
fi

# 4. colcon build --------------------------------------------------------------------------
# shellcheck source=scripts/env.sh
GPS_ENV_NO_INSTALL=1 . "$root/scripts/env.sh"
src_hash="$(cd "$root" && find src colcon.meta -type f -not -path '*/__pycache__/*' \
  -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ ! -f install/setup.sh ] || [ "$(cat "$stamps/colcon" 2>/dev/null)" != "$src_hash" ]; then
  log "colcon build"
  mkdir -p build
  colcon --log-base build/log build --base-paths src \
    --event-handlers console_cohesion- summary+ \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$root/.venv/bin/python" \
    >build/colcon.log 2>&1 || { cat build/colcon.log; exit 1; }
  tail -n 3 build/colcon.log
  echo "$src_hash" > "$stamps/colcon"
fi
log "ready: source scripts/env.sh"
