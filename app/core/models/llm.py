"""The local chat model: the only module that imports llama_cpp.

Prompts are rendered with the chat template stored in the GGUF file, then
completed token by token; a caller's ``should_stop`` is checked between
tokens, so Stop takes effect within one token. llama.cpp keeps the KV cache
of the previous prompt and reuses the longest shared prefix by itself, so a
follow-up question only pays for what changed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app import config as defaults
from app.errors import ModelError

# The instruction sets llama.cpp is built for (scripts/bootstrap.sh: the
# x86-64-v3 baseline, not -march=native). A processor without them would
# die of an illegal instruction on the first token; it gets a sentence instead.
REQUIRED_CPU_FLAGS = ("avx", "avx2", "fma", "f16c")
#: Prompt tokens read per step (llama.cpp's default). Measured here on a
#: 2,270-token prompt: steps of 2,048 were slower without flash attention
#: (12.9 s against 10.7 s), since each step's attention matrix grows with it.
PROMPT_BATCH = 512


def cpu_problem(cpuinfo: str | None = None) -> str | None:
    """Why this processor cannot run the bundled llama.cpp, or None if it can.

    Reads ``/proc/cpuinfo`` on x86-64 Linux (``cpuinfo`` overrides it for
    tests); elsewhere, or when it cannot be read, it assumes the best.
    """
    import platform

    if cpuinfo is None:
        if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
            return None
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if not flags:
        return None
    missing = [f for f in REQUIRED_CPU_FLAGS if f not in flags]
    if not missing:
        return None
    return (f"This computer's processor lacks {', '.join(m.upper() for m in missing)}, which Docent's "
            "local language model needs (Intel from 2013, AMD from 2015 onwards have them). Searching "
            "and indexing still work; answers need a newer computer.")


# Used when a GGUF carries no chat template (ChatML is the most common).
_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _trained_context(llm: Any) -> int:
    """The context length the model was trained with (0 when unknown)."""
    for key, value in llm.metadata.items():
        if key.endswith(".context_length"):
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


@dataclass(frozen=True)
class Sampling:
    """Sampling settings for one answer."""

    temperature: float = defaults.TEMPERATURE
    top_k: int = defaults.TOP_K
    top_p: float = defaults.TOP_P
    repeat_penalty: float = defaults.REPEAT_PENALTY
    max_tokens: int = defaults.MAX_TOKENS
    seed: int = defaults.SEED
    #: Extra strings that end the completion (the API's ``stop``), besides the model's own.
    stop: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.stop:
            out.pop("stop")  # records written before API stops existed stay identical
        else:
            out["stop"] = list(self.stop)
        return out


Message = dict[str, str]


class LocalModel:
    """A GGUF model loaded with llama.cpp.

    Not thread-safe (llama.cpp contexts are not): one worker owns it; a lock
    makes accidental sharing wait instead of corrupting the context.
    """

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        flash_attn: bool = False,
        n_batch: int = PROMPT_BATCH,
    ) -> None:
        """
        Args:
            flash_attn: llama.cpp's fused attention. On CPU it reads a long
                prompt faster (``make bench`` measures it), but its rounding
                changes a small model's greedy answers; off until a model is
                measured with it on both development sets.
            n_batch: prompt tokens evaluated per step (and per micro-batch).
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelError(
                f"The model file {path} does not exist. Choose a GGUF model file in the settings."
            )
        problem = cpu_problem()
        if problem is not None:
            raise ModelError(problem)
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError(f"llama-cpp-python is not installed ({exc}). Run `make run` to install it.") from exc
        threads = n_threads or os.cpu_count() or 1
        try:
            speed = {"flash_attn": flash_attn, "n_batch": n_batch, "n_ubatch": n_batch}
            llm = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers, verbose=False, seed=42, **speed,
            )
            trained = _trained_context(llm)
            if 0 < trained < n_ctx:
                # Past the trained context the model degrades; never go there.
                del llm
                llm = Llama(
                    model_path=str(path), n_ctx=trained, n_threads=threads, n_threads_batch=threads,
                    n_gpu_layers=n_gpu_layers, verbose=False, seed=42, **speed,
                )
        except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError/RuntimeError
            raise ModelError(
                f"Could not load the model {path.name}: {exc}. "
                "Check that it is a complete GGUF file, or choose another model in the settings."
            ) from exc
        self._llm = llm
        self.path = path
        self.name = path.name
        self.n_ctx = int(llm.n_ctx())
        template = llm.metadata.get("tokenizer.chat_template") or _CHATML
        eos = self._token_text(llm.token_eos())
        bos = self._token_text(llm.token_bos())
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._stops = [s for s in {eos, "<|im_end|>", "<|endoftext|>", "<|eot_id|>"} if s]
        self._lock = threading.Lock()
        #: Why the last completion ended: ``stop``, ``length``, ``cancelled`` (None while running).
        self.finish_reason: str | None = None

    def forget(self) -> None:
        """Drop the cached prompt, so the next one is read from scratch (for cold-start measurements)."""
        with self._lock:
            self._llm.reset()

    @property
    def threads(self) -> int:
        """CPU threads llama.cpp uses."""
        return int(self._llm.n_threads)

    @property
    def stop_strings(self) -> list[str]:
        """The strings that end a completion."""
        return list(self._stops)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        try:
            return self._llm._model.token_get_text(token)  # noqa: SLF001 - no public accessor
        except Exception:  # noqa: BLE001
            return self._llm.detokenize([token], special=True).decode("utf-8", "ignore")

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text for ``messages``, from the model's own chat template."""
        return self._formatter(messages=list(messages)).prompt

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield the completion of ``prompt`` piece by piece (about one token each)."""
        with self._lock:
            budget = self.n_ctx - self.count_tokens(prompt) - 1
            max_tokens = max(1, min(sampling.max_tokens, budget))
            try:
                pieces = self._llm.create_completion(
                    prompt,
                    max_tokens=max_tokens,
                    temperature=sampling.temperature,
                    top_k=sampling.top_k,
                    top_p=sampling.top_p,
                    repeat_penalty=sampling.repeat_penalty,
                    seed=sampling.seed,
                    stop=self._stops + [s for s in sampling.stop if s],
                    stream=True,
                )
                self.finish_reason = None
                for piece in pieces:
                    if should_stop is not None and should_stop():
                        self.finish_reason = "cancelled"
                        break
                    choice = piece["choices"][0]
                    # "stop" (end of text or a stop string) or "length" on the last piece.
                    self.finish_reason = choice.get("finish_reason") or self.finish_reason
                    text = choice["text"]
                    if text:
                        yield text
            except ValueError as exc:
                raise ModelError(f"The model could not answer: {exc}") from exc
