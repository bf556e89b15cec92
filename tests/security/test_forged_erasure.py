"""A persona's erasure carries a proof made with the store key: one the sync server or a
token holder made up deletes no row and destroys no key on any device, and privacy
work does not count it; an erasure from before proofs still applies where it destroys
nothing. A key deletion with a made-up proof is refused by the sync server, which
checks it against the key's commitment, and by every device."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from pjai.app import DataDir, Personas, connect, erase_persona, init_security
from pjai.app.keysync import join_store, keys_url
from pjai.app.rights import privacy_report
from pjai.bench.syncserver import servers
from pjai.errors import EventValidationError
from pjai.hybrid.archive import export_archive, import_archive
from pjai.schema import SCHEMA, PersonaErased, utc_now
from pjai.schema.records import EventRecord, Position, stamp
from pjai.security import FieldCodec, KeyRing
from pjai.security.fields import PROOF_PURPOSE
from pjai.store import Store
from pjai.store.replay import rebuild
from pjai.sync.server import ServerDatabase
from tests.helpers import persona
from tests.security.test_erasure import MARKER, ada_beside_grace, echoed, encrypted, fill
from tests.security.test_keys import FAST, PASSPHRASE
from tests.security.test_keysync import laptop_and_desk, new_token, server_database


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    """A new key ring that takes no erasure without a proof, as one does once its data
    directory has opened."""
    with KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=FAST) as made:
        made.take_unproven([])
        yield made


def made_up(persona_id: str, after: Position, proof: str | None = None) -> EventRecord:
    """An erasure of ``persona_id`` as one without the store key makes it: numbered after
    ``after``, with ``proof`` (none, if ``None``)."""
    args: dict[str, str] = {"persona_id": persona_id}
    if proof is not None:
        args["proof"] = proof
    (record,) = stamp(
        [(PersonaErased.NAME, msgspec.json.encode(args))],
        after=after,
        generation=0,
        client_id="forger",
        session_id="forger",
        at=utc_now(),
    )
    return record


def test_an_erasure_is_sealed_with_its_proof_and_a_plain_one_is_as_before(ring: KeyRing) -> None:
    with Store.memory(schema=SCHEMA.with_codec(FieldCodec(ring))) as store:
        *_, erased = store.commit(persona("p1"), PersonaErased(persona_id="p1"))
        args = msgspec.json.decode(bytes(erased.args))
        assert args == {
            "persona_id": "p1",
            "proof": ring.proof(PROOF_PURPOSE, erased.id, PersonaErased.NAME, "p1"),
        }
        assert store.query("SELECT id FROM personas") == []
        assert store.schema.proven([erased]) == [erased]
        assert rebuild(store, None, trust=False) == 2  # each event decided again
        assert store.query("SELECT id FROM personas") == []
        assert store.quarantined() == []
    with Store.memory() as store:
        *_, erased = store.commit(persona("p1"), PersonaErased(persona_id="p1"))
        assert bytes(erased.args) == b'{"persona_id":"p1"}'  # no key ring: no proof


@pytest.mark.parametrize(
    "proof",
    [
        pytest.param(None, id="none"),
        pytest.param("0" * 64, id="made-up"),
        pytest.param("another event's", id="another-event-s"),
        pytest.param("é" * 64, id="not-ascii"),
    ],
)
def test_an_erasure_whose_proof_is_not_its_own_changes_nothing(
    ring: KeyRing, proof: str | None
) -> None:
    with Store.memory(schema=SCHEMA.with_codec(FieldCodec(ring))) as store:
        (made,) = store.commit(persona("p1"))
        if proof == "another event's":
            proof = ring.proof(PROOF_PURPOSE, made.id, PersonaErased.NAME, "p1")
        forged = made_up("p1", store.head, proof)
        assert store.ingest([forged]) == 0
        assert [row.id for row in store.query("SELECT id FROM personas")] == ["p1"]
        (kept,) = store.quarantined()
        assert kept.record.id == forged.id
        assert kept.error is not None
        assert "'proof'" in kept.error
        assert "not applied" in kept.error
        assert store.schema.proven([forged]) == []
        assert rebuild(store, None, trust=False) == 1  # decided again: still refused
        assert [row.id for row in store.query("SELECT id FROM personas")] == ["p1"]


def test_an_erasure_with_no_proof_is_taken_only_if_applied_before_proofs_were_checked(
    tmp_path: Path,
) -> None:
    with KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=FAST) as ring:
        codec = FieldCodec(ring)
        args = b'{"persona_id":"p1"}'
        assert not ring.unproven_taken()  # a ring of a PJai from before proofs: as then
        assert codec.unseal("e1", PersonaErased.NAME, args) == args
        ring.take_unproven(["e1"])
        assert codec.unseal("e1", PersonaErased.NAME, args) == args
        with pytest.raises(EventValidationError, match="carries no proof"):
            codec.unseal("e2", PersonaErased.NAME, args)
        # An erasure taken in from elsewhere (an archive's) is sealed, never proved.
        assert codec.seal("e2", PersonaErased.NAME, args) == args


def test_a_persona_erased_before_encryption_stays_erased_when_the_log_is_replayed(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        erase_persona(data, manager, ada)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        assert manager.store is not None
        rebuild(manager.store, None, trust=False)
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert manager.store.quarantined() == []
        assert privacy_report(manager).erasures == [ada]


def test_the_erasures_sql_alone_made_before_encryption_are_taken_as_the_directory_opens(
    tmp_path: Path,
) -> None:
    off = {"PJAI_PASSPHRASE": PASSPHRASE, "PJAI_USE_LIVESTORE": "false"}
    data = DataDir(tmp_path / "data", environ=off)
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        erase_persona(data, manager, ada)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    on = DataDir(data.path, environ={"PJAI_PASSPHRASE": PASSPHRASE})
    on.open_store().close()  # the store alone, first: it does not read SQL's journal
    with KeyRing.unlock(data.keys_path, passphrase=PASSPHRASE) as ring:
        assert not ring.unproven_taken()
    with on.open() as manager:
        assert manager.store is not None
        rebuild(manager.store, None, trust=False)
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert privacy_report(manager).erasures == [ada]
    with KeyRing.unlock(data.keys_path, passphrase=PASSPHRASE) as ring:
        assert ring.unproven_taken()


def test_a_plain_archive_s_erasures_stay_erased_in_an_encrypted_directory(tmp_path: Path) -> None:
    plain = DataDir(tmp_path / "plain")
    with plain.open() as manager:
        ada = ada_beside_grace(manager)
        erase_persona(plain, manager, ada)
        export_archive(manager, tmp_path / "plain.zip")
    opened = encrypted(tmp_path / "opened")
    with opened.open():  # its key ring takes no erasure without a proof from now on
        pass
    target = DataDir(tmp_path / "target", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    target.path.mkdir()
    shutil.copyfile(opened.keys_path, target.keys_path)
    import_archive(target.path, tmp_path / "plain.zip", **target.opening_options())
    with target.open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert privacy_report(manager).erasures == [ada]


def test_a_made_up_erasure_of_a_persona_made_before_encryption_changes_nothing(
    tmp_path: Path,
) -> None:
    data = DataDir(
        tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE, "PJAI_FLAG_SYNC": "true"}
    )
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)  # no data key: made before encryption
        assert manager.store is not None
        manager.store.rebase(echoed(manager.store.pending()))
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        store = manager.store
        assert store is not None
        forged = made_up(ada, store.head)
        elsewhere = made_up("to-come", forged.position)  # of an id not here yet
        store.rebase(echoed([forged, elsewhere], after=store.head))
        assert [p.name for p in Personas(manager).list()] == ["Ada"]
        assert [e.record.id for e in store.quarantined()] == [forged.id, elsewhere.id]
        assert privacy_report(manager).erasures == []
        assert Personas(manager).create("Grace", persona_id="to-come").id == "to-come"


def test_an_archive_keeps_a_made_up_erasure_unproven_and_restores(tmp_path: Path) -> None:
    data = encrypted(tmp_path / "data", PJAI_FLAG_SYNC="true")
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        store = manager.store
        assert store is not None
        store.rebase(echoed(store.pending()))
        store.rebase(echoed([made_up(ada, store.head)], after=store.head))
        export_archive(manager, tmp_path / "backup.zip")
    restored = DataDir(tmp_path / "restored", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    restored.path.mkdir()
    shutil.copyfile(data.keys_path, restored.keys_path)
    import_archive(restored.path, tmp_path / "backup.zip", sync=True, **restored.opening_options())
    with restored.open() as manager:
        assert sorted(p.name for p in Personas(manager).list()) == ["Ada", "Grace"]
        assert manager.store is not None
        # Taken as this instance's own, it is refused, not proved: nothing to push.
        assert list(manager.store.events(named=(PersonaErased.NAME,))) == []
        (erasure,) = manager.store.rejected()
        assert erasure.record.name == PersonaErased.NAME
        assert b'"proof"' not in bytes(erasure.record.args)
        assert erasure.error is not None
        assert privacy_report(manager).erasures == []
    with KeyRing.unlock(restored.keys_path, passphrase=PASSPHRASE) as ring:
        assert ada in ring.scopes()


def test_a_made_up_erasure_from_upstream_destroys_no_key_and_counts_as_none(
    tmp_path: Path,
) -> None:
    data = encrypted(tmp_path / "data", PJAI_FLAG_SYNC="true")
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        store = manager.store
        assert store is not None
        store.rebase(echoed(store.pending()))  # as a sync server confirms
        forged = made_up(ada, store.head)
        store.rebase(echoed([forged], after=store.head))
        assert sorted(p.name for p in Personas(manager).list()) == ["Ada", "Grace"]
        assert [e.record.id for e in store.quarantined()] == [forged.id]
        assert manager.verify().equal  # SQL took no erasure either
    with data.open() as manager:  # an opening destroys the keys of erasures it holds
        report = privacy_report(manager)
        assert (report.erasures, report.unfinished_erasures, report.erased_keys) == ([], [], 0)
        assert sorted(p.name for p in Personas(manager).list()) == ["Ada", "Grace"]
    with KeyRing.unlock(data.keys_path, passphrase=PASSPHRASE) as ring:
        assert ada in ring.scopes()
        assert ring.erased() == []


def shared_store(
    tmp_path: Path, url: str, token: str
) -> tuple[DataDir, DataDir, str, dict[str, Any]]:
    """The laptop and desk of :func:`laptop_and_desk` (Ada and Grace), both synced with
    ``token`` through the sync server at ``url``; Ada's id, and what
    :func:`~pjai.app.connect` syncs a device once with."""
    sync = {"token": token, "store_id": "shared", "once": True, "timeout": 60}
    laptop, desk, ada = laptop_and_desk(tmp_path, MARKER)
    assert connect(laptop, url, **sync).level
    join_store(desk, url, token=token, store_id="shared", passphrase=PASSPHRASE)
    assert connect(desk, url, **sync).level
    return laptop, desk, ada, sync


def test_an_erasure_the_sync_server_made_up_reaches_no_device_and_a_real_one_still_does(
    tmp_path: Path,
) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    with servers(db_url, server_dir, 1) as (server,):
        laptop, desk, ada, sync = shared_store(tmp_path, server.url, token)
    with ServerDatabase.open(db_url) as database:  # the server writes into its own log
        head = database.log.head("shared")
        database.log.append("shared", [made_up(ada, head)])
    with servers(db_url, server_dir, 1) as (server,):
        for one in (desk, laptop, desk):
            assert connect(one, server.url, **sync).level
        for one in (laptop, desk):
            with one.open() as manager:
                assert sorted(p.name for p in Personas(manager).list()) == ["Ada", "Grace"]
                assert privacy_report(manager).erasures == []
            with KeyRing.unlock(one.keys_path, passphrase=PASSPHRASE) as ring:
                assert ada in ring.scopes()
                assert ring.erased() == []
        with laptop.open() as manager:
            erase_persona(laptop, manager, ada)
        for one in (laptop, desk):
            assert connect(one, server.url, **sync).level
    for one in (laptop, desk):
        with one.open() as manager:
            assert [p.name for p in Personas(manager).list()] == ["Grace"]
            assert privacy_report(manager).erasures == [ada]
        with KeyRing.unlock(one.keys_path, passphrase=PASSPHRASE) as ring:
            assert ada not in ring.scopes()


def test_a_token_holder_cannot_make_the_server_forget_a_shared_key(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    with servers(db_url, server_dir, 1) as (server,):
        laptop, desk, ada, sync = shared_store(tmp_path, server.url, token)
        with KeyRing.unlock(laptop.keys_path, passphrase=PASSPHRASE) as ring:
            (key_id,) = ring.lineages(ada)
        headers = {"Authorization": f"Bearer {token}"}
        for proof in ("0" * 64, "é" * 64):
            deletion = {"store_id": "shared", "deleted": [{"id": key_id, "proof": proof}]}
            answer = httpx.post(f"{keys_url(server.url)}/delete", json=deletion, headers=headers)
            assert answer.status_code == 403, answer.text
        listing = httpx.get(keys_url(server.url), params={"store_id": "shared"}, headers=headers)
        assert key_id in {item["id"] for item in listing.json()["items"]}
        assert listing.json()["deleted"] == []
        for one in (desk, laptop):
            assert connect(one, server.url, **sync).level
            with KeyRing.unlock(one.keys_path, passphrase=PASSPHRASE) as ring:
                assert ring.key(key_id) is not None
            with one.open() as manager:
                assert sorted(p.name for p in Personas(manager).list()) == ["Ada", "Grace"]
