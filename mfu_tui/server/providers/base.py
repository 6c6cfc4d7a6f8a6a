"""The one small interface every model provider implements."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import AsyncGenerator
from typing import Literal

from mfu_tui.protocol import ChatParams, ModelInfo, Usage
from mfu_tui.server.model_input import ModelTurn

#: What went wrong upstream, for the metrics (``mfu_upstream_errors{kind}``): the model server could not be
#: reached or timed out, answered an HTTP error, ended the stream early, sent what we cannot read, reported an
#: error inside the stream, or something else.
UpstreamErrorKind = Literal["unreachable", "timeout", "http_error", "truncated", "unreadable", "model_error", "other"]


class ProviderError(Exception):
    """The model failed; the message is shown to the user, so it holds no secrets.

    Args:
        message: What failed, in plain words.
        kind: Which kind of failure it was.
    """

    def __init__(self, message: str, kind: UpstreamErrorKind = "other") -> None:
        super().__init__(message)
        self.kind: UpstreamErrorKind = kind


@dataclasses.dataclass(frozen=True)
class Finish:
    """Last item of a stream when the provider says why it stopped (``stop``, ``length``...)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Reasoning:
    """A piece of what the model thought before answering: streamed and stored apart, never part of the answer."""

    text: str


#: What a provider's stream yields: pieces of the answer (``str``) and of its reasoning, usage, the finish.
StreamItem = str | Reasoning | Usage | Finish


class Provider(abc.ABC):
    """Produces answers as a stream of text pieces."""

    #: Short name shown in ``list_models`` (``demo``, ``openai``).
    name: str

    #: The model server's URL, named in the log; ``None`` when the answers are made in this process.
    upstream: str | None = None
    #: The model answering a message that names none, when one is set up; else the default of ``models``.
    default_model: str | None = None

    @abc.abstractmethod
    async def models(self) -> list[ModelInfo]:
        """The models this provider can use, the default one flagged.

        Raises:
            ProviderError: the list cannot be fetched.
        """

    @abc.abstractmethod
    def stream(self, model_id: str, history: list[ModelTurn], params: ChatParams) -> AsyncGenerator[StreamItem, None]:
        """Answer the conversation ``history`` (its last turn is the user's) with the model ``model_id``.

        ``model_id`` is the one the message named, else the default of the
        list ``models`` gave (``ModelCatalog.model_for``).

        ``history`` starts with the chat's system prompt (role ``system``) if it
        has one; ``params`` are the chat's sampling parameters, ``None`` in each
        meaning the model's default. A provider with no use for them ignores them.

        Yields text pieces, then optionally one ``Finish``; ``Reasoning`` pieces
        come among them (mostly first) when the model reasons; a ``Usage`` may come
        anywhere among them when the model server reports the tokens it
        counted (a later one replaces an earlier one). Closing the
        iterator (``aclose``, or cancelling the task iterating it) must stop
        the work upstream: that is what ``cancel`` relies on.

        Raises:
            ProviderError: the model failed, possibly after some pieces.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; called once when the server stops."""
