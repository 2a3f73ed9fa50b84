"""Commands that keep the library: ingest, status, watch, remove, reindex."""

from __future__ import annotations

import argparse
from typing import TextIO

from app.cli.common import StopFlag, data_dir, emit, index_with_bar, recovered, report_indexing, run_settings, say
from app.cli.parser import EXIT_FAILED, EXIT_OK
from app.errors import UsageError


def cmd_ingest(args: argparse.Namespace, out: TextIO) -> int:
    """Add PATHs to the library as roots and bring them in line with the disk."""
    from app.core.library import Library

    missing = [p for p in args.paths if not p.expanduser().exists()]
    if missing:
        raise UsageError(f"{missing[0]} does not exist. Check the path and try again.")
    stop = StopFlag().install()
    try:
        with Library(data_dir(args), purpose="docent ingest", settings=run_settings(args)) as lib:
            recovered(lib)
            paths = [p.expanduser() for p in args.paths]
            if lib.repair is not None:
                # Rebuild every library folder, not just the ones named now.
                paths += [r for r in lib.rebuild_roots() if r not in paths]
            report = index_with_bar(lambda **kw: lib.indexer.ingest(paths, **kw), stop)
    finally:
        stop.restore()
    return report_indexing(report, out, json_out=args.json, verb="Indexed", again="Ingest")


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.documents.model import status_label
    from app.core.library import Library

    folder = data_dir(args)
    with Library(folder, writer=False, settings=run_settings(args)) as lib:
        status = lib.status()
    if args.json:
        emit(status.to_json(with_files=args.files), out)
        return EXIT_OK
    f = status.files
    out.write(f"Library at {folder}\n")
    out.write("  " + " · ".join(f"{n} {s}" for s, n in f.items()) + f"\n  {status.chunks} chunks\n")
    if status.failed:
        out.write("Failed:\n")
        for path, reason in status.failed:
            out.write(f"  {path}: {reason}\n")
    if args.files:
        out.write("Files:\n")
        for d in status.documents:
            reason = f" — {d['reason']}" if d["reason"] else ""
            shown = status_label(d["status"], d["reason"])
            out.write(f"  {shown:<13} {d['chunks']:>6}  {d['path']}{reason}\n")
            for a in d.get("attachments", []):  # documents of their own inside a mail file
                why = f" — {a['reason']}" if a["reason"] else ""
                pages = f" ({a['pages']} pages)" if a["pages"] else ""
                out.write(f"  {'':<13} {'':>6}    attachment: {a['name']}{pages}{why}\n")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library
    from app.core.ingest.sync import FolderSync

    missing = [p for p in args.paths if not p.expanduser().exists()]
    if missing:
        raise UsageError(f"{missing[0]} does not exist. Check the path and try again.")
    stop = StopFlag().install()
    try:
        with Library(data_dir(args), purpose="docent watch", settings=run_settings(args)) as lib:
            recovered(lib)
            roots = [p.expanduser().resolve() for p in args.paths]
            sync = FolderSync(lib.indexer, only=roots, poll=args.poll or lib.settings.sync_poll,
                              rescan_s=lib.settings.rescan_minutes * 60, log=say)
            say(f"Watching {', '.join(map(str, roots))} (Ctrl+C to stop)")
            sync.run(should_stop=stop)
            say("Stopped watching.")
    finally:
        stop.restore()
    return EXIT_OK


def cmd_remove(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.ingest.maintenance import normal_path, not_removable, remove_paths
    from app.core.library import Library

    with Library(data_dir(args), purpose="docent remove", settings=run_settings(args)) as lib:
        recovered(lib)
        catalog = lib.catalog
        paths = [normal_path(p) for p in args.paths]
        # Nothing is removed when one path is wrong: a typo must not half-run a removal.
        unknown = not_removable(catalog, paths)
        if unknown:
            for item in unknown:
                say(f"docent: {item['path']} was not removed: {item['reason']}.")
            say("docent: nothing was removed; `docent status --files` lists the library.")
            return EXIT_FAILED
        for p in paths:
            say(f"Removing {p} from the library…")
        report = remove_paths(lib.indexer, paths)
    if args.json:
        emit(report.to_json(), out)
    else:
        out.write(f"Removed {len(report.removed)} item(s) from the library: {report.files} file(s), "
                  f"{report.chunks} passage(s). The files on disk are untouched.\n")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace, out: TextIO) -> int:
    """Read library files again, even if unchanged (all of them without PATHs)."""
    from app.core.ingest.maintenance import normal_path, outside_library, reindex
    from app.core.library import Library

    stop = StopFlag().install()
    try:
        with Library(data_dir(args), purpose="docent reindex", settings=run_settings(args)) as lib:
            recovered(lib)
            paths = [normal_path(p) for p in args.paths] or None
            strays = outside_library(lib.catalog, paths or [])
            if strays:
                for p in strays:
                    say(f"docent: {p} is not in the library; add it with `docent ingest {p}`.")
                return EXIT_FAILED
            if paths is None and not lib.catalog.roots():
                say("The library is empty: nothing to re-index.")
            else:
                say(f"Re-indexing {', '.join(paths) if paths else 'the whole library'}…")
            report = index_with_bar(lambda **kw: reindex(lib.indexer, paths, **kw), stop)
    finally:
        stop.restore()
    return report_indexing(report, out, json_out=args.json, verb="Re-indexed", again="Re-indexing")
