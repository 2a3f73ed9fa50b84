#!/usr/bin/env bash
# Build the one-folder desktop app: dist/Docent/docent (run by `make package`).
# Sets up .venv first (scripts/bootstrap.sh), adds PyInstaller, builds from
# packaging/docent.spec, then prints the bundle's size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/bootstrap.sh
if ! .venv/bin/python -c 'import PyInstaller' 2>/dev/null; then
  echo "Installing PyInstaller into .venv" >&2
  .venv/bin/python -m pip install -q "pyinstaller==6.22.3"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
# torch warns about its own deprecated modules while PyInstaller scans them.
export PYTHONWARNINGS="ignore::DeprecationWarning,ignore::FutureWarning"
.venv/bin/pyinstaller --noconfirm --log-level WARN --distpath "$root/dist" --workpath "$root/build/pyinstaller" \
  "$root/packaging/docent.spec"
size="$(du -sh "$root/dist/Docent" | cut -f1)"
echo "Built $root/dist/Docent ($size). Check it: dist/Docent/docent --selftest"
