"""The personas view under the simulated user: create, edit, activate, delete, restore."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing.user import User

from pjai.app import TEMPLATES, erase_persona
from pjai.schema.models import Persona
from pjai.web import WebApp
from pjai.web.views.persona_fields import Merged, merge, setting_edits, setting_fields
from tests.web.conftest import by_testid, simulated, until

pytestmark = pytest.mark.anyio


def _listed_live(user: User, persona_id: str) -> bool:
    """Whether the persona shows once, in the list of live personas."""
    rows = [
        e
        for e in user.find(marker="persona-row").elements
        if e.props.get("data-persona-id") == persona_id
    ]
    return len(rows) == 1 and "bg-grey-2" not in rows[0].classes


def _switch_value(user: User) -> object:
    (switch,) = [
        e
        for e in user.find(kind=ui.select).elements
        if e.props.get("data-testid") == "persona-switch"
    ]
    return switch.value


async def _open(user: User, *personas: Persona) -> None:
    await user.open("/personas")
    for persona in personas:
        await user.should_see(marker=f"persona-{persona.id}")


async def test_a_persona_is_created_from_a_template(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/personas")
        await user.should_see("No persona yet")
        user.find("New persona").click()
        user.find(marker="new-name").type("Coachy")
        template = user.find(marker="new-template").elements.pop()
        assert isinstance(template, ui.select)
        template.value = "coach"
        await user.should_see(TEMPLATES["coach"].description, retries=1)
        user.find(marker="create-confirm").click()
        await user.should_see(marker="persona-row")
        await user.should_see("Created Coachy")
        # the new persona is selected: its form opens
        await user.should_see(marker="persona-form")
        (name,) = user.find(marker="name").elements
        assert isinstance(name, ui.input)
        assert name.value == "Coachy"
    (made,) = web.services.personas.list()
    assert made.name == "Coachy"
    assert made.description == TEMPLATES["coach"].description
    assert made.memory.importance_threshold == 0.4


async def test_a_blank_name_is_refused_in_the_dialog(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/personas")
        user.find("New persona").click()
        user.find(marker="create-confirm").click()
        await user.should_see(marker="create-error")
        error = next(iter(user.find(marker="create-error").elements)).text
        assert error.startswith("Name: expected text of at least 1 character")
    assert web.services.personas.list() == []


async def test_an_edited_setting_is_saved(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    async with simulated(web) as user:
        await _open(user, ada)
        await user.should_see(marker="persona-form")
        threshold = user.find(marker="memory.importance_threshold").elements.pop()
        threshold.value = 0.55
        analytics = user.find(marker="privacy.analytics").elements.pop()
        analytics.value = True
        user.find(marker="persona-save").click()
        await user.should_see("Saved Ada")
    saved = web.services.personas.get(ada.id)
    assert saved.memory.importance_threshold == 0.55
    assert saved.privacy.analytics is True
    assert saved.memory.capacities == ada.memory.capacities


async def test_an_invalid_value_shows_the_error_and_changes_nothing(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    async with simulated(web) as user:
        await _open(user, ada)
        await user.should_see(marker="persona-form")
        user.find(marker="description").elements.pop().value = "changed too"
        user.find(marker="memory.importance_threshold").elements.pop().value = 7
        user.find(marker="persona-save").click()
        await user.should_see(marker="persona-form-error")
        (error,) = user.find(marker="persona-form-error").elements
        assert isinstance(error, ui.label)
        # named as the form shows it, not as the event does
        assert error.text == "Memory / Importance threshold: expected a number <= 1.0, got 7"
        # what was typed stays, to be corrected, and the input at fault says so
        (threshold,) = user.find(marker="memory.importance_threshold").elements
        assert isinstance(threshold, ui.number)
        assert threshold.value == 7
        assert threshold.error == "expected a number <= 1.0, got 7"
    assert web.services.personas.get(ada.id) == ada


async def test_activate_switches_the_headers_persona(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    basil = web.services.personas.create("Basil")
    async with simulated(web) as user:
        await _open(user, ada, basil)
        await until(lambda: _switch_value(user) == ada.id, "the switch shows Ada")
        with user.scope(marker=f"persona-{basil.id}"):
            user.find("Activate").click()
        await until(lambda: _switch_value(user) == basil.id, "the switch shows Basil")
        await user.should_see("Activated Basil")
    assert web.services.personas.active() == web.services.personas.get(basil.id)


async def test_delete_asks_then_lists_the_persona_as_deleted_and_restore_brings_it_back(
    web: WebApp,
) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    basil = web.services.personas.create("Basil")
    async with simulated(web) as user:
        await _open(user, ada, basil)
        with user.scope(marker=f"persona-{basil.id}"):
            user.find("Delete").click()
        await user.should_see("Delete Basil?")
        user.find(marker="confirm-cancel").click()
        await user.should_not_see("Delete Basil?")
        assert web.services.personas.find(basil.id) == basil

        with user.scope(marker=f"persona-{basil.id}"):
            user.find("Delete").click()
        user.find(marker="confirm-action").click()
        await user.should_see("Deleted Basil")
        await user.should_not_see(marker=f"persona-{basil.id}")  # gone from the live list
        await user.should_not_see("Activate")  # no live persona left to activate
        found = web.services.personas.find(basil.id)
        assert found is not None
        assert found.deleted_at is not None

        user.find(marker="show-deleted").click()
        with user.scope(marker=f"persona-{basil.id}"):
            await user.should_see("Basil")
            user.find("Restore").click()
        await user.should_see("Restored Basil")
        await until(lambda: _listed_live(user, basil.id), "Basil is back")
        with user.scope(marker=f"persona-{basil.id}"):
            await user.should_see("Activate")
    assert web.services.personas.get(basil.id).deleted_at is None


async def test_a_persona_created_elsewhere_appears_without_reload(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/personas")
        await user.should_see("No persona yet")
        grace = web.services.personas.create("Grace", template_name="researcher")
        await user.should_see(marker=f"persona-{grace.id}")
        await user.should_see("Grace")
        # the first persona to appear is selected: its form opens
        await user.should_see(marker="persona-form")
        web.services.personas.update(grace.id, name="Grace Hopper")
        await user.should_see("Grace Hopper")


async def test_memory_counts_by_tier_follow_new_memories(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    async with simulated(web) as user:
        await _open(user, ada)
        await user.should_see("hot 0")
        web.services.memories.add(ada.id, "The sky is blue", tier="hot")
        await user.should_see("hot 1")


async def test_a_form_being_edited_survives_an_activation_elsewhere(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    basil = web.services.personas.create("Basil")
    async with simulated(web) as user:
        await _open(user, ada, basil)
        await user.should_see(marker="persona-form")
        (name,) = user.find(marker="name").elements
        name.value = "Ada Lovelace"
        web.services.personas.activate(basil.id)
        await until(lambda: _switch_value(user) == basil.id, "the switch shows Basil")
        assert not name.is_deleted
        assert name.value == "Ada Lovelace"


async def test_setting_edits_name_only_what_changed(web: WebApp) -> None:
    fields = setting_fields(web.services.personas.create("Ada"))
    values = {f.path: f.value for f in fields}
    assert setting_edits(fields, values) == []
    values["memory.capacities.hot"] = 50.0  # a number input gives floats
    values["personality.type"] = "helper"
    assert setting_edits(fields, values) == [
        'personality.type="helper"',
        "memory.capacities.hot=50",
    ]


async def test_with_the_store_off_the_view_reads_the_sql_primary(web: WebApp) -> None:
    web.manager.set_flag("use_livestore", False)
    ada = web.services.personas.create("Ada", activate=True)
    async with simulated(web) as user:
        await _open(user, ada)
        await user.should_see(marker="persona-form")
        user.find(marker="privacy.analytics").elements.pop().value = True
        user.find(marker="persona-save").click()
        await user.should_see("Saved Ada")
        basil = web.services.personas.create("Basil")
        await user.should_see(marker=f"persona-{basil.id}")
    assert web.services.personas.get(ada.id).privacy.analytics is True


async def test_a_version_saved_elsewhere_is_merged_into_the_open_form_field_by_field(
    web: WebApp,
) -> None:
    ada = web.services.personas.create("Ada", description="Reads papers", activate=True)
    async with simulated(web) as user:
        await _open(user, ada)
        await user.should_see(marker="persona-form")
        (name,) = user.find(marker="name").elements
        (description,) = user.find(marker="description").elements
        (style,) = user.find(marker="style").elements
        (threshold,) = user.find(marker="memory.importance_threshold").elements
        description.value = "Reads papers and writes reviews"  # typed here, not saved
        style.value = "Brief"  # typed here too
        # Saved elsewhere meanwhile: a new name, a style and a threshold.
        web.services.personas.update(
            ada.id, name="Ada L.", style="Warm", sets=["memory.importance_threshold=0.7"]
        )
        await until(lambda: name.value == "Ada L.", "the new name in the open form")
        assert not description.is_deleted  # the form was not rebuilt
        assert description.value == "Reads papers and writes reviews"
        assert threshold.value == 0.7
        assert style.value == "Brief"  # changed on both sides: what was typed stays
        assert name.props["data-merged"] == "theirs"
        assert style.props["data-merged"] == "kept-mine"
        await user.should_see("saved elsewhere as “Warm”; yours is kept")
        user.find(marker="persona-save").click()
        await user.should_see("Saved Ada L.")
        assert "data-merged" not in name.props
    saved = web.services.personas.get(ada.id)
    assert (saved.name, saved.description, saved.communication_style) == (
        "Ada L.",
        "Reads papers and writes reviews",
        "Brief",
    )
    assert saved.memory.importance_threshold == 0.7  # the other's save is not undone


async def test_a_persona_deleted_elsewhere_replaces_the_open_form(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    async with simulated(web) as user:
        await _open(user, ada)
        await user.should_see(marker="persona-form")
        web.services.personas.delete(ada.id)
        await user.should_see("was deleted", retries=50)


async def test_a_persona_erased_elsewhere_leaves_nothing_of_her_on_the_open_form(
    web: WebApp,
) -> None:
    ada = web.services.personas.create("Ada", description="Something only Ada said")
    grace = web.services.personas.create("Grace", activate=True)
    async with simulated(web) as user:
        await _open(user, ada, grace)
        user.find(marker=f"persona-{ada.id}").click()
        await user.should_see("Something only Ada said")
        erase_persona(web.data_dir, web.manager, ada.id)
        await user.should_see("This persona does not exist (any more).", retries=50)
        await user.should_not_see("Something only Ada said")


async def test_merge_takes_their_change_keeps_mine_and_is_quiet_where_both_agree() -> None:
    base = {"a": 1, "b": 1, "c": 1, "d": 1}
    mine = {"a": 1, "b": 2, "c": 3, "d": 1}
    theirs = {"a": 5, "b": 2, "c": 4, "d": 1}
    assert merge(base, mine, theirs) == [
        Merged("a", 5, kept_mine=False),
        Merged("c", 4, kept_mine=True),
    ]


async def test_a_persona_is_erased_for_good_once_its_name_is_typed(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    web.services.memories.add(ada.id, "Something only Ada knew")
    async with simulated(web) as user:
        await _open(user, ada)
        user.find(marker=f"persona-erase-{ada.id}").click()
        await user.should_see(marker="erase-confirm")
        (button,) = user.find(marker="erase-confirm").elements
        assert not button.enabled  # until the name is typed
        user.find(marker="erase-name").type("Ada")
        await until(lambda: button.enabled, "the erase button enabled")
        user.find(marker="erase-confirm").click()
        await user.should_see("Erased Ada", retries=50)
        await user.should_see("No persona yet", retries=50)
    assert web.services.personas.find(ada.id) is None
    assert web.manager.query("SELECT count(*) AS n FROM memories")[0].n == 0


@pytest.mark.parametrize(
    ("name", "typed"),
    [
        ("Line1\nLine2", "Line1 Line2"),
        ("Admin \u202eevil\u202c ok", "Admin evil ok"),
        ("Admin \u202eevil\u202c ok", "Admin ⟦RLO⟧evil ok"),
        ("\u200b", "⟦ZWSP⟧"),
    ],
)
async def test_a_name_with_line_breaks_overrides_or_nothing_visible_can_be_typed_to_erase(
    web: WebApp, name: str, typed: str
) -> None:
    made = web.services.personas.create(name, activate=True)
    async with simulated(web) as user:
        await _open(user, made)
        user.find(marker=f"persona-erase-{made.id}").click()
        await user.should_see(marker="erase-confirm")
        (button,) = user.find(marker="erase-confirm").elements
        user.find(marker="erase-name").type("something else")
        await user.should_see(marker="erase-confirm")
        assert not button.enabled
        (field,) = user.find(marker="erase-name").elements
        with user.client:
            field.value = typed  # type: ignore[attr-defined]
        await until(lambda: button.enabled, "the erase button enabled")
        user.find(marker="erase-confirm").click()
        await user.should_see("No persona yet", retries=50)
    assert web.services.personas.find(made.id) is None


async def test_names_and_descriptions_show_overrides_and_invisible_names_as_marks(
    web: WebApp,
) -> None:
    admin = web.services.personas.create("Admin \u202eevil", description="desc \u202egnp.exe")
    blank = web.services.personas.create("\u200b", activate=True)
    async with simulated(web) as user:
        await _open(user, admin, blank)
        await user.should_see("Admin ⟦RLO⟧evil")
        await user.should_see("desc ⟦RLO⟧gnp.exe")
        await user.should_see("⟦ZWSP⟧")
        switch = by_testid(user, "persona-switch")
        assert isinstance(switch, ui.select)  # the header's persona switch
        assert sorted(switch.options.values()) == ["Admin ⟦RLO⟧evil", "⟦ZWSP⟧"]
        with user.scope(marker=f"persona-{admin.id}"):
            user.find("Activate").click()
        await user.should_see("Activated Admin ⟦RLO⟧evil")
        with user.scope(marker=f"persona-{admin.id}"):
            user.find("Delete").click()
        await user.should_see("Delete Admin ⟦RLO⟧evil?")
        texts = [
            e.text
            for e in user.client.elements.values()
            if isinstance(e, ui.label) and not e.is_deleted
        ]
        assert not [t for t in texts if "\u202e" in str(t)]


async def test_the_create_dialog_names_a_refused_field_as_it_shows_it(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/personas")
        user.find("New persona").click()
        user.find(marker="new-name").type("N" * 201)
        user.find(marker="create-confirm").click()
        await user.should_see(marker="create-error")
        (error,) = user.find(marker="create-error").elements
        assert isinstance(error, ui.label)
        assert error.text.startswith("Name: expected text of at most 200 characters")
        (style,) = [
            e
            for e in user.find(kind=ui.input).elements
            if str(e.props.get("label", "")).startswith("Communication style")
        ]
        with user:
            user.find(marker="new-name").elements.pop().value = "Ada"  # type: ignore[attr-defined]
            style.value = "calm\x00"
        user.find(marker="create-confirm").click()
        await until(lambda: error.text.startswith("Communication style: must not contain"))
    assert web.services.personas.list() == []
