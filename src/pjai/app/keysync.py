"""The keys channel from a device: sharing its key ring with the sync server, and a new
device joining an encrypted store with its passphrase (docs/security.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec

from pjai.app.datadir import DataDir
from pjai.app.erasing import owe_rewrite
from pjai.errors import ConfigError, KeyRingError, PjaiError
from pjai.security import KeyRing
from pjai.security.sharing import Item, absorb, deletion_proof, export_items, foreign, join
from pjai.sync.clientside import asked_wait, held_for
from pjai.sync.server.keys import MAX_KEYS

__all__ = ["KeySync", "KeysBusy", "KeysRefused", "join_store", "keys_url", "sync_keys"]

log = logging.getLogger(__name__)

_TIMEOUT_S = 30.0

JOIN_TRIES = 3
"""How many times :func:`join_store` asks a server that refuses as too soon (429), each
after the wait it asked for (at most :data:`~pjai.sync.clientside.MAX_HOLD_S`)."""

T = TypeVar("T")

MAX_LISTING_BYTES = 64 * 1024 * 1024
"""The largest list of keys a device reads from a server (one store's keys are capped
far below, :data:`pjai.sync.server.keys.MAX_STORE_KEY_BYTES`)."""

MAX_ANSWER_BYTES = 64 * 1024
"""The largest answer a device reads to a keys change (the server's are a few dozen
bytes: a count, or an error's message)."""


class KeysRefused(ConfigError):
    """The sync server refused a keys request: its HTTP ``status`` and what its answer
    said (``said``: its JSON object, or empty)."""

    def __init__(self, message: str, *, status: int, said: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.said = status, said or {}


class KeysBusy(KeysRefused):
    """The sync server refused a keys request as too soon (429). ``retry_after``: the
    seconds it asked the device to wait (its body's ``retry_after``, else its
    ``Retry-After`` header), or None."""

    def __init__(
        self, message: str, *, said: dict[str, Any] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=429, said=said)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class KeySync:
    """What one exchange with the server did."""

    pushed: int
    """Keys this device put on the server."""
    came: int
    """Keys other devices had put that this device took."""
    erased_here: list[str]
    """Personas whose keys another device erased, erased here too."""
    deleted_there: int
    """Keys deleted on the server: data keys this device erased, passphrase wraps it
    replaced."""
    refused: int = 0
    """Shared keys or deletions not taken (unreadable, altered, unproven)."""
    kept_there: int = 0
    """Deletions the server refused: their proof is not the one the key of that id was
    put with (someone else put a key of that id first)."""
    foreign: int = 0
    """Keys held here that the server holds in a wrap no device of the store made
    (someone else put a key of that id first): devices that lack them cannot read the
    events sealed with them (said in the log)."""


def keys_url(url: str) -> str:
    """The HTTP address of a sync server's keys channel, from its URL (``http(s)`` or
    ``ws(s)``, as ``pjai sync connect`` takes it)."""
    parts = urlsplit(url)
    schemes = {"http": "http", "ws": "http", "https": "https", "wss": "https"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{url!r} is not a sync server URL like http://host:8765")
    return urlunsplit((schemes[parts.scheme], parts.netloc, "/keys", "", ""))


def sync_keys(
    ring: KeyRing,
    url: str,
    *,
    token: str,
    store_id: str,
    directory: Path,
    learnt: Callable[[frozenset[str]], object] | None = None,
    checked: set[str] | None = None,
) -> KeySync:
    """Exchange keys with the server: take the ones other devices shared, destroy the
    ones they erased, share this ring's, and delete on the server the ones erased
    here and the passphrase wraps replaced here. ``directory`` is the ring's data
    directory: before a persona's keys are destroyed, it is marked there as owing a
    rewrite (:func:`~pjai.app.erasing.owe_rewrite`), so that its rows left in freed
    pages are rewritten away even if this process stops first. Raises
    :class:`~pjai.errors.ConfigError` saying what the server answered.

    ``learnt`` is told, as the exchange goes, the ids the server holds or lists as
    deleted: those it listed, then those put or deleted here as each request is
    answered (so a later request that fails takes nothing back).

    The server's copy of each key held here is checked to open with the store key
    (:func:`~pjai.security.sharing.foreign`), but those in ``checked`` (the ids checked
    before, which the exchange adds to): a copy that does not was put by someone
    outside the store, and devices lacking the key are given it instead (said in the
    log, with its mend)."""
    base = keys_url(url)
    try:
        exchange = partial(_exchange, learnt=learnt or _ignored, checked=checked)
        return exchange(ring, base, token, store_id, directory)
    except httpx.HTTPError as exc:
        raise _reach(base) from exc


def _ignored(_: frozenset[str]) -> None:
    pass


def _exchange(
    ring: KeyRing,
    base: str,
    token: str,
    store_id: str,
    directory: Path,
    *,
    learnt: Callable[[frozenset[str]], object],
    checked: set[str] | None,
) -> KeySync:
    with httpx.Client(timeout=_TIMEOUT_S, headers=_auth(token)) as http:
        items, deleted = _listing(http, base, store_id)
        deleted_ids = {str(d.get("id")) for d in deleted}
        on_server = {str(i.get("id")) for i in items} | deleted_ids
        learnt(frozenset(on_server))
        checking = ring.key_ids() - (checked or set())
        taken = foreign(ring, items, checking)
        _say_foreign(taken)
        if checked is not None:  # those listed: one not yet there is checked once it is
            checked |= checking & {str(i.get("id")) for i in items}
        done = absorb(ring, items, deleted, before_erasing=partial(owe_rewrite, directory))
        mine = [i for i in export_items(ring) if i["id"] not in on_server]
        # As many requests as the server's limit per request asks: a ring with more new
        # keys than one takes (personas made offline) shares them all.
        for start in range(0, len(mine), MAX_KEYS):
            items_out = mine[start : start + MAX_KEYS]
            changing = {"store_id": store_id, "items": items_out}
            _ask(http, "POST", base, "sharing the keys", MAX_ANSWER_BYTES, json=changing)
            on_server |= {item["id"] for item in items_out}
            learnt(frozenset(on_server))
        # Erased data keys, and passphrase wraps replaced here (the old passphrase must
        # not join a device any more).
        retired = [i for i in ring.retired() if i in on_server]
        gone = [
            {"id": key_id, "proof": deletion_proof(ring, key_id)}
            for key_id in [k.key_id for k in ring.erased()] + retired
            if key_id not in deleted_ids
        ]
        kept: list[str] = []
        for start in range(0, len(gone), MAX_KEYS):
            batch = gone[start : start + MAX_KEYS]
            kept += _delete(http, base, {"store_id": store_id, "deleted": batch})
            on_server |= {item["id"] for item in batch}  # deleted, or someone's key there
            learnt(frozenset(on_server))
    if kept:
        log.warning(
            "the sync server keeps %d key(s) this device erased, put there under the same "
            "id with another deletion check (not by a device of this store): %s",
            len(kept),
            ", ".join(kept[:10]),
        )
    return KeySync(
        len(mine),
        done.came,
        done.erased,
        len(gone) - len(kept),
        done.refused,
        len(kept),
        len(taken),
    )


def _say_foreign(taken: dict[str, str]) -> None:
    """Say in the log which keys held here the server holds in a foreign wrap."""
    if taken:
        log.error(
            "the sync server holds %d key(s) of this device in a wrap no device of the store "
            "made (put first by someone else under the same id), so devices that lack them "
            "cannot read the events sealed with them; its operator can delete those rows of "
            "pjai_sync_keys, and the next exchange puts this device's own: %s",
            len(taken),
            ", ".join(f"{key_id} ({scope})" for key_id, scope in sorted(taken.items())[:10]),
        )


def _delete(http: httpx.Client, base: str, changing: dict[str, Any]) -> list[str]:
    """Delete keys on the server; the ids it refused to delete (403 naming them: a key of
    that id was put with another check), which the next exchange asks again."""
    try:
        _ask(
            http, "POST", f"{base}/delete", "deleting erased keys", MAX_ANSWER_BYTES, json=changing
        )
    except KeysRefused as exc:
        refused = exc.said.get("refused")
        if exc.status != 403 or not isinstance(refused, list):
            raise
        asked = {str(item["id"]) for item in changing["deleted"]}
        return sorted(asked & set(map(str, refused)))
    return []


def join_store(
    data_dir: DataDir,
    url: str,
    *,
    token: str,
    store_id: str,
    passphrase: str,
    recovery_code: str | None = None,
) -> KeySync:
    """Make this new device's key ring from the store's shared keys, opened by the
    store's ``passphrase``, or by a one-time ``recovery_code`` (then used up on the
    server at once, and ``passphrase`` is this device's new one); then its data
    directory opens (and syncs) as the others."""
    if data_dir.encrypted:
        raise KeyRingError(f"{data_dir.path} has a key ring already")
    base = keys_url(url)
    try:
        with httpx.Client(timeout=_TIMEOUT_S, headers=_auth(token)) as http:
            items, _ = _patiently(partial(_listing, http, base, store_id))
    except httpx.HTTPError as exc:
        raise _reach(base) from exc
    if not any(i.get("kind") == "wrap" for i in items):
        raise KeyRingError(f"the store {store_id!r} shares no key ring on {base}")
    data_dir.path.mkdir(parents=True, exist_ok=True)
    with join(data_dir.keys_path, items, passphrase, recovery_code=recovery_code) as ring:
        came = len(ring.scopes())
        if recovery_code is not None:  # used up: deleted on the server now
            try:
                _patiently(
                    partial(
                        sync_keys,
                        ring,
                        url,
                        token=token,
                        store_id=store_id,
                        directory=data_dir.path,
                    )
                )
            except PjaiError as exc:
                raise KeyRingError(
                    f"joined: {data_dir.path} holds the store's key ring, but the recovery "
                    f"code is not yet used up on the server ({exc}); finish it with "
                    f"`pjai security share {url} --store-id {store_id} --token ...`"
                ) from exc
    return KeySync(0, came, [], 0)


def _patiently(call: Callable[[], T]) -> T:
    """``call()``; asked again after the wait a busy server asked for (429,
    :class:`KeysBusy`; 1 s if it named none), :data:`JOIN_TRIES` times in all."""
    for _ in range(JOIN_TRIES - 1):
        try:
            return call()
        except KeysBusy as exc:
            time.sleep(held_for(exc.retry_after) or 1.0)
    return call()


def _listing(http: httpx.Client, base: str, store_id: str) -> tuple[list[Item], list[Item]]:
    """The store's shared keys and deletions as the server lists them, checked: an
    answer of another shape, or larger than :data:`MAX_LISTING_BYTES`, is a
    :class:`~pjai.errors.ConfigError` (a server is not trusted to answer well)."""
    doing = "reading the keys"
    body = _ask(http, "GET", base, doing, MAX_LISTING_BYTES, params={"store_id": store_id})
    try:
        listing = msgspec.json.decode(body, type=_Listing)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise ConfigError(
            f"{doing}: the sync server's answer is not a list of keys ({exc})"
        ) from exc
    return listing.items, listing.deleted


class _Listing(msgspec.Struct):
    items: list[Item]
    deleted: list[Item]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _reach(base: str) -> ConfigError:
    return ConfigError(f"cannot reach the sync server's keys channel at {base}")


def _ask(
    http: httpx.Client, method: str, url: str, doing: str, limit: int, **request: Any
) -> bytes:
    """The body of the server's 200 answer to the request, at most ``limit`` bytes as
    sent; a :class:`~pjai.errors.ConfigError` for a refusal, a longer answer, or a
    compressed one. A server is not trusted: a few kilobytes of gzip would unpack into
    gigabytes, so the device asks for its answers plain and takes no other."""
    asked = http.stream(method, url, headers={"Accept-Encoding": "identity"}, **request)
    with asked as response:
        coding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if coding not in ("", "identity"):
            raise ConfigError(f"{doing}: the sync server sent its answer as {coding}, not plain")
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > limit:
                raise ConfigError(f"{doing}: the sync server's answer passed {limit:,} bytes")
    if response.status_code != 200:
        raise _refused(doing, response, body.decode(errors="replace"))
    return bytes(body)


def _refused(doing: str, response: httpx.Response, text: str) -> KeysRefused:
    try:
        said = msgspec.json.decode(text, type=dict[str, Any])
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        said = {}
    message = f"{doing}: the sync server answered {response.status_code}: "
    message += str(said.get("message", text))[:500]
    if response.status_code != 429:
        return KeysRefused(message, status=response.status_code, said=said)
    wait = asked_wait(text.encode(), response.headers.get("Retry-After"))
    return KeysBusy(message, said=said, retry_after=wait)
