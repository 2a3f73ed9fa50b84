"""A team library's users and roles over real HTTP: readers, editors and
admins against one server on a real library with the bundled models.

Every route that reads the library is tried with a key that may read only one
folder, asking for what lies outside it; editors change folders through the
server's one writer thread; admins make users and read the whole record."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.core.library import Library
from app.core.stores.audit import record_user
from app.core.stores.keys import ROLES
from tests.team import TeamServer, start_team, wait_until


@dataclass
class Team(TeamServer):
    """The test team server, with calls as each user."""

    spare: Path  # a folder an editor adds inside their own scope

    def call(self, method: str, route: str, who: str | None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"} if who else {}
        return httpx.request(method, self.server.url + route, headers=headers, timeout=300, **kwargs)

    def get(self, route: str, who: str | None, **params: object) -> httpx.Response:
        return self.call("GET", route, who, params=params)

    def post(self, route: str, who: str | None, body: object) -> httpx.Response:
        return self.call("POST", route, who, json=body)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, embedder, chat_model) -> Iterator[Team]:
    served = start_team(tmp_path_factory.mktemp("team"), embedder, chat_model, notes_as_file=True)
    spare = served.notes / "later"
    spare.mkdir()
    (spare / "kiln.md").write_text("# Kiln log\n\nThe wood-fired kiln reached 1,280 degrees on its third "
                                   "firing, and the celadon glaze crazed.\n", encoding="utf-8")
    team = Team(**vars(served), spare=spare)
    yield team
    team.stop()


def _a_chunk_of(lib: Library, path: Path) -> str:
    row = lib.catalog.file(str(path))
    assert row is not None and row.status == "indexed"
    return lib.catalog.chunk_ids(row.id)[0]


def test_each_key_says_who_it_is_and_what_it_may_do(team: Team) -> None:
    me = team.get("/v1/whoami", "rita").json()
    assert me == {"user": "rita", "role": "reader", "scopes": [str(team.notes)], "can_edit": False,
                  "can_admin": False, "auth": True}
    assert team.get("/v1/whoami", "ed").json()["can_edit"] is True
    assert team.get("/v1/whoami", "boss").json()["can_admin"] is True
    assert team.get("/v1/whoami", None).status_code == 401


def test_a_reader_sees_only_their_folders_on_every_route(team: Team) -> None:
    pdf = team.docs / "lighthouse-report.pdf"
    # The library: only the notes, read-only.
    lib = team.get("/v1/library", "rita").json()
    assert [f["path"] for f in lib["folders"]] == [str(team.notes / "garden.md")]
    assert lib["read_only"] is True
    everything = team.get("/v1/library", "boss").json()
    assert str(team.docs) in [f["path"] for f in everything["folders"]]
    # A folder wholly in scope is counted in SQL: the same figures as its file rows give.
    shown = next(f for f in everything["folders"] if f["path"] == str(team.docs))
    rows = [f for f in team.lib.catalog.files() if f.path.startswith(str(team.docs) + os.sep)]
    assert shown["whole"] is True and sum(shown["files"].values()) == len(rows) > 0
    assert shown["files"] == {s: sum(f.status == s for f in rows) for s in {f.status for f in rows}}
    assert shown["chunks"] == sum(f.chunks for f in rows if f.status == "indexed") > 0
    # Files: theirs only; another folder does not exist for them.
    files = team.get("/v1/library/files", "rita").json()["files"]
    assert [f["path"] for f in files] == [str(team.notes / "garden.md")]
    assert team.get("/v1/library/files", "rita", folder=str(team.docs)).status_code == 404
    # Passages by id: a guessed id outside their folders answers exactly as a made-up one.
    theirs = _a_chunk_of(team.lib, team.notes / "garden.md")
    assert "tomatoes" in team.get(f"/v1/passages/{theirs}", "rita").json()["text"]
    outside = team.get(f"/v1/passages/{_a_chunk_of(team.lib, pdf)}", "rita")
    made_up = team.get("/v1/passages/no-such-id", "rita")
    assert outside.status_code == made_up.status_code == 404
    assert outside.json()["error"]["code"] == made_up.json()["error"]["code"] == "not_found"
    assert "lighthouse" not in outside.text
    # Pages: the same.
    assert team.get("/v1/pages", "rita", path=str(pdf), page=2).status_code == 404
    page = team.get("/v1/pages", "boss", path=str(pdf), page=2).json()
    assert page["page"] == 2 and page["pages"] == team.lib.catalog.file(str(pdf)).pages and page["passages"]
    span = page["passages"][0]
    stored = team.get(f"/v1/passages/{span['id']}", "boss").json()["text"]
    assert page["text"][span["start"]:span["end"]] == stored
    garden = team.get("/v1/pages", "rita", path=str(team.notes / "garden.md")).json()
    assert "twelve apple trees" in garden["text"]
    # Search and questions: never a passage from outside, and asking there is refused.
    hits = team.post("/v1/search", "rita", {"query": "storm warnings lighthouse keepers", "k": 5}).json()["hits"]
    assert all(h["path"].startswith(str(team.notes)) for h in hits)
    refused = team.post("/v1/search", "rita", {"query": "storm warnings", "scope": str(team.docs)})
    assert refused.status_code == 403
    asked = team.post("/v1/ask", "rita", {"question": "How many storm warnings?", "scope": str(team.docs)})
    assert asked.status_code == 403


def test_readers_cannot_change_the_library_or_manage_users(team: Team) -> None:
    for path, body in (("/v1/library/folders", {"paths": [str(team.spare)]}),
                       ("/v1/library/remove", {"paths": [str(team.notes / "garden.md")]}),
                       ("/v1/library/reindex", {"paths": [str(team.notes / "garden.md")]}),
                       ("/v1/users", {"name": "mallory", "role": "admin"})):
        refused = team.post(path, "rita", body)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "forbidden_role"
        assert "rita is a reader" in refused.json()["error"]["message"]
    assert team.get("/v1/users", "rita").status_code == 403
    assert team.get("/v1/users", "ed").status_code == 403
    assert team.call("DELETE", "/v1/users/boss", "ed").status_code == 403
    assert "mallory" not in [k.name for k in team.service.keys.list()]


def test_an_editor_adds_and_removes_folders_within_their_scope(team: Team) -> None:
    outside = team.post("/v1/library/folders", "ed", {"paths": [str(team.docs)]})
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "outside_scope"
    queued = team.post("/v1/library/folders", "ed", {"paths": [str(team.spare)]})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]

    def finished() -> bool:
        return team.get(f"/v1/library/jobs/{job_id}", "ed").json()["state"] in ("done", "failed")
    assert wait_until(finished, 120)
    job = team.get(f"/v1/library/jobs/{job_id}", "ed").json()
    assert job["state"] == "done" and job["user"] == "ed", job
    # Another user's job is not theirs to follow.
    assert team.get(f"/v1/library/jobs/{job_id}", "rita").status_code == 404
    hits = team.post("/v1/search", "rita", {"query": "wood-fired kiln celadon glaze", "k": 3}).json()["hits"]
    assert hits and hits[0]["path"] == str(team.spare / "kiln.md")
    # The record names the editor on the ingest of the folder they added.
    ingested = [r for r in team.lib.audit.records()
                if r["event"] == "ingest" and r["data"].get("path") == str(team.spare / "kiln.md")]
    assert ingested and record_user(ingested[-1]) == "ed"
    removed = team.post("/v1/library/remove", "ed", {"paths": [str(team.spare)]})
    assert removed.status_code == 202
    assert wait_until(lambda: team.get(f"/v1/library/jobs/{removed.json()['id']}", "ed").json()["state"] == "done",
                  120)
    assert str(team.spare) not in [f["path"] for f in team.get("/v1/library", "ed").json()["folders"]]
    not_a_folder = team.post("/v1/library/remove", "ed", {"paths": [str(team.spare)]})
    assert not_a_folder.status_code == 404


def test_admins_make_and_remove_users_and_read_the_whole_record(team: Team) -> None:
    bad = team.post("/v1/users", "boss", {"name": "nina", "role": "god"})
    assert bad.status_code == 400
    assert "'reader', 'editor' or 'admin'" in bad.json()["error"]["message"]  # every role in keys.ROLES
    assert all(f"'{role}'" in bad.json()["error"]["message"] for role in ROLES)
    made = team.post("/v1/users", "boss", {"name": "nina", "role": "reader", "scopes": [str(team.notes)]})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert secret.startswith("dk-") and secret not in str(team.get("/v1/users", "boss").json())
    team.secrets["nina"] = secret
    assert team.post("/v1/search", "nina", {"query": "apple trees", "k": 2}).status_code == 200
    # Readers and editors read their own records only.
    own = team.get("/v1/audit", "nina").json()
    assert own["user"] == "nina" and own["records"]
    assert {record_user(r) for r in own["records"]} == {"nina"}
    assert team.get("/v1/audit", "nina", user="boss").status_code == 403
    everyone = team.get("/v1/audit", "boss", limit=1000).json()["records"]
    users = {record_user(r) for r in everyone}
    assert {"boss", "nina"} <= users and any(u.startswith("local") for u in users)
    made_rec = [r for r in everyone if r["event"] == "user_create" and r["data"]["name"] == "nina"]
    assert made_rec and record_user(made_rec[0]) == "boss"
    assert team.get("/v1/audit", "boss", user="nina").json()["records"] == own["records"]
    # Revoked: refused at the next request.
    assert team.call("DELETE", "/v1/users/nina", "boss").status_code == 200
    assert team.post("/v1/search", "nina", {"query": "apple trees"}).status_code == 401
    assert team.call("DELETE", "/v1/users/nina", "boss").status_code == 404


def test_every_record_names_its_user_and_the_cli_filters_by_it(docent, docs, data_dir: Path) -> None:
    assert docent("ingest", str(docs["md"])).code == 0
    records = docent("audit", "show", "--json").json()
    assert records and all(r["data"]["user"].startswith("local") for r in records)
    me = records[0]["data"]["user"]
    mine = docent("audit", "show", "--user", me, "--json").json()
    assert mine == records
    assert me in docent("audit", "show").out
    nobody = docent("audit", "show", "--user", "nobody")
    assert nobody.code == 0 and nobody.out == "" and "no audit records of the user nobody" in nobody.err
