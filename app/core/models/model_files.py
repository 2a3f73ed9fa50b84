"""Finding GGUF chat models already on this computer, for the settings dialog.

People who use other local-AI apps (GPT4All, LM Studio, Jan, Ollama) already
have models downloaded; Docent offers those instead of asking for a download.
Discovery only reads folders: nothing is loaded, and a folder that cannot be
read is skipped, never an error.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"
MIN_MODEL_BYTES = 1024 * 1024  # smaller ".gguf" files are test stubs or vocab files
MAX_DEPTH = 6
MAX_MANIFEST_BYTES = 1024 * 1024
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"

# Vision projectors ("mmproj-…") are GGUF too, but cannot answer on their own.
_PROJECTOR = re.compile(r"mmproj|projector", re.IGNORECASE)
# A model split in parts loads from its first part; the others are not choices.
_SPLIT_PART = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.IGNORECASE)
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")


@dataclass(frozen=True)
class FoundModel:
    """A GGUF file Docent can answer with.

    ``source`` is the app whose folder it was found in: "GPT4All",
    "LM Studio", "Jan", "Ollama" or "Docent".
    """

    path: Path
    name: str
    source: str


def is_gguf(path: Path) -> bool:
    """Whether ``path`` is a readable file starting with the GGUF magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def model_folders(
    home: Path | None = None, data_models: Path | None = None
) -> list[tuple[str, Path]]:
    """The folders where local-AI apps keep models, as ``(source, folder)``.

    Every platform's usual places are listed (they cannot clash, and a
    folder that does not exist is simply skipped later). With ``home``
    given, everything is taken under it (Windows' ``%LOCALAPPDATA%`` and
    ``%APPDATA%`` as ``home/AppData/Local`` and ``home/AppData/Roaming``)
    and system-wide folders are left out, so tests see only their fake home.
    ``data_models`` is Docent's own ``DATA_DIR/models``, listed first.
    """
    real_home = home is None
    base = Path.home() if home is None else Path(home)
    local = _env_dir("LOCALAPPDATA") if real_home else None
    roaming = _env_dir("APPDATA") if real_home else None
    local = local or base / "AppData" / "Local"
    roaming = roaming or base / "AppData" / "Roaming"
    mac_support = base / "Library" / "Application Support"
    xdg_data = (_env_dir("XDG_DATA_HOME") if real_home else None) or base / ".local" / "share"

    folders: list[tuple[str, Path]] = []
    if data_models is not None:
        folders.append(("Docent", Path(data_models)))
    folders += [
        ("GPT4All", xdg_data / "nomic.ai" / "GPT4All"),
        ("GPT4All", mac_support / "nomic.ai" / "GPT4All"),
        ("GPT4All", local / "nomic.ai" / "GPT4All"),
        ("LM Studio", base / ".lmstudio" / "models"),
        ("LM Studio", base / ".cache" / "lm-studio" / "models"),
        ("Jan", base / "jan" / "models"),
        ("Jan", xdg_data / "Jan" / "data" / "models"),
        ("Jan", mac_support / "Jan" / "data" / "models"),
        ("Jan", roaming / "Jan" / "data" / "models"),
    ]
    ollama = _env_dir("OLLAMA_MODELS") if real_home else None
    if ollama is not None:
        folders.append(("Ollama", ollama))
    folders.append(("Ollama", base / ".ollama" / "models"))
    if real_home and sys.platform != "win32":
        # The Linux service install keeps its models under its own user.
        folders.append(("Ollama", Path("/usr/share/ollama/.ollama/models")))
    # The same folder can come up twice (XDG_DATA_HOME unset on Linux, …).
    seen: set[Path] = set()
    unique = []
    for source, folder in folders:
        if folder not in seen:
            seen.add(folder)
            unique.append((source, folder))
    return unique


def find_models(
    home: Path | None = None, data_models: Path | None = None, *, limit: int = 200
) -> list[FoundModel]:
    """GGUF models in the folders of :func:`model_folders` that exist.

    Each folder is searched up to six levels deep, without following linked
    folders (which may loop or lead anywhere). Files under 1 MiB, vision
    projectors and later parts of split models are left out; every file is
    checked for the GGUF magic bytes. Ollama keeps models as content-named
    blobs, which are found through its manifests and named like
    ``llama3.2:latest``. At most ``limit`` models; a file reachable from two
    folders is listed once. Never raises for a folder it cannot read.
    """
    found: list[FoundModel] = []
    seen: set[str] = set()
    for source, folder in model_folders(home, data_models):
        if len(found) >= limit:
            break
        try:
            if not folder.is_dir():
                continue
        except OSError:
            continue
        candidates = _ollama_models(folder) if source == "Ollama" else _gguf_files(folder)
        for path, name in candidates:
            key = _identity(path)
            if key in seen:
                continue
            seen.add(key)
            found.append(FoundModel(path, name, source))
            if len(found) >= limit:
                break
    return found


# --- plain folders ------------------------------------------------------------


def _gguf_files(folder: Path) -> list[tuple[Path, str]]:
    """``(path, file name)`` of the usable GGUF files under ``folder``, sorted."""
    out: list[tuple[Path, str]] = []
    for path in _walk(folder, MAX_DEPTH):
        name = path.name
        if not name.lower().endswith(".gguf") or _PROJECTOR.search(name):
            continue
        split = _SPLIT_PART.search(name)
        if split and int(split.group(1)) != 1:
            continue
        if _big_enough(path) and is_gguf(path):
            out.append((path, name))
    return sorted(out, key=lambda item: (item[1].lower(), str(item[0])))


def _walk(folder: Path, depth: int) -> list[Path]:
    """Files under ``folder`` down to ``depth`` levels, not entering linked folders."""
    files: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return files
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth > 1:
                    files.extend(_walk(Path(entry.path), depth - 1))
            elif entry.is_file():  # a linked file is fine: it cannot loop
                files.append(Path(entry.path))
        except OSError:
            continue
    return files


# --- Ollama -------------------------------------------------------------------


def _ollama_models(models: Path) -> list[tuple[Path, str]]:
    """``(blob, "name:tag")`` for each model a manifest under ``models`` names."""
    manifests = models / "manifests"
    out: list[tuple[Path, str]] = []
    for manifest in _walk(manifests, MAX_DEPTH):
        blob = _manifest_blob(manifest, models / "blobs")
        if blob is None or not _big_enough(blob) or not is_gguf(blob):
            continue
        try:
            parts = manifest.relative_to(manifests).parts
        except ValueError:
            continue
        out.append((blob, _ollama_name(parts)))
    return sorted(out, key=lambda item: item[1].lower())


def _manifest_blob(manifest: Path, blobs: Path) -> Path | None:
    """The model layer's blob file named in an Ollama manifest, or ``None``."""
    try:
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        return None
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != OLLAMA_MODEL_LAYER:
            continue
        # Only a well-formed digest may become a file name: no "../" from a manifest.
        match = _DIGEST.fullmatch(str(layer.get("digest", "")))
        if match:
            return blobs / f"sha256-{match.group(1)}"
    return None


def _ollama_name(parts: tuple[str, ...]) -> str:
    """Ollama's own name for a manifest at ``host/namespace/model/tag``."""
    if len(parts) < 2:
        return ":".join(parts)
    *repo, tag = parts
    if len(repo) == 3 and repo[0] == "registry.ollama.ai":
        repo = repo[2:] if repo[1] == "library" else repo[1:]
    return "/".join(repo) + ":" + tag


# --- helpers ------------------------------------------------------------------


def _big_enough(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size >= MIN_MODEL_BYTES


def _identity(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None
