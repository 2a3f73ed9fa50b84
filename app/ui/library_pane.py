"""The library pane: folders and documents with their live status."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.documents.model import MAIL_KINDS, page_word, status_label
from app.core.stores.catalog import Catalog, FileRow, Root

STATUS_WORDS = {
    "indexed": "indexed",
    "pending": "waiting",
    "indexing": "indexing…",
    "failed": "failed",
    "skipped": "skipped",
    "unavailable": "unavailable",
}
STATUS_COLOURS = {"failed": "#c0392b", "unavailable": "#b9770e", "skipped": "#7f8c8d", "indexing": "#2471a3"}
PATH_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
REASON_ROLE = Qt.ItemDataRole.UserRole + 2
# On a message's row: the attachments its rows below show, as (locator, reason) pairs.
PARTS_ROLE = Qt.ItemDataRole.UserRole + 3


class LibraryPane(QWidget):
    """Library roots and their files, filterable, with per-item actions.

    Reads through its own read-only catalog connection (WAL), so painting
    never waits for the ingest worker's writes.
    """

    add_folder_requested = Signal()
    add_files_requested = Signal()
    remove_requested = Signal(str)  # a root path
    reindex_requested = Signal(str)  # a root or file path
    open_folder_requested = Signal(str)  # a folder path
    ask_about_requested = Signal(str)  # a root or file path

    def __init__(self, catalog: Catalog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.indexing_path: str | None = None

        title = QLabel("<b>Library</b>")
        self.counts = QLabel()
        self.counts.setObjectName("libraryCounts")
        self.filter = QLineEdit(placeholderText="Filter by name or status…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Name", "Status", "Chunks"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemSelectionChanged.connect(self._show_details)
        # Why a file failed or was skipped, readable without hovering.
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setObjectName("fileDetails")

        self.empty = QLabel(
            "Your library is empty.\n\nDrop folders or files anywhere on this window, "
            "or click “Add folder…”.\n\nDocent reads PDF, Word, Markdown, text, HTML and "
            "code files. Nothing leaves this computer."
        )
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setObjectName("emptyState")

        self.add_button = QPushButton("Add folder…")
        self.add_button.clicked.connect(self.add_folder_requested)
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.clicked.connect(self.add_files_requested)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected folder out of the library (files on disk stay)")
        self.remove_button.clicked.connect(lambda: self._emit_selected(self.remove_requested, roots_only=True))
        self.reindex_button = QPushButton("Re-index")
        self.reindex_button.clicked.connect(lambda: self._emit_selected(self.reindex_requested))
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self._open_selected_folder)

        buttons = QHBoxLayout()
        for b in (self.add_button, self.add_files_button):
            buttons.addWidget(b)
        buttons2 = QHBoxLayout()
        for b in (self.remove_button, self.reindex_button, self.open_button):
            buttons2.addWidget(b)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(title)
        layout.addWidget(self.counts)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addLayout(buttons2)
        self.refresh()

    # --- data ---------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read roots and files from the catalog, keeping expansion and selection.

        While the set of folders and files is unchanged (the common case
        during indexing) the rows are updated in place rather than rebuilt,
        which keeps this cheap enough to run on the GUI thread as files finish.
        """
        roots = self.catalog.roots()
        files = self.catalog.files()
        by_root: dict[int | None, list[FileRow]] = {}
        for f in files:
            by_root.setdefault(f.root_id, []).append(f)
        shape = (tuple(r.path for r in roots), tuple(f.path for f in files))
        if shape == getattr(self, "_shape", None):
            self.tree.setUpdatesEnabled(False)
            for root in roots:
                self._style_root(self._root_items[root.path], root, by_root.get(root.id, []))
            for f in files:
                self._style_file(self._file_items[f.path], f)
            self.tree.setUpdatesEnabled(True)
            self._after_refresh(roots)
            return
        expanded = {self.tree.topLevelItem(i).data(0, PATH_ROLE)
                    for i in range(self.tree.topLevelItemCount()) if self.tree.topLevelItem(i).isExpanded()}
        selected = self.selected_path()
        self.tree.setUpdatesEnabled(False)
        self.tree.clear()
        self._root_items: dict[str, QTreeWidgetItem] = {}
        self._file_items: dict[str, QTreeWidgetItem] = {}
        for root in roots:
            rfiles = by_root.get(root.id, [])
            item = QTreeWidgetItem([Path(root.path).name or root.path, "", ""])
            item.setData(0, PATH_ROLE, root.path)
            item.setData(0, KIND_ROLE, "root")
            self._style_root(item, root, rfiles)
            self._root_items[root.path] = item
            self.tree.addTopLevelItem(item)
            base = Path(root.path)
            for f in rfiles:
                self._add_file(item, f, base)
            item.setExpanded(root.path in expanded or len(roots) == 1)
        self._shape = shape
        self.tree.setUpdatesEnabled(True)
        self._after_refresh(roots, selected)

    def _style_root(self, item: QTreeWidgetItem, root: Root, rfiles: list[FileRow]) -> None:
        indexed = sum(f.status == "indexed" for f in rfiles)
        failed = sum(f.status == "failed" for f in rfiles)
        missing = not Path(root.path).exists()
        item.setText(1, "unavailable" if missing else f"{indexed}/{len(rfiles)}")
        item.setText(2, str(sum(f.chunks for f in rfiles)))
        tip = root.path + (f"\n{failed} failed" if failed else "")
        if missing:
            tip += "\nThis folder is missing or not mounted; its documents come back when it does."
            item.setForeground(1, QBrush(QColor(STATUS_COLOURS["unavailable"])))
        else:
            item.setData(1, Qt.ItemDataRole.ForegroundRole, None)
        item.setToolTip(0, tip)

    def _after_refresh(self, roots: list[Root], selected: str | None = None) -> None:
        counts = self.catalog.counts()
        parts = [f"{counts['indexed']} indexed"]
        for key in ("pending", "failed", "skipped", "unavailable"):
            if counts[key]:
                parts.append(f"{counts[key]} {STATUS_WORDS[key]}")
        self.counts.setText(" · ".join(parts) + f" · {self.catalog.indexed_chunk_count()} chunks")
        has_roots = bool(roots)
        self.tree.setVisible(has_roots)
        self.empty.setVisible(not has_roots)
        self.counts.setVisible(has_roots)
        self._apply_filter(self.filter.text())
        if selected:
            self.select_path(selected)
        self._update_buttons()
        self._show_details()

    def _add_file(self, parent: QTreeWidgetItem, f: FileRow, base: Path) -> None:
        try:
            name = str(Path(f.path).relative_to(base))
        except ValueError:
            name = Path(f.path).name
        item = QTreeWidgetItem([name or Path(f.path).name, "", ""])
        item.setData(0, PATH_ROLE, f.path)
        item.setData(0, KIND_ROLE, "file")
        self._style_file(item, f)
        self._file_items[f.path] = item
        parent.addChild(item)

    def _style_file(self, item: QTreeWidgetItem, f: FileRow) -> None:
        """Status, chunk count, colour and tooltips of one file's row."""
        status = "indexing" if f.path == self.indexing_path else f.status
        word = STATUS_WORDS.get(status, status)
        item.setText(1, status_label(status, f.reason) if status == "indexed" else word)
        item.setText(2, str(f.chunks or ""))
        tip = f.path
        if f.reason:
            tip += f"\n{STATUS_WORDS.get(status, status)}: {f.reason}"
        item.setToolTip(1, f.reason or "")
        item.setData(0, REASON_ROLE, f.reason)
        item.setToolTip(0, tip)
        if status in STATUS_COLOURS:
            item.setForeground(1, QBrush(QColor(STATUS_COLOURS[status])))
        else:
            item.setData(1, Qt.ItemDataRole.ForegroundRole, None)
        self._show_parts(item, f)

    def _show_parts(self, item: QTreeWidgetItem, f: FileRow) -> None:
        """An e-mail's attachments as rows under its message: each a document of its
        own, indexed or with the reason it is not. Their actions are the message's."""
        parts = self.catalog.parts(f.id) if f.status == "indexed" and f.kind in MAIL_KINDS else []
        shape = [(p.locator, p.reason) for p in parts]
        if (item.data(0, PARTS_ROLE) or []) == shape:
            return
        item.setData(0, PARTS_ROLE, shape)
        item.takeChildren()
        message = Path(f.path).name
        for part in parts:
            status = "indexed" if part.reason is None else "skipped"
            child = QTreeWidgetItem([part.name, "attachment" if part.reason is None else STATUS_WORDS[status], ""])
            child.setData(0, PATH_ROLE, f.path)
            child.setData(0, KIND_ROLE, "attachment")
            child.setData(0, REASON_ROLE, part.reason)
            pages = f", {part.pages} {page_word(part.name)}s" if part.pages else ""
            tip = f'Attached to "{part.message or message}" in {message}{pages}'
            if part.reason:
                tip += f"\nnot indexed: {part.reason}"
                child.setForeground(1, QBrush(QColor(STATUS_COLOURS[status])))
            child.setToolTip(0, tip)
            child.setToolTip(1, part.reason or "indexed as a document of its own")
            item.addChild(child)

    def set_indexing(self, path: str | None) -> None:
        """Mark the file being indexed now (shown as “indexing…”)."""
        if path == self.indexing_path:
            return
        before, self.indexing_path = self.indexing_path, path
        # Only the two rows concerned change; the periodic refresh does the rest.
        for changed in (before, path):
            item = getattr(self, "_file_items", {}).get(changed) if changed else None
            row = self.catalog.file(changed) if item is not None else None
            if item is not None and row is not None:
                self._style_file(item, row)

    # --- filter, selection, actions -------------------------------------

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            root = self.tree.topLevelItem(i)
            any_shown = False
            for j in range(root.childCount()):
                child = root.child(j)
                shown = not needle or needle in child.text(0).lower() or needle in child.text(1).lower()
                child.setHidden(not shown)
                any_shown = any_shown or shown
            root.setHidden(bool(needle) and not any_shown and needle not in root.text(0).lower())
            if needle and any_shown:
                root.setExpanded(True)

    def visible_files(self) -> list[tuple[str, str]]:
        """(name, status) of the file rows the filter leaves visible (for tests)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            root = self.tree.topLevelItem(i)
            for j in range(root.childCount()):
                child = root.child(j)
                if not child.isHidden() and not root.isHidden():
                    out.append((child.text(0), child.text(1)))
        return out

    def selected_path(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, PATH_ROLE) if items else None

    def selected_kind(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, KIND_ROLE) if items else None

    def select_path(self, path: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            root = self.tree.topLevelItem(i)
            if root.data(0, PATH_ROLE) == path:
                self.tree.setCurrentItem(root)
                return
            for j in range(root.childCount()):
                if root.child(j).data(0, PATH_ROLE) == path:
                    self.tree.setCurrentItem(root.child(j))
                    return

    def _show_details(self) -> None:
        items = self.tree.selectedItems()
        reason = items[0].data(0, REASON_ROLE) if items else None
        if reason:
            self.details.setText(f"<b>{html.escape(items[0].text(0))}</b> — {html.escape(items[0].text(1))}: "
                                 f"{html.escape(reason)}")
        else:
            self.details.clear()
        self.details.setVisible(bool(reason))

    def reason_of(self, name: str) -> str | None:
        """The failure or skip reason shown for a file row (for tests)."""
        for i in range(self.tree.topLevelItemCount()):
            root = self.tree.topLevelItem(i)
            for j in range(root.childCount()):
                if root.child(j).text(0) == name:
                    return root.child(j).data(0, REASON_ROLE)
        return None

    def _update_buttons(self) -> None:
        kind = self.selected_kind()
        self.remove_button.setEnabled(kind == "root")
        self.reindex_button.setEnabled(kind is not None)
        self.open_button.setEnabled(kind is not None)

    def _emit_selected(self, signal: Signal, roots_only: bool = False) -> None:  # type: ignore[type-arg]
        path = self.selected_path()
        if path and (not roots_only or self.selected_kind() == "root"):
            signal.emit(path)

    def _open_selected_folder(self) -> None:
        path = self.selected_path()
        if path:
            p = Path(path)
            self.open_folder_requested.emit(str(p if p.is_dir() else p.parent))

    def _menu(self, pos) -> None:  # noqa: ANN001
        item = self.tree.itemAt(pos)
        if item is None:
            return
        path = item.data(0, PATH_ROLE)
        kind = item.data(0, KIND_ROLE)
        menu = QMenu(self)
        ask = QAction("Ask about this " + ("folder" if kind == "root" and Path(path).is_dir() else "file"), menu)
        ask.triggered.connect(lambda: self.ask_about_requested.emit(path))
        menu.addAction(ask)
        reindex = QAction("Re-index", menu)
        reindex.triggered.connect(lambda: self.reindex_requested.emit(path))
        menu.addAction(reindex)
        folder = QAction("Open containing folder", menu)
        p = Path(path)
        folder.triggered.connect(lambda: self.open_folder_requested.emit(str(p if p.is_dir() else p.parent)))
        menu.addAction(folder)
        if kind == "root":
            menu.addSeparator()
            remove = QAction("Remove from library", menu)
            remove.triggered.connect(lambda: self.remove_requested.emit(path))
            menu.addAction(remove)
        menu.exec(self.tree.viewport().mapToGlobal(pos))
