"""The reranker's cross-encoder on onnxruntime: no torch when it scores.

A cross-encoder folder (sentence-transformers ``CrossEncoder``, or any
``*ForSequenceClassification`` with one score) is exported once to ONNX in
full precision, from its local weights, with torch's exporter: at the
first use on a machine that has torch (a source install), into Docent's model
cache. From then on only onnxruntime and the ``tokenizers`` library run it,
so the installed app (which leaves torch out) reranks too. A folder that
already holds an ONNX export in the Hugging Face layout (``onnx/model.onnx``
beside ``tokenizer.json``, as many published cross-encoders ship) is run as
it is, torch or not.

The export is full precision, not int8: a reranker reads only the first
stage's best few passages, and its scores are the same as the torch model's
(to about 1e-6), so the order it gives does not depend on the backend.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.config import enforce_offline
from app.core.models.embedder import keyed_cache_dir, saved_pad_token
from app.errors import RerankerError

_RECIPE = "docent-rerank-onnx-1"
_ONNX_FILE = "model.onnx"
_META_FILE = "docent-rerank.json"
#: Where a published model keeps its own ONNX export (Hugging Face's layout).
PUBLISHED_ONNX = Path("onnx") / "model.onnx"


def export_dir(folder: Path, cache_root: Path) -> Path:
    """The cache folder of ``folder``'s export: a replaced model gets a fresh one, never a stale one."""
    return keyed_cache_dir(folder, cache_root, _RECIPE)


def ready_export(folder: Path, cache_root: Path | None) -> Path | None:
    """The ONNX model to run for ``folder``: its own published one, or Docent's export
    made earlier in ``cache_root``; None when there is none yet."""
    folder = Path(folder).expanduser()
    if (folder / PUBLISHED_ONNX).is_file() and (folder / "tokenizer.json").is_file():
        return folder / PUBLISHED_ONNX
    if cache_root is None:
        return None
    cached = export_dir(folder, Path(cache_root))
    return cached / _ONNX_FILE if (cached / _META_FILE).is_file() else None


def export(folder: Path, cache_root: Path) -> Path:
    """Export ``folder``'s cross-encoder to ONNX (full precision) into the cache; returns the model file.

    Needs torch and sentence-transformers (a source install). Done in a
    temporary folder renamed into place, so a crash never leaves a half
    export that would be reused.

    Raises:
        RerankerError: naming the folder, when the export fails.
    """
    target = export_dir(folder, Path(cache_root))
    if (target / _META_FILE).is_file():
        return target / _ONNX_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        meta = _export(Path(folder).expanduser(), tmp)
        (tmp / _META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        tmp = None  # type: ignore[assignment]
    except RerankerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
        raise RerankerError(
            f"The reranker in {folder} could not be prepared to run without PyTorch "
            f"({type(exc).__name__}: {exc}). Clear the reranker setting to search without reranking."
        ) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return target / _ONNX_FILE


def _export(folder: Path, out: Path) -> dict[str, object]:
    """Trace the model into ``out/model.onnx`` and save what scoring needs beside it."""
    import torch
    from sentence_transformers import CrossEncoder

    enforce_offline()
    model = CrossEncoder(str(folder), local_files_only=True, device="cpu")
    inner = model[0].auto_model
    inner.set_attn_implementation("eager")  # plain MatMul/Softmax, dynamic axes kept
    inner.eval()
    tokenizer = model.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

    class _Scores(torch.nn.Module):
        """The classifier with positional inputs, as the exporter wants."""

        def __init__(self, wrapped: torch.nn.Module) -> None:
            super().__init__()
            self.wrapped = wrapped

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.wrapped(**dict(zip(names, args))).logits

    sample = tokenizer([("a question", "a passage that answers it"), ("another", "text")],
                       padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    # The tracer warns about shape checks it freezes; they hold for any batch
    # and length of an encoder (the tests compare scores across lengths).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Scores(inner), tuple(sample[n] for n in names), str(out / _ONNX_FILE),
            input_names=names, output_names=["logits"], dynamic_axes=axes,
            opset_version=17, do_constant_folding=True, dynamo=False,
        )
    tokenizer.save_pretrained(str(out))
    return {
        "recipe": _RECIPE,
        "source": str(folder.resolve()),
        "inputs": names,
        "max_length": int(model.max_length or 512),
        # What CrossEncoder.predict applies to the logit (Sigmoid for one score).
        "activation": type(model.activation_fn).__name__,
    }


def read_json(path: Path) -> dict[str, Any] | None:
    """A model folder's JSON settings file as a dict; None when missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _settings(model_file: Path, folder: Path) -> dict[str, Any]:
    """How to feed and read a model: Docent's export says; a published one is read from its folder."""
    meta_file = model_file.parent / _META_FILE
    if meta_file.is_file():
        return dict(json.loads(meta_file.read_text(encoding="utf-8")))

    config, tok = read_json(folder / "config.json") or {}, read_json(folder / "tokenizer_config.json") or {}
    st = read_json(folder / "config_sentence_transformers.json") or {}
    limit = min(int(tok.get("model_max_length") or 512), int(config.get("max_position_embeddings") or 512))
    # sentence-transformers' default for a one-score head is a sigmoid.
    activation = str(st.get("activation_fn") or "Sigmoid").rsplit(".", 1)[-1]
    return {"inputs": None, "max_length": limit, "activation": activation}


class OnnxCrossEncoder:
    """Scores (question, passage) pairs with an ONNX cross-encoder; onnxruntime and tokenizers only."""

    def __init__(self, model_file: Path, folder: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        enforce_offline()
        ort.disable_telemetry_events()
        settings = _settings(model_file, Path(folder))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.model_file = model_file
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        tokenizer_dir = model_file.parent if (model_file.parent / "tokenizer.json").is_file() else Path(folder)
        self._tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        # As transformers does for pairs: the longer side cut first, padded to the longest pair.
        self._tok.enable_truncation(max_length=int(settings["max_length"]), strategy="longest_first")
        # The model's own padding token: RoBERTa-style models number positions
        # from it, so padding with another id would shift them.
        pad_token = saved_pad_token(tokenizer_dir)
        pad_id = self._tok.token_to_id(pad_token)
        self._tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)
        self._sigmoid = str(settings.get("activation")) == "Sigmoid"
        self._lock = threading.Lock()

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 16) -> np.ndarray:
        """One relevance score per pair (the model's first logit, through its activation)."""
        out: list[np.ndarray] = []
        for lo in range(0, len(pairs), batch_size):
            batch = list(pairs[lo:lo + batch_size])
            with self._lock:
                encs = self._tok.encode_batch(batch)
                columns = {"input_ids": [e.ids for e in encs], "attention_mask": [e.attention_mask for e in encs],
                           "token_type_ids": [e.type_ids for e in encs]}
                feeds = {n: np.asarray(columns[n], dtype=np.int64) for n in self._inputs}
                logits = self._session.run(None, feeds)[0]
            out.append(np.asarray(logits, dtype=np.float32).reshape(len(batch), -1)[:, 0])
        scores = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
        return 1.0 / (1.0 + np.exp(-scores)) if self._sigmoid else scores
