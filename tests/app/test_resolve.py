"""What a person typed becomes an id: a whole id, its start, a persona's name, or nothing
for the active persona; several or no matches are errors that say so."""

from __future__ import annotations

import pytest

from pjai.app import Bookmarks, Conversations, DataDir, Memories, Personas, resolve, set_flag
from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager


def _personas(manager: HybridDatabaseManager) -> Personas:
    personas = Personas(manager)
    personas.create("Ada", persona_id="01aa-ada")
    personas.create("Basil", persona_id="01ab-basil")
    personas.create("ada", persona_id="ada")  # a name that is another persona's id
    return personas


def test_a_persona_by_id_name_or_the_start_of_its_id(manager: HybridDatabaseManager) -> None:
    _personas(manager)
    assert resolve.persona_id(manager, "01ab-basil") == "01ab-basil"
    assert resolve.persona_id(manager, "Basil") == "01ab-basil"
    assert resolve.persona_id(manager, "BASIL") == "01ab-basil"  # ignoring case, at last
    assert resolve.persona_id(manager, "01ab") == "01ab-basil"
    assert resolve.persona_id(manager, "Ada") == "01aa-ada"  # the exact name
    assert resolve.persona_id(manager, "ada") == "ada"  # an id before a name


def test_a_reference_that_fits_several_lists_them(manager: HybridDatabaseManager) -> None:
    _personas(manager)
    with pytest.raises(QueryError) as caught:
        resolve.persona_id(manager, "01a")
    message = str(caught.value)
    assert "'01a' could be any of these personas" in message
    assert "01aa-ada (Ada)" in message
    assert "01ab-basil (Basil)" in message
    assert "give more of the id" in message


def test_an_unknown_or_empty_reference_is_named(manager: HybridDatabaseManager) -> None:
    _personas(manager)
    with pytest.raises(QueryError, match="no persona 'zed'"):
        resolve.persona_id(manager, "zed")
    with pytest.raises(QueryError, match="empty"):
        resolve.persona_id(manager, " ")
    with pytest.raises(QueryError, match="no memory 'zed'"):
        resolve.memory_id(manager, "zed")
    with pytest.raises(QueryError, match="empty"):
        resolve.memory_id(manager, "")


def test_a_deleted_persona_is_found_only_where_deleted_ones_are_asked_for(
    manager: HybridDatabaseManager,
) -> None:
    personas = _personas(manager)
    personas.delete("01ab-basil")
    with pytest.raises(QueryError, match=r"no persona 'Basil' \(persona 01ab-basil \(Basil\) is "):
        resolve.persona_id(manager, "Basil")
    assert resolve.persona_id(manager, "basil", deleted=True) == "01ab-basil"
    assert resolve.persona_id(manager, "01a", deleted=True) == "01ab-basil"  # the only one
    with pytest.raises(QueryError, match="no deleted persona 'Ada'; persona 01aa-ada"):
        resolve.persona_id(manager, "Ada", deleted=True)


def test_no_persona_means_the_active_one(manager: HybridDatabaseManager) -> None:
    personas = _personas(manager)
    with pytest.raises(QueryError, match=r"no persona is active: .*pjai persona activate NAME"):
        resolve.persona_id(manager, None)
    personas.activate("01ab-basil")
    assert resolve.persona_id(manager, None) == "01ab-basil"
    assert resolve.persona_scope(manager, None, every=False) == "01ab-basil"
    assert resolve.persona_scope(manager, None, every=True) is None
    with pytest.raises(QueryError, match="not both"):
        resolve.persona_scope(manager, "Ada", every=True)
    personas.deactivate("01ab-basil")
    with pytest.raises(QueryError, match=r"--all"):
        resolve.persona_scope(manager, None, every=False)


def test_memories_bookmarks_and_conversations_by_the_start_of_their_ids(
    manager: HybridDatabaseManager,
) -> None:
    _personas(manager)
    memories = Memories(manager)
    memories.add("ada", "Coffee with Grace", memory_id="m-100", name="Coffee")
    memories.add("ada", "Tea with Basil", memory_id="m-101")
    memories.add("ada", "Shoes", memory_id="M-200")
    assert resolve.memory_id(manager, "m-100") == "m-100"
    assert resolve.memory_id(manager, "M") == "M-200"  # case counts in ids
    memories.delete("M-200")
    assert resolve.memory_id(manager, "M-2") == "M-200"  # deleted ones too (restore)
    with pytest.raises(QueryError) as caught:
        resolve.memory_id(manager, "m-1")
    assert "m-100 (Coffee)" in str(caught.value)
    assert "m-101 (Tea with Basil)" in str(caught.value)  # no name: its content

    mark = Bookmarks(manager).preset("ada", "today")
    assert resolve.bookmark_id(manager, mark.id[:-3]) == mark.id
    Bookmarks(manager).delete(mark.id)
    with pytest.raises(QueryError, match="no bookmark"):
        resolve.bookmark_id(manager, mark.id)
    chat = Conversations(manager).start("ada", title="Dinner")
    assert resolve.conversation_id(manager, chat[:-2]) == chat


def test_resolution_reads_sql_with_the_store_off(data: DataDir) -> None:
    set_flag(data, "use_livestore", False)
    with data.open() as manager:
        assert manager.store is None
        personas = _personas(manager)
        personas.activate("01aa-ada")
        Memories(manager).add("ada", "x", memory_id="m-1")
        assert resolve.persona_id(manager, "basil") == "01ab-basil"
        assert resolve.persona_id(manager, None) == "01aa-ada"
        assert resolve.memory_id(manager, "m-") == "m-1"
