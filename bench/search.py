"""Search: query time over ``--messages`` messages in SQLite, against a bare FTS5 query.

A SQLite store is filled with ``--messages`` messages (``--words`` words
each, drawn from a vocabulary of ``--vocabulary`` words with a Zipf-like
skew, in chats of 100 messages, 10% of them another user's) with the index
dropped, as a database from before search was; the store's migration step
that indexes them then runs (timed). One message holds a word found in no
other (``tests/support/search_store.py`` fills the store, for the end-to-end
test too). Each query is then timed as ``SqliteStore.search`` (a thread
hop, the cursor, the join to the user's messages and chats, snippets and
highlights) and as the floor: the bare FTS5 query on the same file with
``sqlite3`` in this thread (``SELECT rowid ... MATCH ... ORDER BY rowid DESC
LIMIT``), both the median of ``--runs``. The ratio is ours over the floor.

    python -m bench.search --messages 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from tests.support.search_store import RARE, USER, fill, index

#: ``(name, query)``: what is timed.
QUERIES = [
    ("one message in all", RARE),
    ("common word, first page", "w1"),
    ("two words", "w3 w7"),
    ("as typed: a 2-letter prefix", "w2"),
    ("no match", "nowhere"),
]
PAGE = 20


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
        start = time.perf_counter()
        fill(path, args.messages, words=args.words, vocabulary=args.vocabulary, seed=args.seed)
        filled = time.perf_counter() - start
        start = time.perf_counter()
        index(path)  # migration 4 indexes every message
        migrated = time.perf_counter() - start
        store = SqliteStore(path)
        await store.open()
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
