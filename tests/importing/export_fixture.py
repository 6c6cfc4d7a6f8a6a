"""A small ChatGPT export written by hand, shaped like the real ``conversations.json``.

Four conversations, as ChatGPT writes them (fields the importer does not read
included): a plain one with a hidden system message at the root; one whose
first answer was regenerated and whose question was then edited, so only the
path up from ``current_node`` is what the user saw; one with an image and a
code-interpreter run; and one that never got a message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def node(node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def message(
    node_id: str,
    role: str,
    parts: list[Any],
    at: float | None,
    *,
    content_type: str = "text",
    hidden: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"is_visually_hidden_from_conversation": True} if hidden else {}
    if role == "assistant":
        metadata.update({"model_slug": "gpt-4", "finish_details": {"type": "stop"}})
    return {
        "id": node_id,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at,
        "update_time": None,
        "content": {"content_type": content_type, "parts": parts},
        "status": "finished_successfully",
        "end_turn": role == "assistant" or None,
        "weight": 1.0,
        "metadata": metadata,
        "recipient": "all",
    }


def conversation(conv_id: str, title: str, mapping: list[dict[str, Any]], current: str, at: float) -> dict[str, Any]:
    return {
        "title": title,
        "create_time": at,
        "update_time": at + 600,
        "mapping": {entry["id"]: entry for entry in mapping},
        "moderation_results": [],
        "current_node": current,
        "plugin_ids": None,
        "conversation_id": conv_id,
        "conversation_template_id": None,
        "gizmo_id": None,
        "is_archived": False,
        "safe_urls": [],
        "default_model_slug": "gpt-4",
        "id": conv_id,
    }


PLAIN = conversation(
    "c0a1-plain",
    "Sourdough starter",
    [
        node("root", None, ["sys"], None),
        node("sys", "root", ["u1"], message("sys", "system", [""], None, hidden=True)),
        node("u1", "sys", ["a1"], message("u1", "user", ["How do I keep a sourdough starter alive?"], T0 + 10)),
        node("a1", "u1", ["u2"], message("a1", "assistant", ["Feed it flour and water once a day."], T0 + 20)),
        node("u2", "a1", ["a2"], message("u2", "user", ["And in the fridge?"], T0 + 30)),
        node("a2", "u2", [], message("a2", "assistant", ["Once a week is enough."], T0 + 40)),
    ],
    "a2",
    T0,
)

# The first question was answered twice (a1 regenerated as a1b), then edited (u1 -> u1b):
# what the user saw last is root, u1b, a1c.
BRANCHED = conversation(
    "c0a2-branched",
    "Rust lifetimes",
    [
        node("root", None, ["u1", "u1b"], None),
        node("u1", "root", ["a1", "a1b"], message("u1", "user", ["What is a lifetime?"], T0 + 100)),
        node("a1", "u1", [], message("a1", "assistant", ["First answer, regenerated away."], T0 + 110)),
        node("a1b", "u1", [], message("a1b", "assistant", ["Second answer, then the question was edited."], T0 + 120)),
        node("u1b", "root", ["a1c"], message("u1b", "user", ["What is a lifetime in Rust?"], T0 + 130)),
        node("a1c", "u1b", [], message("a1c", "assistant", ["How long a reference is valid."], T0 + 140)),
    ],
    "a1c",
    T0 + 100,
)

IMAGE = {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-9x", "width": 512, "height": 512}
WITH_TOOLS = conversation(
    "c0a3-tools",
    "",  # ChatGPT left it untitled: the first words of the first message stand in
    [
        node("root", None, ["u1"], None),
        node(
            "u1",
            "root",
            ["code"],
            message("u1", "user", [IMAGE, "What is in this chart?"], T0 + 200, content_type="multimodal_text"),
        ),
        node("code", "u1", ["out"], message("code", "assistant", ["plt.show()"], T0 + 210, content_type="code")),
        node("out", "code", ["a1"], message("out", "tool", ["<figure>"], T0 + 220, content_type="execution_output")),
        node("a1", "out", [], message("a1", "assistant", ["Sales by month, rising."], None)),
    ],
    "a1",
    T0 + 200,
)

EMPTY = conversation("c0a4-empty", "New chat", [node("root", None, [], None)], "root", T0 + 300)

CONVERSATIONS = [PLAIN, BRANCHED, WITH_TOOLS, EMPTY]


def broken_chain() -> dict[str, Any]:
    """A conversation whose current message names a parent that is not in it."""
    broken = json.loads(json.dumps(PLAIN))
    broken["id"] = broken["conversation_id"] = "c0a5-broken"
    broken["title"] = "Broken"
    broken["mapping"]["u2"]["parent"] = "gone"
    return broken


def write_export(path: Path, conversations: list[dict[str, Any]] = CONVERSATIONS) -> Path:
    path.write_text(json.dumps(conversations))
    return path
