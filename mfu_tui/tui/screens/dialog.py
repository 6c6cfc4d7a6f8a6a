"""The base of the app's dialogs: a modal screen that answers once."""

from __future__ import annotations

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen, ScreenResultType


class Dialog(ModalScreen[ScreenResultType]):
    """A modal screen whose first answer is its only one.

    Keys that arrive together (a frozen app, a slow SSH link) are all queued
    for the dialog before the first of them closes it: `enter`, `enter` in
    one read reached a closed dialog's handler, whose second `dismiss`
    popped the screen under it and stopped the app. Once it has answered, a
    dialog ignores what is still queued for it.

    Its focus is named by ``AUTO_FOCUS``, which Textual sets as the dialog
    is composed: the keys read with the one that opened it go to that widget
    (``ChatApp.on_event`` waits for the mount). ``focus()`` in ``on_mount``
    would set it only after them.
    """

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        #: Set by the first ``dismiss``: the answer is given, the screen is going.
        self.answered = False

    def dismiss(self, result: ScreenResultType | None = None) -> AwaitComplete:
        """Close the dialog with ``result``, once; later calls do nothing."""
        if self.answered:
            return AwaitComplete()
        self.answered = True
        return super().dismiss(result)
