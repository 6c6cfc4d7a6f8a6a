"""Search: query time over ``--messages`` messages in SQLite, against a bare FTS5 query.

A SQLite store is filled with ``--messages`` messages (``--words`` words
each, drawn from a vocabulary of ``--vocabulary`` words with a Zipf-like
skew, in chats of 100 messages, 10% of them another user's) with the index
dropped, as a database from before search was; opening the store then runs
the migration that indexes them (timed). One message holds a word found in
no other. Each query is then timed as ``SqliteStore.search`` (a thread hop,
the cursor, the join to the user's messages and chats, snippets and
highlights) and as the floor: the bare FTS5 query on the same file with
``sqlite3`` in this thread (``SELECT rowid ... MATCH ... ORDER BY rowid DESC
LIMIT``), both the median of ``--runs``. The ratio is ours over the floor.

    python -m bench.search --messages 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import load_average, machine
from mfu_tui.protocol import search_words
from mfu_tui.server.store import SqliteStore
from mfu_tui.server.store.search import fts5_query

USER, OTHER = "alice", "bob"
RARE = "xylophonist"
#: ``(name, query)``: what is timed.
QUERIES = [
    ("one message in all", RARE),
    ("common word, first page", "w1"),
    ("two words", "w3 w7"),
    ("as typed: a 2-letter prefix", "w2"),
    ("no match", "nowhere"),
]
PAGE = 20


def fill(path: Path, messages: int, words: int, vocabulary: int, seed: int) -> None:
    """Messages written straight into a store's file with its search index dropped (a pre-search database)."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(vocabulary)]
    names = [f"w{rank}" for rank in range(vocabulary)]
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TRIGGER message_search_insert; DROP TRIGGER message_search_delete;"
        " DROP TRIGGER message_search_update; DROP TABLE message_search; PRAGMA user_version = 2; BEGIN;"
    )
    now = time.time()
    needle = rng.randrange(messages)
    for n in range(messages):
        chat = n // 100
        user = OTHER if chat % 10 == 9 else USER
        if n % 100 == 0:
            db.execute(
                "INSERT INTO chats (id, owner, title, created_at, updated_at, message_count)"
                " VALUES (?, ?, ?, ?, ?, 100)",
                (f"c{chat}", user, f"chat {chat}", now, now),
            )
        text = " ".join(rng.choices(names, weights, k=words))
        if n == needle:
            text += f" {RARE}"
        db.execute(
            "INSERT INTO messages (id, chat_id, owner, role, content, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'complete', ?)",
            (f"m{n}", f"c{chat}", user if n != needle else USER, ("user", "assistant")[n % 2], text, now + n),
        )
    if needle // 100 % 10 == 9:  # the needle's chat must be alice's
        db.execute("UPDATE chats SET owner = ? WHERE id = ?", (USER, f"c{needle // 100}"))
        db.execute("UPDATE messages SET owner = ? WHERE chat_id = ?", (USER, f"c{needle // 100}"))
    db.execute("COMMIT")
    db.close()


def floor_seconds(path: Path, words: list[str], runs: int) -> tuple[float, int]:
    """Median seconds of the bare FTS5 query, and how many rows it gave."""
    db = sqlite3.connect(path)
    match = fts5_query(words)
    times, rows = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        rows = len(
            db.execute(
                "SELECT rowid FROM message_search WHERE message_search MATCH ? ORDER BY rowid DESC LIMIT ?",
                (match, PAGE + 1),
            ).fetchall()
        )
        times.append(time.perf_counter() - start)
    db.close()
    return statistics.median(times), rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "search.sqlite3"
        store = SqliteStore(path)
        await store.open()
        await store.close()
        start = time.perf_counter()
        fill(path, args.messages, args.words, args.vocabulary, args.seed)
        filled = time.perf_counter() - start
        store = SqliteStore(path)
        start = time.perf_counter()
        await store.open()  # migration 3 indexes every message
        migrated = time.perf_counter() - start
        figures = []
        try:
            for name, query in QUERIES:
                words = search_words(query)
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    results = await store.search(USER, words, PAGE, None)
                    times.append(time.perf_counter() - start)
                ours = statistics.median(times)
                floor, floor_rows = floor_seconds(path, words, args.runs)
                figures.append(
                    {
                        "query": name,
                        "text": query,
                        "hits": len(results.hits),
                        "floor_rows": floor_rows,
                        "ours_ms": round(ours * 1000, 3),
                        "floor_ms": round(floor * 1000, 3),
                        "ratio": round(ours / floor, 2),
                        "load_1min": load_average(),
                    }
                )
            rare = await store.search(USER, [RARE], PAGE, None)
        finally:
            await store.close()
        return {
            "machine": machine(),
            "messages": args.messages,
            "words_each": args.words,
            "fill_s": round(filled, 2),
            "migration_index_s": round(migrated, 2),
            "database_mib": round(path.stat().st_size / 2**20, 1),
            "rare_word_found": [hit.snippet for hit in rare.hits],
            "queries": figures,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the store (default 100000)")
    parser.add_argument("--words", type=int, default=40, help="words of each message (default 40)")
    parser.add_argument("--vocabulary", type=int, default=5000, help="distinct words (default 5000)")
    parser.add_argument("--runs", type=int, default=30, help="runs of each query, median taken (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the text (default 1)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
