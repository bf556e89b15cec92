"""The client's protocol state machine on its own: pushes against a moving head."""

from __future__ import annotations

import pytest

from pjai.schema.records import ROOT, EventRecord, Position
from pjai.sync import validation
from pjai.sync.clientside import MAX_HOLD_S, ClientSession, Fail, Reject, Wait
from pjai.sync.protocol import Events, Push, PushAck, PushRejected, Welcome
from tests.sync.records import records


def ready(head: Position = ROOT, batch: int = 1_000) -> ClientSession:
    session = ClientSession("s1", "c1", batch=batch)
    session.receive(
        Welcome(version=1, backend_id="b1", store_id="s1", head=head, role="write"), ROOT
    )
    return session


def push(session: ClientSession, pending: list[EventRecord]) -> Push:
    sent = session.next_push(pending, pending[0].parent)
    assert sent is not None
    return sent


def test_a_push_overtaken_by_another_event_is_given_up_at_once() -> None:
    session = ready()
    mine = push(session, records(3))
    assert session.pushing
    (theirs,) = records(1, client_id="c2")  # another client's event at the same place
    session.receive(Events(events=[theirs], head=theirs.position, more=False), ROOT)
    assert not session.pushing
    assert session.idle
    # The refusal that follows names a push no longer in flight: nothing to do.
    rejected = PushRejected(id=mine.id, reason="server_ahead", head=theirs.position)
    assert session.receive(rejected, ROOT) == []
    assert session.server_head == theirs.position


def test_the_echo_of_a_push_leaves_it_in_flight() -> None:
    session = ready()
    mine = push(session, records(3))
    session.receive(Events(events=mine.events, head=mine.events[-1].position, more=False), ROOT)
    assert session.pushing  # its acknowledgement is still to come
    session.receive(PushAck(id=mine.id, head=mine.events[-1].position, accepted=3), ROOT)
    assert not session.pushing


def test_a_push_the_server_was_ahead_of_is_followed_by_a_smaller_one() -> None:
    session = ready(batch=800)
    pending = records(1_000)
    sizes = []
    for _ in range(5):
        sent = push(session, pending)
        sizes.append(len(sent.events))
        session.receive(PushRejected(id=sent.id, reason="server_ahead"), ROOT)
    # Halved each time, down to 100 events: fewer events are checked sooner on the
    # server, and so find its head still where they were sent for more often.
    assert sizes == [800, 400, 200, 100, 100]
    sent = push(session, pending)
    session.receive(PushAck(id=sent.id, head=sent.events[-1].position, accepted=100), ROOT)
    assert session.push_size == 200  # each acknowledged push doubles it, up to the batch


def test_the_server_head_never_goes_back() -> None:
    session = ready()
    mine = push(session, records(3))
    later, earlier = Position(9), mine.events[-1].position
    session.receive(PushAck(id=mine.id, head=later, accepted=3), ROOT)
    session.receive(Events(events=mine.events, head=earlier, more=False), ROOT)  # sent before
    assert session.server_head == later


@pytest.mark.parametrize(
    ("retry_after", "held"),
    [(2.5, 2.5), (None, 1.0), (86_400.0, MAX_HOLD_S), (float("inf"), MAX_HOLD_S), (-3.0, 1.0)],
)
def test_a_rate_limited_push_waits_as_the_server_says_within_reason(
    retry_after: float | None, held: float
) -> None:
    # A server that asks for a day's wait (or a negative one) holds pushes a minute.
    session = ready()
    sent = push(session, records(2))
    rejected = PushRejected(id=sent.id, reason="rate_limited", retry_after=retry_after)
    assert session.receive(rejected, ROOT) == [Wait(held)]
    assert session.idle


def test_an_event_refused_that_this_device_finds_valid_stays_pending_and_sync_stops() -> None:
    session = ready()
    sent = push(session, records(3))
    refused = PushRejected(id=sent.id, reason="invalid_event", index=1, detail="not liked")
    (stop,) = session.receive(refused, ROOT)  # no Reject: the event is not given up
    assert isinstance(stop, Fail)
    assert (stop.code, stop.retry) == ("invalid_event", False)
    assert stop.message.startswith(
        f"the sync server refuses event {sent.events[1].id} (not liked), which this device "
        "finds valid: it stays pending"
    )


def test_an_event_refused_that_this_device_finds_invalid_too_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validation, "MAX_EVENT_BYTES", 10)  # every event's too large
    session = ready()
    sent = push(session, records(3))
    refused = PushRejected(id=sent.id, reason="invalid_event", index=1, detail="too large")
    assert session.receive(refused, ROOT) == [
        Reject(sent.events[1].id, "refused by the sync server: too large")
    ]
