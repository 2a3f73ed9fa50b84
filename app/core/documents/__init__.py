"""Document loaders: a file on disk → a :class:`Document` made of pages of text.

Two entry points:

* :func:`kind_for` says which loader handles a path (or ``None``);
* :func:`load` runs it, turning every failure into a :class:`ParseError` or
  :class:`SkipFile` with a short reason a person can act on.

No Qt here; loaders are plain functions, safe to call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.core.documents.model import Document, Page
from app.errors import Cancelled, ParseError, SkipFile

__all__ = [
    "LOAD_TARGET", "LOAD_WITHOUT_OCR", "Document", "Page", "kind_for", "load", "load_without_ocr",
    "skip_reason", "supported_suffixes",
]

#: The reader process's loader (``module:function``), with and without OCR.
LOAD_TARGET = "app.core.documents:load"
LOAD_WITHOUT_OCR = "app.core.documents:load_without_ocr"
#: The words every reason for a file left unread because OCR was off holds
#: (the indexer reads such files again once OCR is on).
OCR_OFF_WORDS = "OCR is turned off"
#: Why an image is not read when the user turned OCR off.
OCR_OFF = f"{OCR_OFF_WORDS} in Settings; turn it on to read images and scanned pages"

OnPage = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

_TEXT_SUFFIXES = frozenset({".txt", ".text", ".log", ".rst", ".tex", ".bib", ".org", ".adoc"})
_CODE_SUFFIXES = frozenset(
    {
        ".py", ".js", ".ts", ".java", ".c", ".h", ".cpp", ".hpp", ".cs", ".go", ".rs", ".rb",
        ".php", ".sh", ".bash", ".sql", ".r", ".swift", ".kt", ".scala", ".lua", ".pl", ".m",
        ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml",
    }
)
_SUFFIX_KINDS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".mkd": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pptx": "pptx",
    ".odp": "odp",
    ".odt": "odt",
    ".epub": "epub",
    ".rtf": "rtf",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".ods": "ods",
    ".csv": "csv",
    ".tsv": "csv",
    ".eml": "email",
    ".mbox": "mbox",
    ".msg": "msg",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".webp": "image",
    **{suffix: "text" for suffix in _TEXT_SUFFIXES},
    **{suffix: "code" for suffix in _CODE_SUFFIXES},
}
# Extension-less files that are conventionally text (compared case-insensitively).
_NAMED_KINDS: dict[str, str] = {
    **{
        name: "text"
        for name in (
            "readme", "license", "licence", "copying", "authors", "contributors",
            "changelog", "changes", "history", "news", "notice", "install", "todo",
        )
    },
    **{
        name: "code"
        for name in (
            "makefile", "gnumakefile", "dockerfile", "containerfile", "vagrantfile",
            "gemfile", "rakefile", "procfile", "jenkinsfile",
        )
    },
}
# Common formats we cannot read, with what the user can do instead.
_UNSUPPORTED_HINTS: dict[str, str] = {
    ".doc": "old Word format (.doc) is not supported; save it as .docx",
    ".xls": "old Excel format (.xls) is not supported; save it as .xlsx",
    ".ppt": "old PowerPoint format (.ppt) is not supported; save it as .pptx",
    ".pages": "Apple Pages files are not supported; export as .docx or PDF",
}


# The loaders of the other formats, imported only when a file of theirs is
# read (their libraries cost start-up time): kind → "module:function", each
# called as ``function(path, on_page=..., should_stop=...)``.
_LOADERS: dict[str, str] = {
    "pptx": "app.core.documents.slides:load_pptx",
    "odp": "app.core.documents.slides:load_odp",
    "odt": "app.core.documents.opendocument:load_odt",
    "epub": "app.core.documents.epub:load_epub",
    "rtf": "app.core.documents.rtf:load_rtf",
    "xlsx": "app.core.documents.sheets:load_xlsx",
    "ods": "app.core.documents.sheets:load_ods",
    "csv": "app.core.documents.sheets:load_csv",
    "email": "app.core.documents.mail:load_eml",
    "mbox": "app.core.documents.mail:load_mbox",
    "msg": "app.core.documents.mail:load_msg",
    "image": "app.core.documents.images:load_image",
}


def supported_suffixes() -> frozenset[str]:
    """Every file suffix (lower case, with the dot) that :func:`load` reads."""
    return frozenset(_SUFFIX_KINDS)


def kind_for(path: Path) -> str | None:
    """The kind of loader for ``path``, or ``None`` if Docent does not read it.

    Kinds: ``"pdf"``, ``"docx"``, ``"markdown"``, ``"text"``, ``"html"``,
    ``"code"``, and those of ``_LOADERS`` (slides, sheets, e-books, mail,
    images). Decided by the file name alone; nothing is opened.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix:
        return _SUFFIX_KINDS.get(suffix)
    return _NAMED_KINDS.get(path.name.lower())


def skip_reason(path: Path) -> str:
    """Why Docent does not read ``path``, with what to do where there is a way."""
    suffix = Path(path).suffix.lower()
    hint = _UNSUPPORTED_HINTS.get(suffix)
    return hint or (f"unsupported file type {suffix}" if suffix else "unsupported file type (no extension)")


def _dispatch(path: Path, kind: str, on_page: OnPage | None, should_stop: ShouldStop | None,
              ocr: bool) -> Document:
    """Run the loader for ``kind``. Imports are lazy: pypdf/docx cost start-up time."""
    if kind == "pdf":
        from app.core.documents.pdf import load_pdf

        return load_pdf(path, on_page=on_page, should_stop=should_stop, ocr=ocr)
    if kind == "image" and not ocr:
        raise SkipFile(path, OCR_OFF)
    if kind == "docx":
        from app.core.documents.word import load_word

        return load_word(path)
    if kind == "markdown":
        from app.core.documents.markdown import load_markdown

        return load_markdown(path)
    if kind == "html":
        from app.core.documents.webpage import load_html

        return load_html(path)
    if kind in _LOADERS:
        import importlib

        module, _, name = _LOADERS[kind].partition(":")
        loader = getattr(importlib.import_module(module), name)
        return loader(path, on_page=on_page, should_stop=should_stop)  # type: ignore[no-any-return]
    from app.core.documents.text import load_text

    return load_text(path, kind)


def _short(message: str, limit: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def load(
    path: Path,
    *,
    on_page: OnPage | None = None,
    should_stop: ShouldStop | None = None,
    ocr: bool = True,
) -> Document:
    """Load a document from disk.

    Args:
        path: the file to read.
        on_page: called as ``on_page(done, total)`` after each PDF page.
        should_stop: polled before the work and between PDF pages; when it
            returns True, :class:`app.errors.Cancelled` is raised.
        ocr: read scanned PDF pages and images by OCR (off: images are
            skipped, and a PDF without a text layer fails saying so).

    Raises:
        SkipFile: Docent does not read this type of file, or it is binary.
        ParseError: the file exists but cannot be read; ``reason`` says why.
        Cancelled: ``should_stop()`` returned True.
    """
    path = Path(path)
    kind = kind_for(path)
    if kind is None:
        raise SkipFile(path, skip_reason(path))
    if should_stop is not None and should_stop():
        raise Cancelled()

    try:
        if not path.is_file():
            raise ParseError(path, "not found (moved or deleted?)" if not path.exists() else "not a regular file")
        if path.stat().st_size == 0:
            raise ParseError(path, "empty file")
        return _dispatch(path, kind, on_page, should_stop, ocr)
    except (ParseError, SkipFile, Cancelled):
        raise
    except PermissionError as exc:
        raise ParseError(path, "permission denied: Docent is not allowed to read this file") from exc
    except FileNotFoundError as exc:
        raise ParseError(path, "not found (moved or deleted?)") from exc
    except OSError as exc:
        raise ParseError(path, _short(f"cannot be read ({exc.strerror or exc})")) from exc
    except MemoryError as exc:
        raise ParseError(path, "too large to read into memory") from exc
    except RecursionError as exc:
        raise ParseError(path, "too deeply nested to read") from exc
    except Exception as exc:  # a parser bug must fail one file, not the queue
        detail = str(exc) or type(exc).__name__
        raise ParseError(path, _short(f"could not be read ({detail})")) from exc


def load_without_ocr(
    path: Path,
    *,
    on_page: OnPage | None = None,
    should_stop: ShouldStop | None = None,
) -> Document:
    """:func:`load` with OCR turned off (the reader process's target when Settings say so)."""
    return load(path, on_page=on_page, should_stop=should_stop, ocr=False)
