#!/usr/bin/env bash
# Set up everything Docent needs on a fresh Debian machine, idempotently:
# Debian packages (only those missing), a .venv with Python 3.11, and the
# Python packages (only when pyproject.toml changed since the last install).
set -euo pipefail
cd "$(dirname "$0")/.."

# Qt needs these X/EGL libraries even offscreen; xvfb and x11-utils (xwininfo)
# for screenshots and the installed app's window test;
# cmake and a compiler build llama-cpp-python from source.
DEB_PACKAGES=(
  libegl1 libgl1 libopengl0 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
  libxcb-render-util0 libxcb-image0 libxcb-xkb1 libx11-xcb1 libnss3 libxcomposite1 libxdamage1
  libxrandr2 libxtst6 libxi6 libasound2 xvfb xauth x11-utils cmake build-essential git
)
# Extra packages a target needs (make bench: the R manuals and Python's docs
# as real corpora), e.g. DOCENT_EXTRA_DEBS="r-doc-pdf python3.11-doc".
read -r -a extra <<< "${DOCENT_EXTRA_DEBS:-}"
DEB_PACKAGES+=("${extra[@]}")

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  missing+=(python3.11 python3.11-venv python3.11-dev)
  PYTHON=python3.11
elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3.11-venv)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $PYTHON" >&2
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.docent-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing Python packages into .venv (the first time compiles llama.cpp: about 5 minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip wheel setuptools
  # torch first, alone: its CPU wheel must win over the CUDA build another
  # package's looser requirement would pull.
  .venv/bin/python -m pip install -q "torch==2.13.0" \
    || .venv/bin/python -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  # A portable CPU baseline for llama.cpp (x86-64-v3: AVX2/FMA/F16C), not
  # -march=native, so the build runs on other machines too.
  if [ "$(uname -m)" = "x86_64" ]; then
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
  else
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
  fi
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

# The bundled embedding model's ONNX int8 export (the default backend, which
# runs without torch): made once here, where torch is installed, in the folder
# the installed app ships it from. A later run only checks it (about a second).
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python - <<'PY'
import sys
from app.config import bundled_embedding_model
from app.core.models.embedder import ship_onnx_int8, shipped_export
from app.resources import resources_dir

root = resources_dir() / "models" / "onnx-int8"
if shipped_export(bundled_embedding_model(), [root]) is None:
    print("Preparing the faster embedding model (once, about 30 seconds)", file=sys.stderr)
    ship_onnx_int8(bundled_embedding_model(), root)
PY
