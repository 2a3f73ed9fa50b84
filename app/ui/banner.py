"""A message strip for the top of the main window.

Errors and warnings that the user should see but need not act on at once
(a file that could not be read, a model that failed to load) go here instead
of a modal dialog, so the window stays usable. Messages stack: the newest is
shown, with a count of the others, and closing it reveals the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

LEVELS = ("error", "warning", "info")
_ICONS = {"error": "✖", "warning": "⚠", "info": "ℹ"}

# A translucent tint over the window's own background keeps the palette's text
# colour readable in light and dark themes; the solid edge carries the level.
_COLOURS = {"error": (218, 54, 51), "warning": (212, 150, 20), "info": (45, 125, 210)}
_STYLE = "\n".join(
    f'QFrame#Banner[level="{level}"] {{ background-color: rgba({r}, {g}, {b}, 45); '
    f"border: 1px solid rgba({r}, {g}, {b}, 140); border-left: 5px solid rgb({r}, {g}, {b}); "
    f"border-radius: 3px; }}"
    for level, (r, g, b) in _COLOURS.items()
)


@dataclass
class _Message:
    level: str
    text: str
    details: str | None
    repeats: int = 1
    action: tuple[str, Callable[[], None]] | None = None


class Banner(QFrame):
    """A dismissible, non-blocking strip of messages, newest shown first.

    Hidden while there is nothing to say. ``dismissed`` is emitted when the
    last message is closed.
    """

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(_STYLE)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._messages: list[_Message] = []

        self.icon_label = QLabel(self)
        self.icon_label.setObjectName("BannerIcon")
        font = self.icon_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.icon_label.setFont(font)

        self.text_label = QLabel(self)
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        # Top-aligned like the icon, so a message that wraps reads from its mark.
        self.text_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        self.more_label = QLabel(self)
        self.more_label.setToolTip("Older messages are shown when you close this one.")

        self.details_button = QToolButton(self)
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show or hide the technical details.")
        self.details_button.toggled.connect(self._toggle_details)

        # An optional action for the shown message (e.g. "Show activity").
        self.action_button = QToolButton(self)
        self.action_button.clicked.connect(self._run_action)
        self.action_button.hide()

        self.dismiss_all_button = QToolButton(self)
        self.dismiss_all_button.setText("Dismiss all")
        self.dismiss_all_button.setAutoRaise(True)
        self.dismiss_all_button.clicked.connect(self.clear)

        self.close_button = QToolButton(self)
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss this message")
        self.close_button.setAccessibleName("Dismiss message")
        self.close_button.clicked.connect(self.dismiss)

        self.details_view = QPlainTextEdit(self)
        self.details_view.setReadOnly(True)
        self.details_view.setMaximumHeight(160)
        self.details_view.setFrameShape(QFrame.Shape.NoFrame)
        self.details_view.hide()

        row = QHBoxLayout()
        top = Qt.AlignmentFlag.AlignTop
        row.addWidget(self.icon_label, 0, top)
        row.addWidget(self.text_label, 1)
        for widget in (self.more_label, self.action_button, self.details_button, self.dismiss_all_button,
                       self.close_button):
            row.addWidget(widget, 0, top)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.details_view)
        self.hide()

    # -- public API -------------------------------------------------------

    def show_message(self, text: str, *, details: str | None = None, level: str = "error",
                     action: tuple[str, Callable[[], None]] | None = None) -> None:
        """Show ``text`` on top of any earlier messages.

        ``details`` (a traceback, a file list, …) is revealed by the Details
        button. ``level`` is "error", "warning" or "info". ``action`` (a
        button's text and what it does) adds a button to this message.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        top = self._messages[-1] if self._messages else None
        if top is not None and (top.level, top.text, top.details) == (level, text, details):
            # The same failure repeating (a watcher retrying) must not bury
            # everything else under copies of itself.
            top.repeats += 1
        else:
            self._messages.append(_Message(level, text, details, action=action))
        self._render()

    def current_text(self) -> str:
        """The message shown now, or "" when there is none."""
        return self._messages[-1].text if self._messages else ""

    def current_level(self) -> str | None:
        """The shown message's level, or None."""
        return self._messages[-1].level if self._messages else None

    def pending_count(self) -> int:
        """How many messages are waiting behind the one shown."""
        return max(0, len(self._messages) - 1)

    def is_shown(self) -> bool:
        """Whether the banner is showing a message."""
        return bool(self._messages) and not self.isHidden()

    def details_text(self) -> str:
        """The shown message's details, "" when it has none."""
        return self._messages[-1].details or "" if self._messages else ""

    @Slot()
    def dismiss(self) -> None:
        """Close the shown message and reveal the next one, if any."""
        if self._messages:
            self._messages.pop()
        self._render()
        if not self._messages:
            self.dismissed.emit()

    @Slot()
    def clear(self) -> None:
        """Close every message."""
        had = bool(self._messages)
        self._messages.clear()
        self._render()
        if had:
            self.dismissed.emit()

    # -- internals --------------------------------------------------------

    def _render(self) -> None:
        if not self._messages:
            self.hide()
            return
        msg = self._messages[-1]
        self.setProperty("level", msg.level)
        # A dynamic property only restyles after the style is re-applied.
        self.style().unpolish(self)
        self.style().polish(self)
        self.icon_label.setText(_ICONS[msg.level])
        # Set here rather than via a descendant selector: children are not
        # re-polished when the banner's level property changes.
        r, g, b = _COLOURS[msg.level]
        self.icon_label.setStyleSheet(f"color: rgb({r}, {g}, {b});")
        self.icon_label.setAccessibleName(msg.level)
        text = msg.text if msg.repeats == 1 else f"{msg.text} (×{msg.repeats})"
        self.text_label.setText(text)
        more = len(self._messages) - 1
        self.more_label.setText(f"(+{more} more)" if more else "")
        self.more_label.setVisible(bool(more))
        self.dismiss_all_button.setVisible(bool(more))
        self.details_button.setVisible(bool(msg.details))
        self.action_button.setText(msg.action[0] if msg.action else "")
        self.action_button.setVisible(msg.action is not None)
        self.details_view.setPlainText(msg.details or "")
        # Each message starts folded: details are for those who ask.
        self.details_button.setChecked(False)
        self.details_view.setVisible(False)
        self.show()

    @Slot()
    def _run_action(self) -> None:
        if self._messages and self._messages[-1].action is not None:
            self._messages[-1].action[1]()

    @Slot(bool)
    def _toggle_details(self, on: bool) -> None:
        self.details_view.setVisible(on and bool(self.details_text()))
