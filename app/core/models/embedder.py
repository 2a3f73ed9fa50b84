"""Sentence embeddings behind a small protocol.

The only module that imports sentence-transformers (and onnxruntime for the
optional int8 path). Vectors are L2-normalised so cosine similarity is a dot
product.

Two backends run the same model: ``onnx-int8`` (the default), an ONNX export
quantised dynamically to int8, run by onnxruntime with the ``tokenizers``
library, several times faster on a CPU; and ``torch`` (full precision,
sentence-transformers). The bundled model's export is made at set-up or build
time and shipped (``ship_onnx_int8``); any other model is exported on first
use into the data folder, which needs torch. The installed app leaves torch
out, so there the int8 backend is the only one (``backend_available``).

Other languages
---------------
The bundled all-MiniLM-L6-v2 understands English; keyword search works in any
language (see ``textnorm``), but to search Chinese, Japanese, … *by meaning*
choose a multilingual sentence-transformers model from a local folder in
Settings → Library → Embedding model (``Settings.embedding_model_path``).
Docent never downloads one itself; on a computer with internet access run,
in any Python with ``sentence-transformers`` installed::

    python -c "from sentence_transformers import SentenceTransformer; \
SentenceTransformer('sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2')\
.save('paraphrase-multilingual-MiniLM-L12-v2')"

and copy the resulting folder (about 470 MB, 50+ languages, 384 dimensions)
to the Docent computer. The model is part of a library's identity (its
folder's name, its vector size and a fingerprint of its weights): a library
indexed with one model refuses another until it is indexed again, since
vectors of two models cannot be compared.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from app.config import enforce_offline
from app.errors import Cancelled, ModelError


#: The bundled embedding model, as its makers name it (spans, the API's model list).
BUNDLED_NAME = "all-MiniLM-L6-v2"

class Embedder(Protocol):
    """What the rest of the core needs from an embedding model.

    ``fingerprint`` (optional: see ``model_fingerprint``) tells two models
    apart whose folders happen to share a name.
    """

    name: str
    dim: int
    max_tokens: int

    def encode(
        self, texts: Sequence[str], *, should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Normalised float32 vectors, one row per text (``on_progress(done, total)``
        after each batch, when given)."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text`` (no special tokens)."""
        ...


class _LocalEmbedder:
    """What both backends share: the model's identity, its own tokenizer's
    spans, and batched encoding that is cancellable between batches. Each
    backend embeds one batch (``_embed``)."""

    name: str
    display_name: str
    fingerprint: str
    dim: int
    max_tokens: int

    def _identify(self, *, name: str, model_dir: Path, dim: int, max_seq_length: int,
                  tokenizer: Any | None, batch_size: int, per_call: int) -> None:
        """Record what the model is and how it is run.

        Args:
            max_seq_length: the model's longest input in tokens; chunks get
                two fewer, to leave room for [CLS] and [SEP].
            per_call: how many texts one ``_embed`` call is given.
        """
        self.name = name  # recorded in the catalog: a library is searched with the model that indexed it
        # For people and spans: the bundled model's folder is just "model";
        # name it as the world does.
        self.display_name = BUNDLED_NAME if name == "model" and "minilm" in str(model_dir).lower() else name
        # Of the source folder, whichever backend runs it.
        self.fingerprint = model_fingerprint(model_dir)
        self.dim = dim
        self.max_tokens = max_seq_length - 2
        # A copy of its own: a Hugging Face tokenizer sets its padding and
        # truncation on every call, so counting tokens on one thread while a
        # batch is encoded on another would unpad the batch. With a copy (and
        # a lock of its own) counting never waits behind a whole batch either.
        self._span_tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
        self._span_lock = threading.Lock()
        self._batch_size = batch_size
        self._per_call = per_call
        # One run at a time: torch modules are not safe to call from two
        # threads, and onnxruntime already uses every core for one batch.
        self._lock = threading.Lock()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text``, from the model's own tokenizer (thread-safe)."""
        with self._span_lock:
            enc = self._span_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(s, e) for s, e in enc["offset_mapping"] if e > s]

    def encode(
        self, texts: Sequence[str], *, should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` in batches, cancellable between batches.

        Texts are sorted by length first so each batch pads little, then the
        rows are put back in the caller's order. ``on_progress(done, total)``
        is called as it begins and after each batch (a file of ten thousand passages takes a
        minute: the bar must move meanwhile).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if on_progress is not None:
            on_progress(0, len(order))  # embedding begins: its clock starts now
        for lo in range(0, len(order), self._per_call):
            if should_stop is not None and should_stop():
                raise Cancelled()
            idx = order[lo : lo + self._per_call]
            out[idx] = self._embed([texts[i] for i in idx])
            if on_progress is not None:
                on_progress(min(lo + self._per_call, len(order)), len(order))
        return out

    def _embed(self, batch: list[str]) -> np.ndarray:
        raise NotImplementedError


class SentenceEmbedder(_LocalEmbedder):
    """A sentence-transformers model loaded from a local folder, on the CPU."""

    backend = "torch"

    def __init__(self, model_dir: Path, *, batch_size: int = 32, device: str = "cpu") -> None:
        enforce_offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        if not Path(model_dir).is_dir():
            raise ModelError(
                f"The embedding model folder {model_dir} does not exist. "
                "Choose another model folder in the settings."
            )
        try:
            self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure means the same to the user
            raise ModelError(
                f"Could not load the embedding model from {model_dir}: {exc}. "
                "Choose another model folder in the settings."
            ) from exc
        dimension = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension"
        )
        # sentence-transformers batches within a call itself: give it several batches' worth.
        self._identify(name=Path(model_dir).name, model_dir=Path(model_dir), dim=int(dimension() or 0),
                       max_seq_length=int(self._model.max_seq_length), tokenizer=self._model.tokenizer,
                       batch_size=batch_size, per_call=batch_size * 4)

    def _embed(self, batch: list[str]) -> np.ndarray:
        with self._lock:
            vecs = self._model.encode(
                batch,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vecs.astype(np.float32, copy=False)


def embedding_model_problem(folder: str | Path) -> str | None:
    """Why ``folder`` cannot be the embedding model, in words for a person; None if it can.

    Cheap (a few small files, no model library imported), so the settings
    dialog can check as the user types. It catches what would otherwise load
    silently and search badly: a cross-encoder (a reranker) or a bare
    transformer without sentence-transformers' pooling set-up.
    """
    fix = ("Choose a folder holding a sentence-transformers model (for example "
           "paraphrase-multilingual-MiniLM-L12-v2, saved locally), or clear the field to use "
           "the bundled English model.")
    p = Path(folder).expanduser()
    if not p.exists():
        return f"The embedding model folder {p} does not exist. {fix}"
    if not p.is_dir():
        return f"The embedding model must be a folder, but {p} is a file. {fix}"
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"The folder {p} holds no model (its config.json is missing or unreadable). {fix}"
    try:
        st_config = json.loads((p / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        st_config = {}
    config = config if isinstance(config, dict) else {}
    st_config = st_config if isinstance(st_config, dict) else {}
    architectures = [str(a) for a in config.get("architectures") or []]
    if st_config.get("model_type") == "CrossEncoder" or any(
        a.endswith("ForSequenceClassification") for a in architectures
    ):
        return (f"The folder {p} holds a cross-encoder (a reranker), which scores pairs of texts "
                f"and cannot turn one passage into a vector. {fix}")
    if not (p / "modules.json").is_file():
        return (f"The folder {p} holds a bare transformer, not a sentence-transformers model "
                f"(modules.json is missing), so its vectors would search poorly. {fix}")
    return None


def model_fingerprint(model_dir: Path) -> str:
    """A short digest that tells one model folder's weights from another's.

    The folder's name alone is a weak identity (the bundled model lives in a
    folder called ``model``, and so may anyone's), so the library records
    this too. Only the weights count -- each weight file's name, size and
    first and last MiB, which differ between any two trainings -- not the
    JSON files, which a re-save or a package update rewrites (version
    stamps) without changing a single vector. Cheap enough for every start.
    Exported copies (``onnx/``, ``openvino/``) are not what is loaded, so
    they do not count.
    """
    import hashlib

    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    weights = 0
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        if path.suffix not in (".safetensors", ".bin") or rel.split("/")[0] in ("onnx", "openvino"):
            continue
        weights += 1
        size = path.stat().st_size
        digest.update(f"\0{rel}:{size}\0".encode())
        with open(path, "rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    if not weights:
        # The installed app ships the bundled model without its weights (only
        # their int8 export runs there), and their fingerprint in their place.
        try:
            recorded = (model_dir / FINGERPRINT_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            recorded = ""
        if recorded:
            return recorded
    return digest.hexdigest()[:16]


# --- The optional int8 path ---------------------------------------------------

#: The embedding backends a user can choose in the settings.
BACKENDS: tuple[str, ...] = ("torch", "onnx-int8")
#: Written beside a model whose weights an app leaves out (the installed app
#: ships only the bundled model's int8 export): its weights' fingerprint.
FINGERPRINT_FILE = "docent-fingerprint.txt"


def torch_available() -> bool:
    """Whether torch and sentence-transformers are installed (a source
    install has them; the installed app does not). Imports neither."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))


def backend_available(backend: str) -> bool:
    """Whether ``backend`` can run here: the torch one needs torch installed."""
    return backend != "torch" or torch_available()

# Bumped whenever the export or quantisation recipe changes, so caches made by
# an older recipe are not reused.
_RECIPE = "docent-onnx-int8-1"
_ONNX_FILE = "model_qint8.onnx"
_META_FILE = "docent-onnx.json"
_POOLINGS = ("mean", "cls", "max")


def make_embedder(
    model_dir: Path, *, backend: str = "torch", cache_root: Path | None = None, batch_size: int = 32,
    shipped: Sequence[Path] = (),
) -> Embedder:
    """The embedder the settings ask for.

    Args:
        model_dir: the sentence-transformers folder (bundled or configured).
        backend: ``"torch"`` (full precision) or ``"onnx-int8"``.
        cache_root: where exported ONNX models are kept (inside the data
            folder); required for ``"onnx-int8"``.
        shipped: folders of exports made at build time (see
            :func:`ship_onnx_int8`), used before any export of one's own.
    """
    if backend == "torch":
        if not torch_available():
            raise ModelError(
                "The standard (full-precision) embedding backend needs PyTorch, which this "
                "installation of Docent leaves out. Choose the faster (ONNX int8) backend in "
                "Settings → Library → Embedding."
            )
        return SentenceEmbedder(model_dir, batch_size=batch_size)
    if backend == "onnx-int8":
        if cache_root is None:
            raise ValueError("the onnx-int8 backend needs a cache folder")
        return OnnxInt8Embedder(model_dir, cache_root, batch_size=batch_size, shipped=shipped)
    raise ModelError(
        f"Unknown embedding backend {backend!r} in the settings; choose one of {', '.join(BACKENDS)}."
    )


def onnx_cache_dir(model_dir: Path, cache_root: Path) -> Path:
    """The folder that holds (or will hold) the int8 export of ``model_dir``.

    Its name is keyed on the model folder's path and on every file's size and
    modification time, so replacing the model's files gives a fresh export
    instead of silently reusing a stale one.
    """
    return keyed_cache_dir(model_dir, cache_root, _RECIPE)


def keyed_cache_dir(model_dir: Path, cache_root: Path, recipe: str) -> Path:
    """A cache folder for what ``recipe`` makes from ``model_dir``, named after the
    folder's path and every file's size and modification time (see :func:`onnx_cache_dir`)."""
    import hashlib

    model_dir = Path(model_dir).expanduser().resolve()
    digest = hashlib.sha256(f"{recipe}\0{model_dir}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        st = path.stat()
        digest.update(f"\0{path.relative_to(model_dir).as_posix()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return Path(cache_root) / f"{model_dir.name}-{digest.hexdigest()[:12]}"


def shipped_export(model_dir: Path, roots: Sequence[Path]) -> Path | None:
    """An export of ``model_dir``'s weights made at build time, if one of
    ``roots`` holds it (and it was made with the current recipe).

    Exports are matched on the weights' fingerprint, not on the folder's
    path: the installed app's model is not where the build machine's was.
    """
    roots = [Path(r) for r in roots if Path(r).is_dir()]
    if not roots:  # a source checkout ships none: no need to read the weights
        return None
    fingerprint = model_fingerprint(Path(model_dir))
    for root in roots:
        folder = Path(root) / f"{Path(model_dir).name}-{fingerprint}"
        try:
            meta = json.loads((folder / _META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(meta, dict) and meta.get("recipe") == _RECIPE and meta.get("fingerprint") == fingerprint
                and (folder / _ONNX_FILE).is_file()):
            return folder
    return None


def int8_export(model_dir: Path, cache_root: Path, shipped: Sequence[Path] = ()) -> Path | None:
    """The folder of ``model_dir``'s int8 export, shipped or made earlier in
    ``cache_root``; None when it still has to be made."""
    ready = shipped_export(model_dir, shipped) if shipped else None
    if ready is not None:
        return ready
    cached = onnx_cache_dir(model_dir, Path(cache_root))
    return cached if (cached / _META_FILE).exists() else None


def ship_onnx_int8(model_dir: Path, root: Path) -> Path:
    """Make (once) the int8 export of ``model_dir`` that an app ships in
    ``root``, so the installed app embeds without torch; returns its folder.

    Run at build time (packaging/docent.spec), where torch and
    sentence-transformers are installed; a second build reuses the export.
    """
    found = shipped_export(model_dir, [root])
    if found is not None:
        return found
    target = Path(root) / f"{Path(model_dir).name}-{model_fingerprint(Path(model_dir))}"
    if target.exists():  # made by an older recipe
        import shutil

        shutil.rmtree(target)
    export_onnx_int8(model_dir, target)
    return target


def export_onnx_int8(model_dir: Path, target: Path) -> None:
    """Export ``model_dir`` to ONNX and quantise it dynamically to int8, into ``target``.

    Everything happens on this machine, from the local weights: the
    transformer is traced with torch's ONNX exporter, its MatMul and Gather
    weights are quantised per channel to int8 by onnxruntime, and the
    tokenizer and pooling settings are saved beside it. The work is done in a
    temporary folder next to ``target`` and renamed into place at the end, so a
    crash or a failure never leaves a half-written cache that would be reused.

    Raises:
        ModelError: naming ``target``'s folder, when any step fails.
    """
    import shutil
    import tempfile
    import warnings

    target = Path(target)
    if not torch_available():
        raise ModelError(
            f"The embedding model in {model_dir} has to be exported once for the faster (ONNX int8) "
            "backend, and the export needs PyTorch, which this installation of Docent leaves out. "
            "Use the bundled model (clear Settings → Library → Embedding model), or run Docent from "
            "a source install once with this model to make the export."
        )
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        with warnings.catch_warnings():
            # The exporter and the quantiser warn about things that do not
            # matter here (deprecated exporter, pre-processing hints).
            warnings.simplefilter("ignore")
            meta = _export(Path(model_dir), tmp)
        (tmp / _META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished the same export first: use theirs.
            if not (target / _META_FILE).exists():
                raise
        tmp = None if not tmp.exists() else tmp
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
        raise ModelError(
            f"Could not prepare the faster (ONNX int8) embedding model in {target.parent}: {exc}. "
            "Check that this folder is writable and has about 200 MB free, or choose the "
            "standard embedding backend in the settings."
        ) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _export(model_dir: Path, out: Path) -> dict[str, object]:
    """Do the export and quantisation into ``out``; the metadata to save."""
    import logging

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    st_model = SentenceEmbedder(model_dir)._model
    kinds = [type(m).__name__ for m in st_model]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise ModelError(
            f"The embedding model in {model_dir} ({' → '.join(kinds)}) cannot use the faster "
            "ONNX int8 backend. Choose the standard embedding backend in the settings."
        )
    pooling = str(getattr(st_model[1], "pooling_mode", ""))
    if pooling not in _POOLINGS:
        raise ModelError(
            f"The embedding model in {model_dir} pools with {pooling or 'an unknown method'}, which "
            "the faster ONNX int8 backend does not support. Choose the standard embedding backend."
        )
    assert isinstance(st_model, SentenceTransformer)
    transformer = st_model[0].auto_model
    tokenizer = st_model.tokenizer
    # Eager attention traces into plain MatMul/Softmax nodes that quantise well
    # and keep the batch and sequence axes dynamic.
    transformer.set_attn_implementation("eager")
    transformer.eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

    class _Backbone(torch.nn.Module):
        """The transformer with positional inputs, as the exporter wants."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args))).last_hidden_state

    sample = tokenizer(["Docent exports this model once.", "A second, longer sentence pads the first."],
                       padding=True, return_tensors="pt")
    fp32 = out / "model_fp32.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.inference_mode():
        torch.onnx.export(
            _Backbone(transformer), tuple(sample[n] for n in names), str(fp32),
            input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
            opset_version=17, do_constant_folding=True, dynamo=False,
        )
    # Per-channel int8 weights; reduce_range keeps them to 7 bits so the
    # u8×s8 kernels cannot saturate on CPUs without VNNI. The quantiser logs a
    # pre-processing hint on the root logger: silence it for this call only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(fp32), str(out / _ONNX_FILE), weight_type=QuantType.QInt8,
            per_channel=True, reduce_range=True, op_types_to_quantize=["MatMul", "Gather"],
        )
    finally:
        root.setLevel(level)
    fp32.unlink()  # only the int8 model is needed from now on
    tokenizer.save_pretrained(str(out / "tokenizer"))
    return {
        "recipe": _RECIPE,
        "source": str(Path(model_dir).resolve()),
        "name": Path(model_dir).name,
        "inputs": names,
        "pooling": pooling,
        "normalize": True,
        "do_lower_case": bool(getattr(st_model[0], "do_lower_case", False)),
        "max_seq_length": int(st_model.max_seq_length),
        "dim": int(transformer.config.hidden_size),
        # Of the weights exported: how a shipped export finds its model.
        "fingerprint": model_fingerprint(Path(model_dir)),
    }


def _load_tokenizer(folder: Path) -> Any:
    """A model's fast tokenizer from its saved ``tokenizer.json``, with the
    tokenizers library only."""
    from tokenizers import Tokenizer

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"{path} is missing")
    return Tokenizer.from_file(str(path))


def saved_pad_token(folder: Path) -> str:
    """The padding token a saved tokenizer names in its settings."""
    try:
        config = json.loads((Path(folder) / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    pad = config.get("pad_token") if isinstance(config, dict) else None
    return str((pad.get("content") if isinstance(pad, dict) else pad) or "[PAD]")


class OnnxInt8Embedder(_LocalEmbedder):
    """The same model, exported once to ONNX, quantised to int8, run by onnxruntime.

    Vectors are close to, but not identical with, the full-precision ones
    (cosine about 0.99), so a library keeps to one backend: see
    ``Library._check_embedder``. Once the export exists only onnxruntime and
    the tokenizers library are imported: not torch, transformers or
    sentence-transformers.
    """

    backend = "onnx-int8"

    def __init__(self, model_dir: Path, cache_root: Path, *, batch_size: int = 32,
                 shipped: Sequence[Path] = ()) -> None:
        enforce_offline()
        model_dir = Path(model_dir).expanduser()
        if not model_dir.is_dir():
            raise ModelError(
                f"The embedding model folder {model_dir} does not exist. "
                "Choose another model folder in the settings."
            )
        # The bundled model's export is shipped (made at set-up or build
        # time, where torch is); any other model is exported here, once.
        self.cache_dir = int8_export(model_dir, cache_root, shipped) or onnx_cache_dir(model_dir, Path(cache_root))
        if not (self.cache_dir / _META_FILE).exists():
            export_onnx_int8(model_dir, self.cache_dir)
        try:
            import onnxruntime as ort

            # Nothing leaves the machine: onnxruntime's usage events off
            # (the installed app's build was seen looking up their server).
            ort.disable_telemetry_events()
            meta = json.loads((self.cache_dir / _META_FILE).read_text(encoding="utf-8"))
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            self._session = ort.InferenceSession(
                str(self.cache_dir / _ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
            # The tokenizers library alone (Rust, a few MB) reads the same
            # tokenizer.json transformers' fast tokenizer wraps, so the ids and
            # offsets are the same without importing transformers (or torch).
            self._spans_tok = _load_tokenizer(self.cache_dir / "tokenizer")
            self._batch_tok = _load_tokenizer(self.cache_dir / "tokenizer")
            # As transformers does for a batch: cut each text to the model's
            # length, pad to the longest in the batch.
            self._batch_tok.enable_truncation(max_length=int(meta["max_seq_length"]))
            pad_token = saved_pad_token(self.cache_dir / "tokenizer")
            pad_id = self._batch_tok.token_to_id(pad_token)
            self._batch_tok.enable_padding(pad_id=0 if pad_id is None else int(pad_id), pad_token=pad_token)
        except Exception as exc:  # noqa: BLE001 - a damaged cache means the same to the user
            raise ModelError(
                f"Could not load the faster (ONNX int8) embedding model from {self.cache_dir}: {exc}. "
                "Delete that folder so Docent exports it again, or choose the standard embedding "
                "backend in the settings."
            ) from exc
        self._max_seq = int(meta["max_seq_length"])
        self._inputs: list[str] = list(meta["inputs"])
        self._pooling = str(meta["pooling"])
        self._lower = bool(meta.get("do_lower_case", False))
        self._identify(name=str(meta["name"]), model_dir=model_dir, dim=int(meta["dim"]),
                       max_seq_length=self._max_seq, tokenizer=None,
                       batch_size=batch_size, per_call=batch_size)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text`` (no special tokens; thread-safe)."""
        with self._span_lock:
            enc = self._spans_tok.encode(text, add_special_tokens=False)
        return [(s, e) for s, e in enc.offsets if e > s]

    def _embed(self, batch: list[str]) -> np.ndarray:
        # One text per run. Dynamic int8 quantisation scales activations per
        # tensor, i.e. over the whole batch and its padding, so a text's
        # vector would depend on its batch-mates (cosine down to 0.989
        # measured): alone, the same text always gets the same vector. It
        # is also faster on a CPU, with no padding to compute (7.1 s batched
        # vs 4.7 s one by one for 160 texts of 40-180 words).
        return np.vstack([self._embed_one(t) for t in batch])

    def _embed_one(self, text: str) -> np.ndarray:
        # sentence-transformers strips (and optionally lowercases) before tokenizing.
        text = text.strip().lower() if self._lower else text.strip()
        with self._lock:  # onnxruntime already uses every core for one text
            enc = self._batch_tok.encode(text)
            columns = {"input_ids": [enc.ids], "attention_mask": [enc.attention_mask],
                       "token_type_ids": [enc.type_ids]}
            feeds = {n: np.asarray(columns[n], dtype=np.int64) for n in self._inputs}
            hidden = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        if self._pooling == "cls":
            vecs = hidden[:, 0]
        elif self._pooling == "max":
            vecs = np.where(mask > 0, hidden, -1e9).max(axis=1)
        else:
            vecs = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
