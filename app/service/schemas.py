"""Request bodies of the local API (pydantic), OpenAI's shapes plus Docent's extensions.

Unknown fields are accepted and ignored (OpenAI clients send ``user``,
``presence_penalty``, ...); fields Docent cannot honour as asked are refused
with a sentence naming them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODES = Literal["hybrid", "vector", "keyword"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Sampled(_Open):
    """Sampling fields shared by every generating request."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0, le=1000)  # extension: llama.cpp's top-k
    max_tokens: int | None = Field(None, ge=1, le=32768)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class LibraryOptions(_Open):
    """The ``docent`` extension object: where and how to search the library."""

    scope: str | None = None
    mode: MODES = "hybrid"
    k: int | None = Field(None, ge=1, le=50)
    # False: write the answer again even if it is in the answer cache.
    cache: bool = True


class ContentPart(_Open):
    type: str = "text"
    text: str | None = None


class ChatMessage(_Open):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type in ("text", "input_text"))


class StreamOptions(_Open):
    include_usage: bool = False


class ChatRequest(Sampled):
    model: str = "docent"
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    n: int = Field(1, ge=1, le=1)
    stream_options: StreamOptions | None = None
    docent: LibraryOptions | None = None


class CompletionRequest(Sampled):
    model: str | None = None
    prompt: str | list[str]
    n: int = Field(1, ge=1, le=1)
    stream_options: StreamOptions | None = None


class EmbeddingRequest(_Open):
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class GenerateRequest(Sampled):
    prompt: str


class EmbedRequest(_Open):
    texts: list[str] | None = None
    input: str | list[str] | None = None  # the OpenAI name, accepted too

    def all_texts(self) -> list[str]:
        if self.texts is not None:
            return list(self.texts)
        if self.input is None:
            return []
        return [self.input] if isinstance(self.input, str) else list(self.input)


class SearchRequest(_Open):
    query: str
    k: int = Field(5, ge=1, le=50)
    mode: MODES = "hybrid"
    scope: str | None = None


class AskRequest(Sampled):
    question: str
    k: int = Field(5, ge=1, le=50)
    mode: MODES = "hybrid"
    scope: str | None = None
    history: list[tuple[str, str]] = Field(default_factory=list)
    docent: LibraryOptions | None = None  # only its ``cache`` is read here

    def use_cache(self) -> bool:
        """Whether a cached answer may be returned (``"docent": {"cache": false}``: no)."""
        return self.docent is None or self.docent.cache

    def docent_options(self) -> dict[str, Any]:
        return {"k": self.k, "mode": self.mode, "scope": self.scope}
