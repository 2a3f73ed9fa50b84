"""E-mail: single messages (.eml, Outlook .msg) and mailboxes (.mbox).

A message is one page: its subject as the first line (the page's heading),
then ``From:``, ``To:``, ``Cc:``, ``Date:`` lines, then the body (the plain
text part, else the HTML part's visible text).

Each attachment Docent reads (by its file name, as in a folder) is a
document of its own inside the message's file, linked to its message: it is
read with the loader of its kind, its pages keep their own numbers and text
and carry the attachment's locator (:class:`~app.core.documents.model.Part`),
so a passage of an attached PDF is cited as "report.pdf, page 3 (attached to
mail.eml)" and shown on that page of the PDF. It is stored, replaced and
removed with its message's file. Every attachment, read or not, is listed in
the document's ``parts``; one that cannot be read is also named in the
message's text as ``Attachment not indexed: NAME (reason)``; it never fails
the message. Mail attached to mail is read to :data:`MAX_MAIL_DEPTH` levels,
no deeper. :func:`extract_attachment` gives an attachment's bytes back, for
the viewer.
"""

from __future__ import annotations

import contextvars
import email.message
import email.utils
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from app.core.documents.model import MAIL_KINDS, Document, Page, Part
from app.errors import Cancelled, ParseError, SkipFile

OnPage = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

#: The largest attachment Docent reads.
MAX_ATTACHMENT_BYTES = 50 * 1024**2
#: Mail attached to mail is read this many levels down (1: a forwarded message).
MAX_MAIL_DEPTH = 2
#: The most messages read from one mailbox.
MAX_MESSAGES = 100_000

_TOO_DEEP = f"mail attached to mail more than {MAX_MAIL_DEPTH} levels deep is not read"
_NO_SUBJECT = "(no subject)"
_HEADERS = ("From", "To", "Cc", "Date")

# How deep in attached mail the file being read is (0: a file in a folder).
# A context variable, because an attached .eml/.msg file is read through
# documents.load(), whose signature carries no depth.
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("docent_mail_depth", default=0)


# -- one message as pages -------------------------------------------------------


@dataclass
class Message:
    """What Docent keeps of a message, whatever its file format."""

    subject: str | None
    headers: list[tuple[str, str]]
    body: str
    attachments: list[Attachment] = field(default_factory=list)
    level: int = 0  # 0: the file's own message; 1: a message attached to it …


@dataclass
class Attachment:
    """An attachment: a file's bytes, or a message attached as a message."""

    name: str
    data: bytes | None = None
    message: Message | None = None
    reason: str | None = None  # why it cannot be read, when known up front


def _clean(text: str) -> str:
    return " ".join(text.split())


def _safe_name(name: str | None, fallback: str) -> str:
    """A file name fit for a temporary folder: no folders, no control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().strip(".") or fallback
    if len(name.encode()) > 200:  # file systems allow 255 bytes; keep the suffix
        suffix = Path(name).suffix[:20]
        name = name.encode()[: 200 - len(suffix.encode())].decode(errors="ignore") + suffix
    return name


def _message_pages(message: Message, path: Path, heading: str, should_stop: ShouldStop | None,
                   tick: Callable[[], None], prefix: str = "", parts: list[Part] | None = None,
                   own: str | None = None) -> list[Page]:
    """The message's page followed by its attachments' pages.

    ``prefix`` is the locator of the message inside its file ("" for the
    file's own message, ``"m17"`` for a mailbox's 17th, ``"2"`` for mail
    attached second); ``own`` is the part the message's page belongs to
    (``None``: the file's own message). Each attachment read is added to
    ``parts``, the ones that were not read too, with the reason.
    """
    subject = message.subject or _NO_SUBJECT
    extra: list[Page] = []
    notes: list[str] = []
    for index, attachment in enumerate(message.attachments, 1):
        locator = f"{prefix}/{index}" if prefix else str(index)
        pages, note = _attachment_pages(attachment, message.level, path, subject, locator,
                                        should_stop, tick, parts)
        extra.extend(pages)
        if note:
            notes.append(note)
    lines = [heading, ""]
    lines += [f"{name}: {value}" for name, value in message.headers if value]
    text = "\n".join(lines).rstrip()
    if message.body.strip():
        text += "\n\n" + message.body.strip()
    if notes:
        text += "\n\n" + "\n".join(notes)
    return [Page(number=None, text=text, headings=((0, heading),), part=own), *extra]


def _attachment_pages(attachment: Attachment, level: int, path: Path, subject: str, locator: str,
                      should_stop: ShouldStop | None, tick: Callable[[], None],
                      parts: list[Part] | None) -> tuple[list[Page], str | None]:
    """The pages of an attachment of a message at ``level``, or a line saying why there are none.

    The attachment is a document of its own: its pages keep their own numbers
    and text and carry its ``locator`` (see :class:`Part`).
    """
    from app.core.documents import kind_for, skip_reason

    name = attachment.name
    found: list[Part] = []

    def unread(reason: str) -> tuple[list[Page], str]:
        if parts is not None:
            parts.append(Part(locator, name, reason=reason, message=subject))
        return [], f"Attachment not indexed: {name} ({reason})"

    if attachment.reason:
        return unread(attachment.reason)
    if attachment.message is not None:
        inner = attachment.message
        if parts is not None:
            parts.append(Part(locator, name, kind="email", message=subject))
        pages = _message_pages(inner, path, inner.subject or _NO_SUBJECT, should_stop, tick,
                               prefix=locator, parts=parts, own=locator)
        return pages, None
    kind = kind_for(Path(name))
    if kind is None:
        return unread(skip_reason(Path(name)))
    if kind in MAIL_KINDS and level + 1 > MAX_MAIL_DEPTH:
        return unread(_TOO_DEEP)
    data = attachment.data or b""
    if len(data) > MAX_ATTACHMENT_BYTES:
        return unread(f"larger than {MAX_ATTACHMENT_BYTES // 1024**2} MB")
    if not data:
        return unread("empty")
    try:
        document = _load_bytes(name, data, level + 1, should_stop, tick)
    except Cancelled:
        raise
    except (ParseError, SkipFile) as exc:
        return unread(exc.reason)
    except Exception as exc:  # an attachment never fails its message
        return unread(f"could not be read: {type(exc).__name__}")
    numbered = sum(1 for p in document.pages if p.number is not None and p.part is None)
    found.append(Part(locator, name, kind=document.kind, pages=numbered or None, message=subject))
    # Its own attachments (mail attached as a file) sit below it.
    found += [replace(p, locator=f"{locator}/{p.locator}") for p in document.parts]
    if parts is not None:
        parts.extend(found)
    pages = [replace(page, part=f"{locator}/{page.part}" if page.part else locator)
             for page in document.pages]
    return pages, None


def _load_bytes(name: str, data: bytes, depth: int, should_stop: ShouldStop | None,
                tick: Callable[[], None]) -> Document:
    """Read an attachment's bytes with Docent's loader for its file name."""
    from app.core.documents import load

    token = _depth.set(depth)
    try:
        with tempfile.TemporaryDirectory(prefix="docent-attachment-") as folder:
            target = Path(folder) / name
            target.write_bytes(data)
            # The attachment's own progress only shows the reader is alive.
            return load(target, on_page=lambda _done, _total: tick(), should_stop=should_stop)
    finally:
        _depth.reset(token)


def _require_content(path: Path, message: Message) -> None:
    """Raise ParseError for a message with nothing in it (no headers, body or attachments)."""
    if not (message.subject or message.body.strip() or message.attachments
            or any(value for _, value in message.headers)):
        raise ParseError(path, "no text to index (the message is empty)")


# -- MIME messages (.eml, .mbox) ------------------------------------------------


def _header(msg: email.message.EmailMessage, name: str) -> str:
    """A header's decoded value; a header the parser chokes on is decoded by hand."""
    try:
        value = msg[name]
        return _clean(str(value)) if value is not None else ""
    except Exception:  # the modern header parser fails on some broken headers
        for key, raw in msg.raw_items():
            if key.lower() == name.lower():
                try:
                    return _clean(str(make_header(decode_header(str(raw)))))
                except Exception:
                    return _clean(str(raw))
        return ""


def _part_text(part: email.message.MIMEPart, path: Path) -> str:
    """A text part's text, its charset checked against the bytes (see text.decode_bytes)."""
    from app.core.documents.text import decode_bytes

    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        text = decode_bytes(path, payload, part.get_content_charset())
    except SkipFile:
        return ""  # binary in a text part: nothing a person would read
    if part.get_content_subtype() == "html":
        return html_text(text)
    return text


def html_text(markup: str) -> str:
    """The visible text of an HTML body."""
    from app.core.documents.webpage import html_to_text

    return html_to_text(markup)[0]


def _walk_attachments(msg: email.message.MIMEPart, body: Any) -> Iterator[email.message.MIMEPart]:
    """Parts that are attachments, not descending into attached messages."""
    for part in msg.iter_parts():
        if not isinstance(part, email.message.MIMEPart):
            continue
        if part.get_content_type() == "message/rfc822":
            yield part
        elif part.is_multipart():
            yield from _walk_attachments(part, body)
        elif part is body:
            continue
        elif part.is_attachment() or part.get_filename():
            # Images shown inside the HTML (logos, signatures) are not attachments a person sent.
            inline = part.get_content_disposition() != "attachment"
            if inline and part.get_content_maintype() == "image":
                continue
            yield part


def _mime_message(msg: email.message.EmailMessage, path: Path, level: int) -> Message:
    """A parsed MIME message (at ``level`` of attached mail) as a :class:`Message`."""
    subject = _header(msg, "Subject") or None
    headers = [(name, _header(msg, name)) for name in _HEADERS]
    body_part: email.message.MIMEPart | None = None
    try:
        body_part = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # a structure the body finder cannot walk: take what is there
        body_part = None
    parts: list[email.message.MIMEPart] = []
    if msg.is_multipart():
        parts = list(_walk_attachments(msg, body_part))
    elif body_part is None:
        if msg.get_content_maintype() == "text":
            body_part = msg
        else:
            parts = [msg]  # a message that is nothing but one attached file
    body = _part_text(body_part, path) if body_part is not None else ""
    attachments = [_mime_attachment(part, path, index, level) for index, part in enumerate(parts, 1)]
    return Message(subject=subject, headers=headers, body=body, attachments=attachments, level=level)


def _mime_attachment(part: email.message.MIMEPart, path: Path, index: int, level: int) -> Attachment:
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, email.message.EmailMessage):
            return Attachment(name=_safe_name(part.get_filename(), f"message {index}.eml"), reason="damaged")
        # Named as a mail program saves it: after its subject.
        name = _safe_name(part.get_filename(), f"{_header(inner, 'Subject') or f'message {index}'}.eml")
        if level + 1 > MAX_MAIL_DEPTH:
            return Attachment(name=name, reason=_TOO_DEEP)
        return Attachment(name=name, message=_mime_message(inner, path, level + 1))
    name = _safe_name(part.get_filename(), f"attachment {index}")
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return Attachment(name=name, reason="damaged")
    if not isinstance(data, bytes):
        return Attachment(name=name, reason="damaged")
    return Attachment(name=name, data=data)


def _parse(data: bytes) -> email.message.EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, email.message.EmailMessage)
    return message


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    return b"\x00" in sample and not sample.startswith((b"\xff\xfe", b"\xfe\xff"))


def load_eml(path: Path, *, on_page: OnPage | None = None, should_stop: ShouldStop | None = None) -> Document:
    """Load one e-mail message (.eml): its page, then its attachments' pages.

    The document's title is the subject.
    """
    data = path.read_bytes()
    if _looks_binary(data):
        raise ParseError(path, "not an e-mail message (it holds binary data)")
    message = _mime_message(_parse(data), path, _depth.get())
    _require_content(path, message)

    def tick() -> None:
        if on_page is not None:
            on_page(0, 1)

    parts: list[Part] = []
    pages = _message_pages(message, path, message.subject or _NO_SUBJECT, should_stop, tick, parts=parts)
    if on_page is not None:
        on_page(1, 1)
    return Document(path=path, kind="email", title=message.subject, pages=pages, parts=parts)


def _mbox_heading(msg: email.message.EmailMessage, message: Message) -> str:
    """``SUBJECT — FROM, DATE`` (the sender's name where there is one; the date as ISO)."""
    sender = _header(msg, "From")
    try:
        name, address = email.utils.parseaddr(sender)
        sender = name or address or sender
    except Exception:
        pass
    date = _header(msg, "Date")
    try:
        parsed = email.utils.parsedate_to_datetime(date)
        date = parsed.strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, IndexError):
        pass
    tail = ", ".join(part for part in (sender, date) if part)
    subject = message.subject or _NO_SUBJECT
    return f"{subject} — {tail}" if tail else subject


def load_mbox(path: Path, *, on_page: OnPage | None = None, should_stop: ShouldStop | None = None) -> Document:
    """Load a mailbox (.mbox): each message a page headed ``SUBJECT — FROM, DATE``.

    Messages are read one at a time (progress and a chance to stop after
    each); at most :data:`MAX_MESSAGES`, past which the last page ends with a
    line saying so. The title is the file's name without its extension.
    """
    import mailbox

    try:
        box = mailbox.mbox(str(path), create=False)
        keys = box.keys()
    except mailbox.Error as exc:
        raise ParseError(path, f"not a valid mailbox ({exc})") from exc
    if not keys:
        raise ParseError(path, "no messages found (not an mbox mailbox, or an empty one)")
    total = min(len(keys), MAX_MESSAGES)
    level = _depth.get()
    pages: list[Page] = []
    parts: list[Part] = []
    try:
        for done, key in enumerate(keys[:total]):
            if should_stop is not None and should_stop():
                raise Cancelled()

            def tick(done: int = done) -> None:
                if on_page is not None:
                    on_page(done, total)

            data = box.get_bytes(key)
            msg = _parse(data)
            message = _mime_message(msg, path, level)
            pages.extend(_message_pages(message, path, _mbox_heading(msg, message), should_stop, tick,
                                        prefix=f"m{done + 1}", parts=parts))
            if on_page is not None:
                on_page(done + 1, total)
    finally:
        box.close()
    if len(keys) > total and pages:
        last = pages[-1]
        note = (f"\n\n[Docent indexed messages 1–{total:,} of this mailbox; the rest is not indexed: "
                "the mailbox is larger than Docent reads]")
        pages[-1] = replace(last, text=last.text + note)
    return Document(path=path, kind="mbox", title=path.stem, pages=pages, parts=parts)


# -- Outlook .msg ----------------------------------------------------------------

_NOT_MSG = "not a valid Outlook message (damaged, or another kind of file)"


def _msg_message(msg: Any, path: Path, level: int) -> Message:
    """An extract-msg message object (at ``level`` of attached mail) as a :class:`Message`."""
    from app.core.documents.text import decode_bytes
    from app.core.documents.webpage import declared_charset

    def attr(name: str) -> Any:
        try:
            return getattr(msg, name, None)
        except Exception:  # extract-msg computes properties lazily; a broken one is absent
            return None

    date = attr("date")
    headers = [
        ("From", _clean(str(attr("sender") or ""))),
        ("To", _clean(str(attr("to") or ""))),
        ("Cc", _clean(str(attr("cc") or ""))),
        ("Date", date.strftime("%Y-%m-%d %H:%M %z").strip() if hasattr(date, "strftime") else ""),
    ]
    body = attr("body") or ""
    if not isinstance(body, str):
        body = ""
    if not body.strip():
        html = attr("htmlBody")
        if isinstance(html, bytes) and html.strip():
            try:
                body = html_text(decode_bytes(path, html, declared_charset(html)))
            except SkipFile:
                body = ""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    subject = _clean(str(attr("subject") or "")) or None
    found = attr("attachments") or []
    attachments = [_msg_attachment(att, path, index, level) for index, att in enumerate(found, 1)]
    return Message(subject=subject, headers=headers, body=body, attachments=attachments, level=level)


def _msg_attachment(att: Any, path: Path, index: int, level: int) -> Attachment:
    try:
        name = getattr(att, "longFilename", None) or getattr(att, "shortFilename", None)
        name = name or getattr(att, "displayName", None)
    except Exception:
        name = None
    name = _safe_name(name, f"attachment {index}")
    try:
        data = att.data
    except Exception:
        return Attachment(name=name, reason="damaged")
    if isinstance(data, bytes):
        return Attachment(name=name, data=data)
    if data is not None and hasattr(data, "subject"):  # an attached Outlook message
        if not Path(name).suffix:
            name = f"{name}.msg"
        if level + 1 > MAX_MAIL_DEPTH:
            return Attachment(name=name, reason=_TOO_DEEP)
        try:
            message = _msg_message(data, path, level + 1)
        except Exception:
            return Attachment(name=name, reason="damaged")
        return Attachment(name=name, message=message)
    return Attachment(name=name, reason="not a file Docent can read (a link or an embedded object)")


def load_msg(path: Path, *, on_page: OnPage | None = None, should_stop: ShouldStop | None = None) -> Document:
    """Load an Outlook message (.msg) with extract-msg: its page, then its attachments.

    The document's title is the subject.
    """
    from app.core.documents.archive import is_ole

    if not is_ole(path):
        raise ParseError(path, _NOT_MSG)
    import logging

    import extract_msg

    from extract_msg.enums import ErrorBehavior

    # extract-msg logs every oddity of a file at WARNING or above; they are not ours to show.
    logging.getLogger("extract_msg").setLevel(logging.CRITICAL)
    # A broken attachment or RTF body costs that part, not the message.
    tolerance = (ErrorBehavior.ATTACH_SUPPRESS_ALL | ErrorBehavior.RTFDE
                 | ErrorBehavior.STANDARDS_VIOLATION | ErrorBehavior.NAMED_NAME_STREAM)
    try:
        msg = extract_msg.openMsg(str(path), errorBehavior=tolerance)
    except (PermissionError, FileNotFoundError, MemoryError):
        raise
    except Exception as exc:  # extract-msg and olefile raise many kinds on a broken file
        raise ParseError(path, _NOT_MSG) from exc
    try:
        try:
            message = _msg_message(msg, path, _depth.get())
        except (Cancelled, MemoryError):
            raise
        except Exception as exc:
            raise ParseError(path, _NOT_MSG) from exc

        def tick() -> None:
            if on_page is not None:
                on_page(0, 1)

        _require_content(path, message)
        parts: list[Part] = []
        pages = _message_pages(message, path, message.subject or _NO_SUBJECT, should_stop, tick, parts=parts)
    finally:
        try:
            msg.close()
        except Exception:  # closing must not hide what happened before
            pass
    if on_page is not None:
        on_page(1, 1)
    return Document(path=path, kind="msg", title=message.subject, pages=pages, parts=parts)


# -- an attachment's bytes, for the viewer -------------------------------------------


def extract_attachment(path: Path, locator: str) -> tuple[str, bytes]:
    """The file name and bytes of the attachment at ``locator`` in the mail file ``path``.

    ``locator`` is a :class:`~app.core.documents.model.Part`'s. The file is
    parsed as ingest parsed it; call this in the reader process, like every
    other parsing of files anyone could have written.

    Raises:
        ParseError: the file is not mail Docent reads, or the attachment is no
            longer there (the file changed since it was indexed), or it is a
            message attached to the message (shown within its message).
    """
    path = Path(path)
    gone = f"the attachment is no longer in {path.name} (the file changed since it was indexed)"
    steps = [step for step in locator.split("/") if step]
    if not steps:
        raise ParseError(path, gone)
    try:
        message, steps = _file_message(path, steps)
        return _attachment_at(path, message, steps, gone)
    except (IndexError, ValueError, KeyError) as exc:
        raise ParseError(path, gone) from exc


def _file_message(file: Path, steps: list[str]) -> tuple[Message, list[str]]:
    """The message of a mail file the steps start in, and the steps left."""
    suffix = file.suffix.lower()
    if suffix == ".mbox":
        import mailbox

        if not steps[0].startswith("m"):
            raise ValueError(steps[0])
        box = mailbox.mbox(str(file), create=False)
        try:
            data = box.get_bytes(box.keys()[int(steps[0][1:]) - 1])
        finally:
            box.close()
        return _mime_message(_parse(data), file, 0), steps[1:]
    if suffix == ".msg":
        import extract_msg

        msg = extract_msg.openMsg(str(file))
        try:
            return _msg_message(msg, file, 0), steps
        finally:
            msg.close()
    return _mime_message(_parse(file.read_bytes()), file, 0), steps


def _attachment_at(path: Path, message: Message, steps: list[str], gone: str) -> tuple[str, bytes]:
    attachment = message.attachments[int(steps[0]) - 1]
    rest = steps[1:]
    if not rest:
        if attachment.data is None:
            raise ParseError(path, f"{attachment.name} is a message attached to the message: "
                                   "it is shown within the message")
        return attachment.name, attachment.data
    if attachment.message is not None:
        return _attachment_at(path, attachment.message, rest, gone)
    if attachment.data:  # mail attached as a file: read it as the file it is
        with tempfile.TemporaryDirectory(prefix="docent-attachment-") as folder:
            inner = Path(folder) / attachment.name
            inner.write_bytes(attachment.data)
            message, rest = _file_message(inner, rest)
        return _attachment_at(path, message, rest, gone)
    raise ParseError(path, gone)
