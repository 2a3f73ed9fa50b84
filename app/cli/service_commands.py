"""Commands of the local API: serve, and the keys it accepts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from app.cli.common import data_dir, emit, recovered, run_settings, say
from app.cli.parser import EXIT_FAILED, EXIT_OK
from app.config import DataPaths
from app.errors import DataDirLocked, UsageError


def cmd_keys(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.stores.keys import KeyStore

    store = KeyStore(DataPaths(data_dir(args)).keys)
    if args.keys_command == "create":
        scopes = tuple(str(Path(s).expanduser().resolve()) for s in args.scope or ())
        missing = [s for s in scopes if not Path(s).exists()]
        if missing:
            say(f"docent: note: {missing[0]} does not exist (yet); the key may read it once it is in the library.")
        key, secret = store.create(args.name, scopes=scopes, role=args.role, rpm=args.rpm, tpm=args.tpm)
        limits = ", ".join(x for x in (f"{key.rpm} requests/min" if key.rpm else "",
                                       f"{key.tpm} tokens/min" if key.tpm else "") if x) or "no rate limit"
        where = ", ".join(key.scopes) if key.scopes else "the whole library"
        out.write(f"Created the key {key.name} ({key.role}; reads {where}; {limits}).\n"
                  "Copy the secret below now: it is shown only once (only its hash is kept).\n"
                  f"{secret}\n")
        return EXIT_OK
    if args.keys_command == "revoke":
        if not store.revoke(args.name):
            say(f"docent: there is no key named {args.name}; `docent keys list` shows them.")
            return EXIT_FAILED
        out.write(f"Revoked the key {args.name}; requests with it are refused from now on.\n")
        return EXIT_OK
    keys = store.list()
    if args.json:
        emit([k.to_json() for k in keys], out)
        return EXIT_OK
    if not keys:
        out.write("No API keys yet. Create one with `docent keys create NAME`.\n")
    for k in keys:
        limits = " ".join(x for x in (f"rpm={k.rpm}" if k.rpm else "", f"tpm={k.tpm}" if k.tpm else "") if x)
        out.write(f"{k.name}  {k.hint}…  {k.role}  created {k.created}  "
                  f"{'scopes: ' + ', '.join(k.scopes) if k.scopes else 'whole library'}"
                  f"{'  ' + limits if limits else ''}\n")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the API until interrupted, keeping the library's folders in sync."""
    from app.core.library import Library
    from app.core.stores.keys import KeyStore
    from app.service.engine import Service
    from app.service.keeper import LibraryKeeper
    from app.service.runner import check_exposure, serve_foreground

    if args.queue < 1:
        raise UsageError("--queue must be at least 1.")
    auth = not args.no_auth
    check_exposure(args.host, auth=auth, has_keys=KeyStore(DataPaths(data_dir(args)).keys).any())
    try:
        lib = Library(data_dir(args), purpose="docent serve", settings=run_settings(args))
    except DataDirLocked as exc:
        raise DataDirLocked(f"{exc} If that is the window, turn on Settings → Local API there instead: "
                            "it serves the same API from the window's process.") from exc
    service: Service | None = None
    keeper: LibraryKeeper | None = None
    try:
        if lib.vectors_on_server:
            # Connect now: a Chroma server that is down is reported before
            # serving starts, not at the first question.
            lib.vectors  # noqa: B018 - opened for its check
        recovered(lib)
        service = Service(lib, auth=auth, queue_capacity=args.queue)
        service.start_loading()
        roots = [Path(r.path) for r in lib.catalog.roots()]
        # One writer thread keeps the folders in sync and carries out the
        # folder changes editors ask for over the API.
        keeper = service.keeper = LibraryKeeper(lib, say=say)
        keeper.start()
        host = f"[{args.host}]" if ":" in args.host else args.host
        keys = "no key needed: this machine only" if not auth else (
            f"{len(service.keys.list())} key(s)" if service.keys.any()
            else "no keys yet: create one with `docent keys create NAME`")
        say(f"Docent API on http://{host}:{args.port}/v1 ({keys}); "
            f"{'keeping ' + str(len(roots)) + ' folder(s) in sync' if roots else 'no library folders yet'}. "
            "Ctrl+C stops it.")
        serve_foreground(service, args.host, args.port)
    finally:
        if service is not None:
            service.close()
        if keeper is not None:
            keeper.stop(timeout=30)
        lib.close()
    say("Stopped serving.")
    return EXIT_OK
