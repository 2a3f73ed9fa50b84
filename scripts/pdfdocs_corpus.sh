#!/usr/bin/env bash
# The pdfdocs development set's corpus (../shared/eval/pdfdocs/README.md):
# three PDF manuals from Debian packages, two of them installed gzip-compressed,
# copied into one folder. Idempotent; the packages are installed by
# `DOCENT_EXTRA_DEBS=... ./scripts/bootstrap.sh` (see the Makefile's eval targets).
set -euo pipefail
out="${1:-.cache/corpus/pdfdocs}"
mkdir -p "$out"
copy() {  # source, name
  if [ ! -s "$out/$2" ]; then
    case "$1" in
      *.gz) gunzip -c "$1" > "$out/$2.tmp" ;;
      *) cp "$1" "$out/$2.tmp" ;;
    esac
    mv "$out/$2.tmp" "$out/$2"
  fi
}
copy /usr/share/doc/ubuntu-packaging-guide-pdf/ubuntu-packaging-guide.pdf.gz ubuntu-packaging-guide.pdf
copy /usr/share/doc/docbook-xsl-doc-pdf/doc/reference.pdf.gz reference.pdf
copy /usr/share/doc/c++-annotations/cplusplus.pdf cplusplus.pdf
