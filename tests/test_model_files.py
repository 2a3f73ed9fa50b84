"""Finding GGUF models in other apps' folders under a fake home."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.core.models.model_files import FoundModel, find_models, is_gguf, model_folders

BLOB_HEX = "ab" * 32


def gguf(path: Path, *, size: int = 2 * 1024 * 1024, magic: bytes = b"GGUF") -> Path:
    """A sparse file that looks like a model: the magic bytes, then ``size`` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(magic)
        f.seek(size)
        f.write(b"\0")
    return path


def ollama_model(models: Path, manifest_parts: tuple[str, ...], hex_digest: str) -> Path:
    blob = gguf(models / "blobs" / f"sha256-{hex_digest}")
    manifest = models / "manifests" / Path(*manifest_parts)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "cd" * 32},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "ef" * 32},
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{hex_digest}"},
        ],
    }))
    return blob


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    gguf(h / ".local/share/nomic.ai/GPT4All/Meta-Llama-3-8B-Instruct.Q4_0.gguf")
    gguf(h / "Library/Application Support/nomic.ai/GPT4All/mistral-7b.Q4_0.gguf")
    gguf(h / "AppData/Local/nomic.ai/GPT4All/phi-3-mini.Q4_0.gguf")
    gguf(h / ".lmstudio/models/bartowski/Qwen2.5-7B-GGUF/Qwen2.5-7B-Instruct-Q4_K_M.gguf")
    gguf(h / ".cache/lm-studio/models/TheBloke/old/old-model.Q5_K_M.gguf")
    gguf(h / "jan/models/tinyllama/tinyllama-1.1b.Q4_K_M.gguf")
    gguf(h / "AppData/Roaming/Jan/data/models/gemma/gemma-2b.gguf")
    ollama_model(h / ".ollama/models", ("registry.ollama.ai", "library", "llama3.2", "latest"), BLOB_HEX)
    # Decoys: none of these may be offered.
    lm = h / ".lmstudio/models/decoys"
    gguf(lm / "not-really.gguf", magic=b"PK\x03\x04")  # a zip wearing a .gguf name
    gguf(lm / "tiny.gguf", size=1000)  # under 1 MiB
    gguf(lm / "mmproj-model-f16.gguf")  # vision projector
    gguf(lm / "big-model-00002-of-00003.gguf")  # not the first part of a split model
    gguf(lm / "big-model-00001-of-00003.gguf")
    gguf(lm / "weights.bin")  # wrong suffix
    return h


def names(models: list[FoundModel]) -> set[str]:
    return {m.name for m in models}


def test_finds_models_from_every_app(home: Path, tmp_path: Path) -> None:
    data_models = tmp_path / "data" / "models"
    gguf(data_models / "SmolLM2-135M.Q4_1.gguf")
    found = find_models(home, data_models)
    by_name = {m.name: m for m in found}
    assert names(found) == {
        "SmolLM2-135M.Q4_1.gguf",
        "Meta-Llama-3-8B-Instruct.Q4_0.gguf",
        "mistral-7b.Q4_0.gguf",
        "phi-3-mini.Q4_0.gguf",
        "Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        "old-model.Q5_K_M.gguf",
        "big-model-00001-of-00003.gguf",
        "tinyllama-1.1b.Q4_K_M.gguf",
        "gemma-2b.gguf",
        "llama3.2:latest",
    }
    assert by_name["SmolLM2-135M.Q4_1.gguf"].source == "Docent"
    assert found[0].source == "Docent"  # Docent's own models come first
    assert by_name["Meta-Llama-3-8B-Instruct.Q4_0.gguf"].source == "GPT4All"
    assert by_name["Qwen2.5-7B-Instruct-Q4_K_M.gguf"].source == "LM Studio"
    assert by_name["gemma-2b.gguf"].source == "Jan"
    llama = by_name["llama3.2:latest"]
    assert llama.source == "Ollama"
    assert llama.path == home / ".ollama/models/blobs" / f"sha256-{BLOB_HEX}"
    assert all(is_gguf(m.path) for m in found)


def test_ollama_names_for_users_and_other_hosts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    models = home / ".ollama/models"
    ollama_model(models, ("registry.ollama.ai", "someone", "coder", "7b"), "11" * 32)
    ollama_model(models, ("hf.co", "bartowski", "Llama-3.2-1B-GGUF", "Q4_K_M"), "22" * 32)
    assert names(find_models(home)) == {"someone/coder:7b", "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M"}


def test_ollama_bad_manifests_are_skipped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    models = home / ".ollama/models"
    manifests = models / "manifests/registry.ollama.ai/library"
    (manifests / "broken").mkdir(parents=True)
    (manifests / "broken/latest").write_text("{not json")
    (manifests / "escape").mkdir()
    (manifests / "escape/latest").write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:../../../etc/passwd"}]}))
    (manifests / "missing").mkdir()
    (manifests / "missing/latest").write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "99" * 32}]}))
    # A blob that is not GGUF (an old or foreign format).
    (manifests / "notgguf").mkdir()
    gguf(models / "blobs" / ("sha256-" + "77" * 32), magic=b"ggjt")
    (manifests / "notgguf/latest").write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "77" * 32}]}))
    assert find_models(home) == []


def test_depth_is_bounded_and_linked_folders_are_not_followed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = home / ".lmstudio/models"
    gguf(root / "a/b/c/d/e/six-deep.gguf")  # 6 levels below the folder: found
    gguf(root / "a/b/c/d/e/f/seven-deep.gguf")  # too deep
    elsewhere = gguf(tmp_path / "elsewhere/linked-away.gguf")
    (root / "link").symlink_to(elsewhere.parent, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert names(find_models(home)) == {"six-deep.gguf"}


def test_a_model_reachable_twice_is_listed_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    real = gguf(home / ".lmstudio/models/pub/m.gguf")
    (home / "jan/models").mkdir(parents=True)
    (home / "jan/models/m-link.gguf").symlink_to(real)
    found = find_models(home)
    assert len(found) == 1 and found[0].source == "LM Studio"


def test_limit(home: Path) -> None:
    assert len(find_models(home, limit=3)) == 3


def test_nothing_installed(tmp_path: Path) -> None:
    assert find_models(tmp_path / "empty-home", tmp_path / "no-models") == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions as non-root")
def test_unreadable_folder_is_skipped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    gguf(home / ".lmstudio/models/ok/good.gguf")
    locked = home / ".lmstudio/models/locked"
    gguf(locked / "hidden.gguf")
    locked.chmod(0)
    try:
        assert names(find_models(home)) == {"good.gguf"}
    finally:
        locked.chmod(0o755)


def test_model_folders_stay_under_the_given_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folders = model_folders(home, tmp_path / "data/models")
    assert folders[0] == ("Docent", tmp_path / "data/models")
    assert {s for s, _ in folders} == {"Docent", "GPT4All", "LM Studio", "Jan", "Ollama"}
    assert all(p == tmp_path / "data/models" or p.is_relative_to(home) for _, p in folders)
    paths = [p for _, p in folders]
    assert home / ".local/share/nomic.ai/GPT4All" in paths
    assert home / "Library/Application Support/Jan/data/models" in paths
    assert home / "AppData/Local/nomic.ai/GPT4All" in paths
    assert home / ".ollama/models" in paths
    assert len(paths) == len(set(paths))


def test_model_folders_for_the_real_home_include_system_ollama(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "custom-ollama"))
    folders = model_folders()
    assert ("Ollama", tmp_path / "custom-ollama") in folders
    if os.name == "posix":
        assert ("Ollama", Path("/usr/share/ollama/.ollama/models")) in folders


def test_is_gguf(tmp_path: Path) -> None:
    assert is_gguf(gguf(tmp_path / "m.gguf", size=10))
    assert not is_gguf(gguf(tmp_path / "z.gguf", size=10, magic=b"PK"))
    assert not is_gguf(tmp_path / "absent.gguf")
    assert not is_gguf(tmp_path)  # a folder


def test_folder_that_cannot_be_listed_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Works as root too (where chmod 0 does not stop reading): the listing itself fails.
    import app.core.models.model_files as mf

    home = tmp_path / "home"
    gguf(home / ".lmstudio/models/ok/good.gguf")
    gguf(home / ".lmstudio/models/locked/hidden.gguf")
    gguf(home / "jan/models/j.gguf")
    real_scandir = os.scandir

    unreadable = {home / ".lmstudio/models/locked", home / "jan/models"}

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path) in unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(mf.os, "scandir", scandir)
    assert names(find_models(home)) == {"good.gguf"}


def test_a_file_where_a_folder_should_be(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".lmstudio").mkdir(parents=True)
    (home / ".lmstudio/models").write_text("not a folder")
    (home / ".ollama").mkdir()
    (home / ".ollama/models").write_text("not a folder")
    assert find_models(home) == []


def test_a_processor_too_old_for_llama_cpp_gets_a_sentence_not_a_crash() -> None:
    from app.core.models.llm import cpu_problem

    old = "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx\n"
    problem = cpu_problem(old)
    assert problem is not None and "AVX2, FMA, F16C" in problem and "Searching and indexing still work" in problem
    assert cpu_problem(old.replace("avx\n", "avx avx2 fma f16c\n")) is None
    assert cpu_problem() is None  # this machine runs the bundled model (the other tests prove it)
