#!/usr/bin/env bash
# Install the built Docent (dist/Docent) for the current user on Linux:
#   packaging/install-linux.sh [DIST_DIR] [PREFIX]
# copies the app to PREFIX/lib/docent (default ~/.local/lib/docent), links
# PREFIX/bin/docent, and adds the desktop entry and icons under
# PREFIX/share (so it appears in the desktop's application menu).
# Remove with: packaging/install-linux.sh --uninstall [PREFIX]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

if [ "${1:-}" = "--uninstall" ]; then
  prefix="${2:-$HOME/.local}"
  rm -rf "$prefix/lib/docent" "$prefix/bin/docent" "$prefix/share/applications/docent.desktop"
  rm -f "$prefix"/share/icons/hicolor/*/apps/docent.png
  echo "Docent removed from $prefix (your data folder is kept)."
  exit 0
fi

dist="${1:-$root/dist/Docent}"
prefix="${2:-$HOME/.local}"
if [ ! -x "$dist/docent" ]; then
  echo "No built app in $dist: run \`make package\` first." >&2
  exit 2
fi
mkdir -p "$prefix/lib" "$prefix/bin" "$prefix/share/applications"
rm -rf "$prefix/lib/docent.new"
cp -a "$dist" "$prefix/lib/docent.new"
rm -rf "$prefix/lib/docent"
mv "$prefix/lib/docent.new" "$prefix/lib/docent"
ln -sfn "$prefix/lib/docent/docent" "$prefix/bin/docent"
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "$prefix/share/icons/hicolor/${size}x${size}/apps"
  cp "$root/resources/icons/docent-$size.png" "$prefix/share/icons/hicolor/${size}x${size}/apps/docent.png"
done
sed "s|@EXEC@|$prefix/lib/docent/docent|" "$root/resources/linux/docent.desktop" \
  > "$prefix/share/applications/docent.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
echo "Docent installed in $prefix/lib/docent; run \`docent\` or open it from the application menu."
