"""The dashboard and the first-run welcome, as a user sees them (no browser)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from nicegui import ui
from nicegui.testing.user import User

from pjai.app import TEMPLATES, DataDir, Memories
from pjai.app.reads import dashboard as reads
from pjai.demo import seed
from pjai.errors import QueryError
from pjai.schema.types import to_iso
from pjai.store import LiveQuery
from pjai.web import WebApp
from pjai.web.shell import STORE_OFF
from tests.web.conftest import simulated

pytestmark = pytest.mark.anyio

WAIT_S = 5.0
"""How long a figure may take to follow a commit."""


async def figure_shows(user: User, testid: str, expected: str) -> None:
    """Wait until the figure ``testid`` reads ``expected`` (exactly)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    seen: list[str] = []
    while True:
        try:
            found = user.find(marker=testid).elements
        except AssertionError:  # none on the page (yet)
            found = set()
        seen = sorted(str(getattr(e, "text", "")) for e in found)
        if seen == [expected]:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{testid} shows {seen}, expected [{expected!r}]")
        await asyncio.sleep(0.02)


def live_memories(web: WebApp, persona_id: str | None = None) -> int:
    """The live memories, of one persona or of all, counted from the store."""
    rows = web.manager.query(
        "SELECT count(*) AS n FROM memories WHERE deleted_at IS NULL "
        "AND (:persona IS NULL OR persona_id = :persona)",
        {"persona": persona_id},
    )
    return int(rows[0].n)


async def test_first_run_welcomes_and_a_persona_made_from_a_template_brings_the_dashboard(
    web: WebApp,
) -> None:
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see("Welcome to PJai")
        await user.should_see("Load demo data")
        await user.should_not_see(marker="persona-count")
        user.find(marker="welcome-name").type("Mira")
        user.find(marker="welcome-template").click()
        user.find("coach").click()
        user.find(marker="welcome-create").click()
        await figure_shows(user, "persona-count", "1")
        await figure_shows(user, "memory-count", "0")
        await user.should_see("No memories yet.")
        await user.should_not_see("Welcome to PJai")
        await user.should_see("· Mira")
    (made,) = web.services.personas.list()
    assert (made.name, made.description) == ("Mira", TEMPLATES["coach"].description)
    assert web.services.personas.active() == made


async def test_a_persona_needs_a_name(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/")
        user.find(marker="welcome-create").click()
        await user.should_see("Give the persona a name.")
    assert web.services.personas.list() == []


async def test_the_demo_data_loads_from_the_welcome_and_its_counts_show(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/")
        user.find(marker="welcome-demo").click()
        await figure_shows(user, "persona-count", str(len(web.services.personas.list())))
        active = web.services.personas.active()
        assert active is not None
        await figure_shows(user, "memory-count", str(live_memories(web, active.id)))
        await figure_shows(user, "memory-count-all", str(live_memories(web)))
        await user.should_see(f"· {active.name}")
        await user.should_see("· all personas")


async def test_when_every_persona_is_deleted_the_welcome_offers_a_new_one_but_not_the_demo(
    web: WebApp,
) -> None:
    made = web.services.personas.create("Mira")
    web.services.personas.delete(made.id)
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see("Every persona here is deleted", retries=50)
        await user.should_not_see("Load demo data")


async def test_a_memory_added_from_python_shows_in_the_counts_without_a_reload(
    web: WebApp,
) -> None:
    ids = seed(web.manager)
    active = web.services.personas.active()
    assert active is not None
    before = live_memories(web, active.id)
    async with simulated(web) as user:
        await user.open("/")
        await figure_shows(user, "memory-count", str(before))
        web.services.memories.add(active.id, "Takes tea without sugar")
        await figure_shows(user, "memory-count", str(before + 1))
        await figure_shows(user, "memory-count-all", str(live_memories(web)))
        # Another persona's memory counts for all personas, not for the active one.
        other = next(pid for pid in ids.values() if pid != active.id)
        web.services.memories.add(other, "Reads in the evening")
        await figure_shows(user, "memory-count-all", str(live_memories(web)))
        await figure_shows(user, "memory-count", str(before + 1))


async def test_switching_the_active_persona_switches_the_persona_figures(web: WebApp) -> None:
    ids = seed(web.manager)
    async with simulated(web) as user:
        await user.open("/")
        active = web.services.personas.active()
        assert active is not None
        await figure_shows(user, "memory-count", str(live_memories(web, active.id)))
        other = next(name for name, pid in ids.items() if pid != active.id)
        web.services.personas.activate(ids[other])
        await figure_shows(user, "memory-count", str(live_memories(web, ids[other])))
        await user.should_see(f"· {other}")


async def test_a_cards_scope_shows_a_direction_override_as_a_mark(web: WebApp) -> None:
    web.services.personas.create("Ada \u202eevil", activate=True)
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see("· Ada ⟦RLO⟧evil")


async def test_a_failing_panel_shows_its_error_while_the_others_render(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(web.manager)

    def broken(*args: object) -> LiveQuery:
        raise QueryError("the timeline is out of order")

    monkeypatch.setattr(reads, "memory_timeline", broken)
    active = web.services.personas.active()
    assert active is not None
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see("memories over time: the timeline is out of order", retries=50)
        await user.should_see("Retry")
        await figure_shows(user, "memory-count", str(live_memories(web, active.id)))
        await figure_shows(user, "persona-count", str(len(web.services.personas.list())))
        await user.should_see(marker="health-score")


def seeded_with_the_store_off(web: WebApp) -> str:
    """The store switched off and the demo data committed: the active persona's id."""
    web.manager.set_flag("use_livestore", False)
    seed(web.manager)
    active = web.services.personas.active()
    assert active is not None
    return active.id


async def test_with_the_store_off_the_banner_shows_and_the_counts_come_from_sql(
    web: WebApp,
) -> None:
    active_id = seeded_with_the_store_off(web)
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see(STORE_OFF)
        await figure_shows(user, "persona-count", str(len(web.services.personas.list())))
        await figure_shows(user, "memory-count", str(live_memories(web, active_id)))
        await user.should_see(reads.STORE_OFF)
        await figure_shows(user, "store-status", "off")
        web.services.memories.add(active_id, "Noted while the store is off")
        await figure_shows(user, "memory-count", str(live_memories(web, active_id)))


async def test_with_the_store_off_the_counts_follow_other_processes_commits(
    web: WebApp,
) -> None:
    # The app looks at SQL's journal now and then, as it looks at the store file.
    active_id = seeded_with_the_store_off(web)
    async with simulated(web) as user:
        await user.open("/")
        await figure_shows(user, "memory-count", str(live_memories(web, active_id)))
        with web.data_dir.open() as elsewhere:
            assert elsewhere.store is None
            Memories(elsewhere).add(active_id, "Committed by another process")
        await figure_shows(user, "memory-count", str(live_memories(web, active_id)))


async def test_the_system_cards_show_store_shards_and_sync(web: WebApp) -> None:
    seed(web.manager)
    async with simulated(web) as user:
        await user.open("/")
        await figure_shows(user, "store-status", "ok")
        await figure_shows(user, "store-events", str(logged_events(web)))
        await figure_shows(user, "shard-status-1", "ok")
        await figure_shows(user, "shard-1-checkpoint", str(logged_events(web)))
        await figure_shows(user, "sync-state", "standalone")


async def events_drawn(user: User, expected: int) -> None:
    """Wait until the events-per-second chart adds up to ``expected`` events."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        (chart,) = user.find(kind=ui.echart, marker="event-rate-chart").elements
        drawn = sum(chart.options["series"][0]["data"])
        if drawn == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the event rate chart shows {drawn} events, expected {expected}")
        await asyncio.sleep(0.02)


def logged_events(web: WebApp) -> int:
    """How many events the store's log holds."""
    return int(web.manager.query("SELECT count(*) AS n FROM pjai_eventlog")[0].n)


async def test_the_event_rate_counts_commits_of_this_app_and_of_other_processes(
    web: WebApp,
) -> None:
    # Everything here is committed within the last minute, so the chart holds it all.
    seed(web.manager)
    active = web.services.personas.active()
    assert active is not None
    async with simulated(web) as user:
        await user.open("/")
        await events_drawn(user, logged_events(web))
        web.services.memories.add(active.id, "Committed by this app")
        await events_drawn(user, logged_events(web))
        with web.data_dir.open() as elsewhere:
            Memories(elsewhere).add(active.id, "Committed by another process")
        await events_drawn(user, logged_events(web))


def test_the_event_rate_counts_each_second_of_the_last_minute() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)

    def second(back: int) -> str:
        return to_iso(now - timedelta(seconds=back))[:19]

    rows = [
        SimpleNamespace(second=second(90), n=7),  # before the window
        SimpleNamespace(second=second(59), n=2),
        SimpleNamespace(second=second(3), n=10),
        SimpleNamespace(second=second(1), n=5),
        SimpleNamespace(second=second(0), n=1),  # the current second, still running
    ]
    rate = reads.event_rate(rows, now)  # type: ignore[arg-type]
    assert len(rate.per_second) == reads.EVENT_WINDOW_S
    assert rate.per_second[0] == 2
    assert rate.per_second[-4:] == [10, 0, 5, 1]
    assert rate.recent == 3.0  # (10 + 5) over the five full seconds before this one
    assert rate.peak == 10
    assert not rate.partial


def test_a_timeline_over_months_is_drawn_in_weeks() -> None:
    def day(text: str, n: int) -> SimpleNamespace:
        return SimpleNamespace(
            bucket=text,
            n=n,
            total=0.5 * n,
            low=0.5,
            high=0.5,
            first=f"{text}T10:00:00+00:00",
            last=f"{text}T11:00:00+00:00",
        )

    short = reads.timeline_points([day("2026-01-05", 2), day("2026-01-07", 1)])  # type: ignore[list-item]
    assert [(p.start, p.added, p.total) for p in short] == [
        (date(2026, 1, 5), 2, 2),
        (date(2026, 1, 7), 1, 3),
    ]
    long = reads.timeline_points(
        [day("2026-01-05", 2), day("2026-01-07", 1), day("2026-06-03", 4)]  # type: ignore[list-item]
    )
    assert [(p.start, p.added, p.total) for p in long] == [
        (date(2026, 1, 5), 3, 3),  # Monday of ISO week 2026-W02
        (date(2026, 6, 1), 4, 7),
    ]


async def test_the_event_rate_follows_the_store_being_switched_off_and_on(web: WebApp) -> None:
    seed(web.manager)
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see(marker="event-rate")
        web.manager.set_flag("use_livestore", False)
        await user.should_see(reads.STORE_OFF, retries=50)
        await user.should_not_see(marker="event-rate")
        await figure_shows(user, "memory-count-all", str(live_memories(web)))
        web.manager.set_flag("use_livestore", True)
        await user.should_see(marker="event-rate", retries=50)
        await events_drawn(user, logged_events(web))


async def test_a_synced_directory_shows_its_sync_state_and_lag(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.flags().set("sync", True)
    with WebApp(data) as web:
        seed(web.manager)
        async with simulated(web) as user:
            await user.open("/")
            # No client has run: nothing is confirmed, the demo's events are pending.
            await figure_shows(user, "sync-state", "not running")
            await figure_shows(user, "sync-lag", "unknown")
            await figure_shows(user, "sync-pending", str(logged_events(web)))
            await figure_shows(user, "sync-confirmed-head", "0")


async def test_a_refused_name_is_said_as_the_welcome_form_names_it(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/")
        user.find(marker="welcome-name").type("M" * 201)
        user.find(marker="welcome-create").click()
        await user.should_see("Name: expected text of at most 200 characters")
        assert not any("v1.PersonaCreated" in m for m in user.notify.messages)
    assert web.services.personas.list() == []
