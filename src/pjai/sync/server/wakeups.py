"""Wake-ups from other server processes on one PostgreSQL database (LISTEN/NOTIFY).

Each append sends ``NOTIFY pjai_sync, '<instance>\t<store id>'``
(:mod:`pjai.sync.server.sqllog`); every process listens and refreshes the store named,
unless the append was its own. A notification is a hint, which can be lost: the hub's
timer refreshes anyway.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from sqlalchemy.engine import make_url

from pjai.sync.server.hub import Hub
from pjai.sync.server.sqllog import NOTIFY_CHANNEL

__all__ = ["listen_for_wakeups"]

log = logging.getLogger(__name__)


async def listen_for_wakeups(url: str, hub: Hub) -> None:
    """LISTEN for appends made by other processes and refresh those stores."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                delay = 0.5
                for store_id in list(hub.feeds):
                    hub.wake(store_id)  # what was missed while not listening
                own = getattr(hub.log, "instance", None)
                async for note in conn.notifies():
                    origin, tab, store_id = note.payload.partition("\t")
                    if not tab:  # a bare store id
                        origin, store_id = "", origin
                    if origin != own:  # this process knows its own appends already
                        hub.wake(store_id)
        except psycopg.Error as exc:
            log.warning("LISTEN %s failed (%s); polling until it is back", NOTIFY_CHANNEL, exc)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
