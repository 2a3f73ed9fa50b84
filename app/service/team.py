"""A team library's own API: who may see and change what.

Keys are users, each with a role:

* **reader** -- asks and searches, and reads the library's folders, files,
  passages and pages, all within the key's folders (its scopes);
* **editor** -- also adds, removes and re-indexes folders (inside its scopes);
* **admin** -- also manages users and reads the whole audit log.

Everyone reads their own audit records. What lies outside a key's folders does
not exist for it: a passage or page outside them is "not found", exactly as an
id that was never there, so guessing ids tells nothing. No Qt and no HTTP here;
:mod:`app.service.team_routes` turns requests into these calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.ingest.maintenance import normal_path
from app.core.paths import is_inside
from app.core.stores.audit import attributed, record_user
from app.core.stores.catalog import FileRow
from app.core.stores.keys import ROLES
from app.errors import UsageError
from app.service.engine import Caller, Service
from app.service.errors import ApiError, bad_request

#: What each role may do beyond the one before it.
_RANK = {role: i for i, role in enumerate(ROLES)}
#: Audit records returned per request at most.
AUDIT_LIMIT = 1000


def require(caller: Caller, role: str, action: str) -> None:
    """Refuse (403) unless ``caller``'s role is ``role`` or above."""
    if _RANK[caller.role] < _RANK[role]:
        needs = " or ".join(r for r in ROLES if _RANK[r] >= _RANK[role])
        raise ApiError(403, f"{caller.name} is a {caller.role}; {action} needs an {needs} key. "
                       "Ask an admin of this library.", code="forbidden_role")


def whoami(service: Service, caller: Caller) -> dict[str, Any]:
    """Who the key belongs to and what it may do."""
    return {"user": caller.name, "role": caller.role, "scopes": list(caller.scopes),
            "can_edit": _RANK[caller.role] >= _RANK["editor"], "can_admin": caller.role == "admin",
            "auth": service.auth}


# --- the library, as the caller may see it ---------------------------------------


def _visible(caller: Caller, root: str) -> bool:
    """Whether a library folder is (at least partly) the caller's."""
    return caller.allows(root) or any(is_inside(s, root) for s in caller.scopes)


def _file_json(service: Service, row: FileRow) -> dict[str, Any]:
    out: dict[str, Any] = {"path": row.path, "status": row.status, "kind": row.kind, "title": row.title,
                           "chunks": row.chunks, "pages": row.pages, "reason": row.reason}
    parts = service.library.catalog.parts(row.id)
    if parts:
        out["attachments"] = [{"name": p.name, "status": "indexed" if p.reason is None else "skipped",
                               "kind": p.kind, "pages": p.pages, "reason": p.reason} for p in parts]
    return out


def library(service: Service, caller: Caller) -> dict[str, Any]:
    """The folders the caller may see, with their files' statuses, and live sync's state."""
    catalog = service.library.catalog
    folders = []
    for root in catalog.roots():
        if not _visible(caller, root.path):
            continue
        whole = caller.allows(root.path)
        if whole:  # the usual case, polled by every client: counted in SQL
            counts, chunks = catalog.root_counts(root.id)
        else:  # a key limited to part of the folder: only the files inside its scope
            files = [f for f in catalog.files(root_id=root.id) if caller.allows(f.path)]
            counts = {}
            for f in files:
                counts[f.status] = counts.get(f.status, 0) + 1
            chunks = sum(f.chunks or 0 for f in files if f.status == "indexed")
        folders.append({"path": root.path, "added_at": root.added_at, "files": counts, "chunks": chunks,
                        "whole": whole})
    keeper = service.keeper
    jobs = [] if keeper is None else [
        j.to_json() for j in keeper.jobs() if caller.role == "admin" or j.user == caller.name]
    return {"folders": folders, "sync": keeper.sync_state() if keeper else {"running": False},
            "jobs": jobs, "read_only": _RANK[caller.role] < _RANK["editor"]}


def files(service: Service, caller: Caller, folder: str | None) -> dict[str, Any]:
    """The caller's files (under ``folder`` when given), each with its status."""
    catalog = service.library.catalog
    where = normal_path(folder) if folder else None
    if where is not None and not _visible(caller, where):
        raise _not_found("folder", folder or "")
    rows = [f for f in catalog.files() if caller.allows(f.path)
            and (where is None or is_inside(f.path, where))]
    return {"files": [_file_json(service, f) for f in rows]}


def _not_found(what: str, name: str) -> ApiError:
    # The same answer whether it does not exist or is outside the key's
    # folders: a reader learns nothing by guessing.
    return ApiError(404, f"There is no {what} {name} in the folders this key may read.", code="not_found")


def passage(service: Service, caller: Caller, chunk_id: str) -> dict[str, Any]:
    """One stored passage (a search hit's or a citation's), within the caller's folders."""
    found = service.library.catalog.chunks([chunk_id]).get(chunk_id)
    if found is None or not caller.allows(found.path):
        raise _not_found("passage", chunk_id)
    return {"id": found.id, "path": found.path, "page": found.page, "label": found.label,
            "part": found.part, "attachment": found.attachment, "heading": found.heading,
            "start": found.start, "end": found.end, "text": found.text}


def page(service: Service, caller: Caller, path: str, number: int | None, part: str | None) -> dict[str, Any]:
    """The indexed text of one page of a document (``number`` None: a file without pages),
    with where each of its passages lies in it -- what a client's viewer shows."""
    catalog = service.library.catalog
    path = normal_path(path)
    row = catalog.file(path)
    if row is None or row.status != "indexed" or not caller.allows(row.path):
        raise _not_found("document", path)
    chunks = catalog.chunks_covering(row.id, number, 0, 1 << 62, part)
    if not chunks:
        raise _not_found("page", f"{number} of {path}" if number is not None else f"of {path}")
    # Passages overlap: the page is each passage's characters past the last
    # one's end, at the offsets they were cut from (a gap, which chunking
    # does not leave, would be blank).
    base = chunks[0].start
    text, spans = "", []
    for c in chunks:
        lo, hi = c.start - base, c.end - base
        if len(c.text) == hi - lo:
            if hi > len(text):
                text = text.ljust(lo) + c.text[max(0, len(text) - lo):]
        else:  # a passage not cut verbatim from the page (never in practice): kept whole
            lo, text = len(text) + 1, text + "\n" + c.text
            hi = len(text)
        spans.append({"id": c.id, "start": lo, "end": hi})
    return {"path": row.path, "page": number, "pages": row.pages, "part": part,
            "attachment": chunks[0].attachment, "text": text, "passages": spans}


# --- changing the library (editors) ------------------------------------------------


def change(service: Service, caller: Caller, kind: str, paths: list[str]) -> dict[str, Any]:
    """Queue adding, removing or re-indexing folders on the server; the job to follow."""
    require(caller, "editor", {"add": "adding folders", "remove": "removing folders",
                               "reindex": "re-indexing"}[kind])
    if not paths or any(not isinstance(p, str) or not p.strip() for p in paths):
        raise bad_request("Name at least one folder or file on the server, as an absolute path.", "paths")
    wanted = []
    for raw in paths:
        if not Path(raw).is_absolute():
            raise bad_request(f"{raw} is not an absolute path; name folders as the server sees them.", "paths")
        path = normal_path(raw)
        if not caller.allows(path):
            raise ApiError(403, f"The key {caller.name} may only change {', '.join(caller.scopes)}; "
                           f"{raw} is outside them.", code="outside_scope", param="paths")
        if kind == "add" and not Path(path).exists():
            raise bad_request(f"{path} does not exist on the server. Check the path (it is the server's, "
                              "not your computer's).", "paths")
        if kind == "remove" and service.library.catalog.root(path) is None:
            raise ApiError(404, f"{path} is not a library folder; GET /v1/library lists them.", code="not_found")
        wanted.append(path)
    keeper = service.keeper
    if keeper is None:
        raise ApiError(503, "This server does not change its library over the API: use the window's "
                       "library pane, or run `docent serve`.", code="unavailable")
    job = keeper.submit(kind, wanted, caller.name, caller.audit())
    return job.to_json()


def job(service: Service, caller: Caller, job_id: int) -> dict[str, Any]:
    """One library job, for the user who asked for it (or an admin)."""
    found = service.keeper.job(job_id) if service.keeper is not None else None
    if found is None or (caller.role != "admin" and found.user != caller.name):
        raise _not_found("job", str(job_id))
    return found.to_json()


# --- the record -------------------------------------------------------------------


def audit(service: Service, caller: Caller, user: str | None, limit: int) -> dict[str, Any]:
    """Audit records, newest last: a user's own, or (admins) anyone's."""
    if user is not None and user != caller.name:
        require(caller, "admin", "reading another user's audit records")
    if caller.role != "admin" and user is None:
        user = caller.name
    limit = max(1, min(int(limit), AUDIT_LIMIT))
    records = service.library.audit.records()
    if user is not None:
        records = [r for r in records if record_user(r) == user]
    return {"user": user, "records": records[-limit:], "total": len(records)}


# --- users (admins) ---------------------------------------------------------------


def users(service: Service, caller: Caller) -> dict[str, Any]:
    """Every user (key) of this library, never their secrets."""
    require(caller, "admin", "listing users")
    return {"users": [k.to_json() for k in service.keys.list()]}


def create_user(service: Service, caller: Caller, name: str, role: str, scopes: list[str],
                rpm: int | None, tpm: int | None) -> dict[str, Any]:
    """Make a user; the answer holds their key's secret, shown this once."""
    require(caller, "admin", "making users")
    folders = tuple(normal_path(s) for s in scopes)
    try:
        key, secret = service.keys.create(name, scopes=folders, role=role, rpm=rpm, tpm=tpm)
    except UsageError as exc:
        raise bad_request(str(exc), "name") from exc
    with attributed(caller.audit()):
        service.library.audit.append("user_create", {"name": key.name, "role": key.role,
                                                     "scopes": list(key.scopes)})
    return {**key.to_json(), "secret": secret}


def revoke_user(service: Service, caller: Caller, name: str) -> dict[str, Any]:
    """Delete a user's key: their requests are refused from the next one on."""
    require(caller, "admin", "removing users")
    if not service.keys.revoke(name):
        raise ApiError(404, f"There is no user {name}; GET /v1/users lists them.", code="not_found")
    with attributed(caller.audit()):
        service.library.audit.append("user_revoke", {"name": name})
    return {"name": name, "revoked": True}
