"""``Flag``: what ``asyncio.Event`` does for the connections, without its deque."""

from __future__ import annotations

import asyncio

from mfu_tui.server.flag import Flag


async def test_set_wakes_every_waiter_and_later_waits_return_at_once():
    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # let them start waiting
    assert not flag.is_set() and not any(waiter.done() for waiter in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag.is_set() and await flag.wait()


async def test_clear_makes_wait_block_again_and_a_cancelled_waiter_is_forgotten():
    flag = Flag()
    flag.set()
    flag.clear()
    cancelled = asyncio.ensure_future(flag.wait())
    staying = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert not staying.done()
    flag.set()
    assert await staying and cancelled.cancelled()
