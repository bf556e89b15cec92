"""An erased persona's id given again by a device that had not heard of the erasure:
the new persona is valid (its creation comes after the erasure in the server's order),
and the erasure destroys the erased persona's data keys only, never the new one's, on
every device and in every order in which the erasure, the new persona and their keys
arrive. Three devices share an encrypted store through a running sync server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import apsw
import msgspec
import pytest

from pjai.app import DataDir, Memories, Personas, connect, erase_persona, init_security, tending
from pjai.app.erasedkeys import destroy_replaced_keys, replaced_keys_held
from pjai.app.keysync import KeySync, join_store, sync_keys
from pjai.app.sync import SyncOutcome
from pjai.bench.syncserver import servers
from pjai.errors import ConfigError, KeyRingError
from pjai.schema import SCHEMA, EventRecord, MemoryFilter, PersonaErased
from pjai.security import FieldCodec, KeyRing
from pjai.security.sharing import absorb, deletion_proof, export_items, join
from pjai.store import Store
from tests.helpers import memory, persona
from tests.security.test_erasure import (
    MARKER,
    ada_beside_grace,
    encrypted,
    files_holding,
    finished_on_opening,
)
from tests.security.test_keys import FAST, PASSPHRASE
from tests.security.test_keysync import device, new_token, server_database

OLD = "old-ada-words"
NEW = "new-ada-words"


@dataclass(frozen=True)
class Devices:
    """A laptop, a desk and a phone of one store, and the server's ways in."""

    laptop: DataDir
    desk: DataDir
    phone: DataDir
    sync_once: Callable[[DataDir], SyncOutcome]
    """Sync a device until level with the server (keys, then events)."""
    keys_only: Callable[[DataDir], KeySync]
    """Exchange a device's keys and nothing else (a sync stopped after its exchange)."""

    def everyone_syncs(self) -> None:
        for each in (self.phone, self.laptop, self.desk, self.phone):
            assert self.sync_once(each).level


@contextmanager
def three_devices(
    tmp_path: Path, desk_environ: Mapping[str, str] | None = None
) -> Iterator[Devices]:
    """Three devices of one encrypted store, each synced once (Grace on the laptop);
    ``desk_environ``: the desk's settings beside the others' (its SQL primary)."""
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk, phone = (device(tmp_path / n) for n in ("laptop", "desk", "phone"))
    desk = DataDir(desk.path, environ={**(desk.environ or {}), **(desk_environ or {})})
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        Personas(manager).create("Grace")
    with servers(db_url, server_dir, 1) as (server,):

        def sync_once(one: DataDir) -> SyncOutcome:
            return connect(one, server.url, token=token, store_id="shared", once=True, timeout=60)

        def keys_only(one: DataDir) -> KeySync:
            with one.key_ring() as ring:
                return sync_keys(
                    ring, server.url, token=token, store_id="shared", directory=one.path
                )

        assert sync_once(laptop).level
        for other in (desk, phone):
            join_store(other, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
            assert sync_once(other).level
        yield Devices(laptop, desk, phone, sync_once, keys_only)


def old_ada(data: DataDir) -> None:
    """Ada, made on ``data`` with OLD in her text."""
    with data.open() as manager:
        made = Personas(manager).create("Ada", persona_id="ada", description=OLD)
        Memories(manager).add(made.id, f"{OLD} memory")


def old_ada_on_the_server(devices: Devices) -> set[str]:
    """The old Ada, made on the laptop and synced to the server; her keys."""
    old_ada(devices.laptop)
    assert devices.sync_once(devices.laptop).level
    return ada_keys(devices.laptop)


def erase_ada(data: DataDir) -> None:
    with data.open() as manager:
        erase_persona(data, manager, "ada")


def new_ada(data: DataDir) -> None:
    """Ada made anew on ``data`` with NEW in her text, by a person who gives the id."""
    with data.open() as manager:
        made = Personas(manager).create("Ada", persona_id="ada", description=NEW)
        Memories(manager).add(made.id, f"{NEW} memory")


def ada_keys(data: DataDir) -> set[str]:
    """The ids of the data keys ``data``'s ring holds of Ada."""
    with data.key_ring() as ring:
        return {i["id"] for i in export_items(ring) if i["kind"] == "data" and i["scope"] == "ada"}


def reopened(data: DataDir) -> None:
    """Open ``data`` as the next process would: it finishes the erasures it owes."""
    with DataDir(data.path, environ=data.environ).open():
        pass


def each_reads_the_new_ada(devices: Devices, old_keys: set[str]) -> None:
    """Every device holds the new Ada, readable, and none holds a key of the old one or
    a file with her text."""
    for each in (devices.laptop, devices.desk, devices.phone):
        with DataDir(each.path, environ=each.environ).open() as manager:
            (ada,) = [p for p in Personas(manager).list() if p.id == "ada"]
            assert ada.description == NEW, each.path.name
            listed = Memories(manager).list(MemoryFilter(persona_id="ada"))
            assert [m.content for m in listed] == [f"{NEW} memory"]
            assert manager.verify().equal
        assert ada_keys(each), each.path.name
        assert not ada_keys(each) & old_keys, each.path.name
        assert files_holding(each.path, OLD) == [], each.path.name


def test_a_device_that_takes_the_new_persona_s_key_before_its_events_keeps_it(
    tmp_path: Path,
) -> None:
    # The desk holds the erasure, never had a key of the erased Ada, and takes the new
    # Ada's key before her events: the key is not taken for the erased one's.
    with three_devices(tmp_path) as devices:
        old_ada(devices.laptop)
        erase_ada(devices.laptop)  # before the laptop shares its key
        assert devices.sync_once(devices.laptop).level
        assert devices.sync_once(devices.desk).level  # the erasure only
        new_ada(devices.phone)  # offline: it has not heard of Ada
        assert devices.sync_once(devices.phone).level  # its Ada comes after the erasure
        assert devices.keys_only(devices.desk).came == 1  # the new Ada's key, no event yet
        reopened(devices.desk)
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, set())


def test_a_device_that_takes_the_new_persona_s_events_before_her_key_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with three_devices(tmp_path) as devices:
        old_ada(devices.laptop)
        erase_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level
        new_ada(devices.phone)
        assert devices.sync_once(devices.phone).level

        def not_yet(*args: object, **kwargs: object) -> None:
            raise ConfigError("the desk's key exchange is later")

        with monkeypatch.context() as later:
            later.setattr(tending, "sync_keys", not_yet)
            assert devices.sync_once(devices.desk).level  # the events, no key
        reopened(devices.desk)
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, set())


def test_the_erasing_device_takes_the_new_persona_s_key_made_after_its_erasure(
    tmp_path: Path,
) -> None:
    with three_devices(tmp_path) as devices:
        old_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level  # her key reaches the server
        old_keys = ada_keys(devices.laptop)
        erase_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level
        new_ada(devices.phone)  # offline since before the old Ada was made
        assert devices.sync_once(devices.phone).level
        assert devices.sync_once(devices.laptop).level
        reopened(devices.laptop)
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def test_the_erasing_device_holding_the_new_persona_s_key_erases_only_the_old_one_s(
    tmp_path: Path,
) -> None:
    # The phone makes the new Ada and shares her key before the laptop erases the old
    # one: the laptop holds keys of both as it erases.
    with three_devices(tmp_path) as devices:
        old_keys = old_ada_on_the_server(devices)
        new_ada(devices.phone)
        devices.keys_only(devices.phone)  # shares the new key, takes the old one
        devices.keys_only(devices.laptop)
        assert len(ada_keys(devices.laptop)) == 2
        erase_ada(devices.laptop)
        assert ada_keys(devices.laptop) == ada_keys(devices.phone) - old_keys
        assert devices.sync_once(devices.laptop).level  # before the new Ada: she is valid
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def test_a_device_that_made_the_persona_anew_holding_the_erased_one_s_key_keeps_its_own(
    tmp_path: Path,
) -> None:
    # The phone took the old Ada's key, not her events, then made Ada anew: the new Ada
    # is sealed with a key of her own, which the erasure, pulled after, leaves.
    with three_devices(tmp_path) as devices:
        old_keys = old_ada_on_the_server(devices)
        devices.keys_only(devices.phone)
        assert ada_keys(devices.phone) == old_keys
        new_ada(devices.phone)
        erase_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level  # the old key's deletion, the event
        reopened(devices.phone)
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def test_a_device_that_takes_the_erasure_with_the_new_persona_leaves_no_page_of_the_old(
    tmp_path: Path,
) -> None:
    # The desk holds the old Ada, readable; her key's deletion comes in its exchange,
    # then her erasure and the new Ada in one pull: the id never leaves its personas,
    # and the old Ada's rows, deleted, must not stay in the desk's files.
    with three_devices(tmp_path) as devices:
        old_keys = old_ada_on_the_server(devices)
        assert devices.sync_once(devices.desk).level
        with devices.desk.open() as manager:
            for n in range(20):
                Memories(manager).add("ada", f"{OLD} written on the desk, {n}")
        assert devices.sync_once(devices.desk).level
        new_ada(devices.phone)  # offline: it has not heard of Ada
        erase_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level
        assert devices.sync_once(devices.phone).level  # her Ada comes after the erasure
        assert devices.sync_once(devices.desk).level
        assert files_holding(devices.desk.path, OLD) == []
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def test_a_device_that_took_both_persona_s_keys_at_once_seals_the_old_one_s_writes_with_hers(
    tmp_path: Path,
) -> None:
    # The desk takes the old Ada's key and the new one's in one exchange, with neither
    # current yet, and holds the old Ada's events: what it writes for her is sealed
    # with her key, so that her erasure does not reach the new Ada's.
    with three_devices(tmp_path) as devices:
        old_keys = old_ada_on_the_server(devices)
        new_ada(devices.phone)  # offline: it has not heard of Ada
        devices.keys_only(devices.phone)  # shares the new Ada's key, not her events
        assert devices.sync_once(devices.desk).level  # both keys, the old Ada's events
        assert len(ada_keys(devices.desk)) == 2
        with devices.desk.open() as manager:
            Memories(manager).add("ada", f"{OLD} written on the desk")
        assert devices.sync_once(devices.desk).level
        assert devices.sync_once(devices.laptop).level  # the desk's write
        erase_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def erased_while_the_phone_made_her_anew(devices: Devices) -> set[str]:
    """The phone takes the old Ada's key, not her events, and makes Ada anew; the
    laptop erases the old one and syncs. The old Ada's keys."""
    old_keys = old_ada_on_the_server(devices)
    devices.keys_only(devices.phone)
    new_ada(devices.phone)
    erase_ada(devices.laptop)
    assert devices.sync_once(devices.laptop).level
    return old_keys


def test_a_write_for_the_old_persona_pending_on_a_device_never_lands_in_the_new_one(
    tmp_path: Path,
) -> None:
    # The desk adds a memory to the old Ada offline; by the time it syncs, the server's
    # order has her erasure and the phone's new Ada before it. The write, sealed with
    # the old Ada's key, is refused rather than given to the new one.
    with three_devices(tmp_path) as devices:
        old_keys = old_ada_on_the_server(devices)
        assert devices.sync_once(devices.desk).level
        with devices.desk.open() as manager:
            Memories(manager).add("ada", f"{OLD} pending memory")
        devices.keys_only(devices.phone)
        new_ada(devices.phone)
        erase_ada(devices.laptop)
        assert devices.sync_once(devices.laptop).level
        assert devices.sync_once(devices.phone).level
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def no_key_exchange(*args: object, **kwargs: object) -> None:
    """In place of a device's key exchange: it is later."""
    raise ConfigError("the key exchange is later")


def nothing_comes(
    ring: KeyRing, *args: object, learnt: Callable[[frozenset[str]], object], **kwargs: object
) -> KeySync:
    """In place of the key exchange of a device holding a key it made: nothing comes to
    it (a key's deletion is later), and its events sealed with that key go as if it had
    gone to the server (it goes at the next real exchange)."""
    learnt(frozenset(ring.key_ids() | {k.key_id for k in ring.erased()}))
    return KeySync(0, 0, [], 0)


def test_a_device_with_the_erasure_in_its_log_destroys_the_old_key_beside_the_new_persona(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old Ada's events and erasure come to the phone, not her key's deletion: the
    # phone, knowing of the erasure from its own log, destroys the old key at once,
    # keeping the new one's.
    with three_devices(tmp_path) as devices:
        old_keys = erased_while_the_phone_made_her_anew(devices)
        with monkeypatch.context() as later:
            later.setattr(tending, "sync_keys", nothing_comes)
            assert devices.sync_once(devices.phone).level  # the events, no deletion
        assert ada_keys(devices.phone)
        assert not ada_keys(devices.phone) & old_keys
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


def test_an_erasure_that_comes_with_her_id_held_again_calls_for_a_key_exchange_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running sync looks every second whether an erasure calls for a key exchange
    # before the regular one: the old Ada's erasure coming to the phone, which holds a
    # new Ada, leaves its personas and its erased keys as they were, and calls for one.
    with three_devices(tmp_path) as devices:
        erased_while_the_phone_made_her_anew(devices)
        with devices.phone.open() as manager:
            codec = manager.schema.codec
            assert isinstance(codec, FieldCodec)
            keys_in = tending.KeysIn(
                devices.phone, manager, codec.keys, "http://unused", "t", "shared"
            )
            assert not keys_in.due()
            with monkeypatch.context() as later:
                later.setattr(tending, "sync_keys", nothing_comes)
                later.setattr(tending, "destroy_replaced_keys", lambda *args: [])
                assert devices.sync_once(devices.phone).level  # the erasure, no exchange
            assert keys_in.due()


@pytest.mark.parametrize("opening", ["open", "open_store"])
def test_opening_a_directory_destroys_the_old_key_beside_the_new_persona(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opening: str
) -> None:
    # As above, and the syncing process stops before it destroys the old key: the next
    # opening of the phone's directory (or of its store alone) destroys it.
    with three_devices(tmp_path) as devices:
        old_keys = erased_while_the_phone_made_her_anew(devices)
        with monkeypatch.context() as stopped:
            stopped.setattr(tending, "sync_keys", nothing_comes)
            stopped.setattr(tending, "destroy_replaced_keys", lambda *args: [])
            assert devices.sync_once(devices.phone).level
        assert ada_keys(devices.phone) & old_keys
        phone = DataDir(devices.phone.path, environ=devices.phone.environ)
        with phone.open() if opening == "open" else phone.open_store():
            pass
        assert ada_keys(devices.phone)
        assert not ada_keys(devices.phone) & old_keys
        devices.everyone_syncs()
        each_reads_the_new_ada(devices, old_keys)


# The key ring and the keys channel on their own.


def ring(path: Path) -> KeyRing:
    return KeyRing.create(path / "keys.db", passphrase=PASSPHRASE, params=FAST)


def test_a_persona_made_anew_starts_a_lineage_that_an_erasure_of_the_old_one_leaves(
    tmp_path: Path,
) -> None:
    with ring(tmp_path) as keys:
        old, _ = keys.current("p1")  # made before keys had lineages, or without one
        rotated = keys.rotate("p1")
        first, key = keys.start("p1")
        again = keys.rotate("p1")
        assert keys.lineages("p1") == {old: None, rotated: None, first: first, again: first}
        assert keys.current("p1")[0] == again
        erased = keys.erase("p1", {"a lineage of an erased persona"})
        assert {e.key_id for e in erased} == {old, rotated}  # those without a lineage go
        assert keys.key(first) == key
        assert keys.current("p1")[0] == again
        assert {e.key_id for e in keys.erase("p1", {first})} == {first, again}
        with pytest.raises(KeyRingError, match="p1 was erased"):
            keys.start("p1")  # a persona is not made anew with an id erased here


def test_a_ring_whose_current_lineage_was_erased_uses_the_one_left(tmp_path: Path) -> None:
    with ring(tmp_path) as keys:
        old, _ = keys.start("p1")
        new = keys.start("p1")[0]  # taken from a device that made the persona anew
        keys.current("p1")
        with keys._guard(), keys._transaction():  # taken, not made here: not current
            keys._conn.execute("UPDATE data_keys SET current = (id = ?)", (old,))
        keys._current.clear()
        assert keys.current("p1")[0] == old
        keys.erase("p1", {old})
        assert keys.current("p1")[0] == new
        assert keys.rotate("p1") in keys.lineages("p1")


def test_a_ring_holding_two_lineages_gives_the_key_of_the_persona_written_for(
    tmp_path: Path,
) -> None:
    with ring(tmp_path) as keys:
        old, _ = keys.start("p1")
        rotated = keys.rotate("p1")
        new, key = keys.start("p1")  # taken from a device that made the persona anew
        assert keys.current("p1")[0] == new
        assert keys.current("p1", lambda: None)[0] == new  # not known: the current one
        assert keys.current("p1", lambda: old)[0] == rotated  # the newest of her lineage
        assert keys.current("p1")[0] == rotated  # made the current one
        assert keys.current("p1", lambda: new) == (new, key)
        keys.erase("p1", {old})
        with pytest.raises(KeyRingError, match="p1 was erased"):
            keys.current("p1", lambda: old)
        assert keys.current("p1")[0] == new


def test_a_commit_seals_a_persona_s_events_with_the_lineage_of_her_creation(
    tmp_path: Path,
) -> None:
    with ring(tmp_path) as keys:
        old, _ = keys.start("p1")  # an erased persona's, come from another device
        schema = SCHEMA.with_codec(FieldCodec(keys))
        with Store.open(tmp_path / "store.db", schema=schema) as store:
            made = store.commit(persona("p1", "Ada"), memory("m1", "p1", content="one"))
            first = sealed_with(made[0])
            assert first != old
            assert sealed_with(made[1]) == first  # in the same commit as her creation
            keys.current("p1", lambda: old)  # the old one's made current (a key exchange)
            (later,) = store.commit(memory("m2", "p1", content="two"))
            assert sealed_with(later) == first
            assert keys.current("p1")[0] == first


def test_the_keys_destroyed_beside_a_persona_given_an_erased_one_s_id_are_never_hers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ring(tmp_path) as keys:
        schema = SCHEMA.with_codec(FieldCodec(keys))
        with Store.open(tmp_path / "store.db", schema=schema) as store:

            def read(*, named: Collection[str]) -> list[EventRecord]:
                return [e.record for e in store.events(named=named)]

            (old,) = store.commit(persona("p1", "Ada"))
            store.commit(PersonaErased(persona_id="p1"))  # her keys not destroyed yet
            with monkeypatch.context() as older:  # made anew as an older PJai made it
                older.setattr(KeyRing, "start", KeyRing.current)
                (new,) = store.commit(persona("p1", "Ada"))
            assert sealed_with(new) == sealed_with(old)
            assert replaced_keys_held(keys, read, store.query) == {}  # hers too
            store.commit(PersonaErased(persona_id="p1"))
            (newer,) = store.commit(persona("p1", "Ada"))  # a lineage of her own
            assert replaced_keys_held(keys, read, store.query) == {"p1": {sealed_with(old)}}
            assert destroy_replaced_keys(keys, read, store.query) == ["p1"]
            assert keys.lineages("p1") == {sealed_with(newer): sealed_with(newer)}
            assert replaced_keys_held(keys, read, store.query) == {}


def sealed_with(record: EventRecord) -> str:
    """The id of the key that sealed ``record``'s fields."""
    args = msgspec.json.decode(bytes(record.args))
    (key_id,) = {v["key"] for v in args.values() if isinstance(v, dict) and "key" in v}
    return str(key_id)


def test_a_key_ring_made_before_lineages_opens_and_erases_as_it_did(tmp_path: Path) -> None:
    with ring(tmp_path) as keys:
        old, key = keys.current("p1")
        rotated = keys.rotate("p1")
        keys.current("p2")
        keys.erase("p2")
    conn = apsw.Connection(str(tmp_path / "keys.db"))  # as an older PJai left it
    conn.execute(
        "ALTER TABLE data_keys DROP COLUMN lineage; ALTER TABLE erased DROP COLUMN lineage;"
        "UPDATE meta SET value = '1' WHERE name = 'format'"
    )
    conn.close()
    with KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as keys:
        assert keys.key(old) == key
        assert keys.lineages("p1") == {old: None, rotated: None}
        with pytest.raises(KeyRingError, match="p2 was erased"):
            keys.start("p2")
        assert {e.key_id for e in keys.erase("p1", set())} == {old, rotated}
        made = keys.start("p3")[0]
    with KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as keys:
        assert keys.lineages("p3") == {made: made}
        assert keys.scopes() == {"p3": 1}
    conn = apsw.Connection(str(tmp_path / "keys.db"))  # a PJai from before refuses it now
    assert conn.execute("SELECT value FROM meta WHERE name = 'format'").get == "2"
    conn.close()


def two_rings(tmp_path: Path) -> tuple[KeyRing, KeyRing]:
    """A ring holding a key of p1, and another device's made from what it shares."""
    first = ring(tmp_path / "a")
    first.start("p1")
    return first, join(tmp_path / "b" / "keys.db", export_items(first), PASSPHRASE)


def test_a_key_of_a_persona_made_anew_is_taken_where_the_old_one_was_erased(
    tmp_path: Path,
) -> None:
    first, second = two_rings(tmp_path)
    third = join(tmp_path / "c" / "keys.db", export_items(first), PASSPHRASE)
    (old,) = second.lineages("p1")
    second.erase("p1", {old})
    rotated = first.rotate("p1")  # of the erased persona, on a device not told yet
    new, key = third.start("p1")  # made anew on another, not told either
    done = absorb(second, export_items(first) + export_items(third), [])
    assert (done.came, done.refused) == (1, 1)  # the rotated key is the erased lineage's
    assert second.key(rotated) is None
    assert second.key(new) == key
    assert second.current("p1")[0] == new


def test_a_deletion_destroys_the_lineage_of_its_key_not_a_persona_made_anew(
    tmp_path: Path,
) -> None:
    first, second = two_rings(tmp_path)
    (old,) = second.lineages("p1")
    new, key = second.start("p1")  # made anew on the second, holding the old key
    rotated = first.rotate("p1")  # newer, of the old lineage
    # A device holding the rotated key, not the first key it came from.
    third = join(
        tmp_path / "c" / "keys.db", [i for i in export_items(first) if i["id"] != old], PASSPHRASE
    )
    absorb(second, export_items(first), [])
    assert second.current("p1")[0] == new  # a rotation of the old lineage does not win
    erased = first.erase("p1", {old})
    assert {e.key_id for e in erased} == {old, rotated}
    proofs = [{"id": old, "proof": deletion_proof(first, old)}]
    assert absorb(second, [], proofs).erased == ["p1"]
    assert second.lineages("p1") == {new: new}
    assert second.key(new) == key
    assert absorb(third, [], proofs).erased == ["p1"]  # the lineage the key started
    assert third.scopes() == {}


@pytest.mark.parametrize("change", ["another", "none"])
def test_a_key_whose_lineage_the_server_changed_is_refused(tmp_path: Path, change: str) -> None:
    first, second = two_rings(tmp_path)
    newer = first.rotate("p1")
    items = []
    for item in export_items(first):
        if item["id"] == newer:
            parts = json.loads(base64.b64decode(item["blob"]))
            if change == "none":
                del parts["lineage"]
            else:
                parts["lineage"] = newer
            item = {**item, "blob": base64.b64encode(json.dumps(parts).encode()).decode()}
        items.append(item)
    assert (absorb(second, items, []).refused, second.key(newer)) == (1, None)


def test_a_directory_whose_keys_have_no_lineage_erases_as_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encrypted(tmp_path / "data")
    with monkeypatch.context() as older:  # creations sealed as an older PJai sealed them
        older.setattr(KeyRing, "start", KeyRing.current)
        with data.open() as manager:
            ada = ada_beside_grace(manager)
    conn = apsw.Connection(str(data.keys_path))  # and its ring as that PJai left it
    conn.execute("ALTER TABLE data_keys DROP COLUMN lineage")
    conn.execute("ALTER TABLE erased DROP COLUMN lineage")
    conn.close()
    with data.key_ring() as keys:
        keys.rotate(ada)
    with data.open() as manager:
        Memories(manager).add(ada, f"{MARKER} after the rotation")
        proof = erase_persona(data, manager, ada)
        assert len(proof.keys_destroyed) == 2
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
    finished_on_opening(data)
