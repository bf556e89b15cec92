"""Consent records: a persona's data subject grants or withdraws consent for a purpose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from msgspec import Meta

from pjai.schema.event import Context, Event
from pjai.schema.fields import Id
from pjai.schema.ops import Delete, Insert, Op
from pjai.schema.personas import require_live_persona

__all__ = ["ConsentRecorded"]

Purpose = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
"""What the consent is for, as a short key: ``memory``, ``analytics``, ``research``."""

Version = Annotated[str, Meta(min_length=1, max_length=32)]
"""Which text of the notice or policy was agreed to (or withdrawn from)."""


class ConsentRecorded(Event, frozen=True, kw_only=True):
    """The data subject granted (or withdrew) consent for ``purpose`` under the notice
    ``version``. The newest record per purpose is the consent in force; every record
    stays in the audit trail."""

    NAME = "v1.ConsentRecorded"
    CONFLICT = "last_writer_wins"
    persona_id: Id
    purpose: Purpose
    granted: bool
    version: Version

    def materialize(self, ctx: Context) -> Sequence[Op]:
        key = {"persona_id": self.persona_id, "purpose": self.purpose}
        row = {**key, "granted": self.granted, "version": self.version, "recorded_at": ctx.at}
        return [
            require_live_persona(self.persona_id),
            Delete("consents", key),
            Insert("consents", row),
        ]
