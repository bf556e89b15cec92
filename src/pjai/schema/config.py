"""Configuration events: the audit record of a changed setting.

A feature flag set with ``pjai flags set`` or a persona's privacy setting changed
leaves a :class:`ConfigChanged` in the event log, with the value before and after, so
the log, which is the audit trail, shows who changed what and when. The event writes
no table: flags live in ``flags.json`` and privacy settings in the persona's row,
changed by the events that change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from msgspec import Meta

from pjai.schema.event import Context, Event
from pjai.schema.fields import Id
from pjai.schema.limits import INT64_MAX, INT64_MIN
from pjai.schema.ops import Op
from pjai.schema.personas import require_live_persona

__all__ = ["ConfigChanged", "ConfigKey", "ConfigValue"]

ConfigKey = Annotated[
    str, Meta(min_length=1, max_length=128, pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
]
"""A setting's dotted name, e.g. ``flags.use_livestore`` or ``privacy.analytics``."""

ConfigValue = (
    bool
    | Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
    | float
    | Annotated[str, Meta(max_length=1_000)]
    | None
)
"""A setting's value; ``None`` when it had none (a default applied)."""

ChangeSource = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"\S")]
"""Where the change was made, e.g. ``pjai flags set`` or ``web``."""


class ConfigChanged(Event, frozen=True, kw_only=True):
    """A setting changed from ``old`` to ``new``, through ``source``.

    ``persona_id`` names the persona whose setting it is (privacy settings); a
    data-directory setting (a feature flag) names none. A persona's change applies only
    while the persona is live, like the change it records.
    """

    NAME = "v1.ConfigChanged"
    CONFLICT = "precondition"
    key: ConfigKey
    old: ConfigValue
    new: ConfigValue
    source: ChangeSource
    persona_id: Id | None = None

    def materialize(self, ctx: Context) -> Sequence[Op]:
        if self.persona_id is None:
            return []
        return [require_live_persona(self.persona_id)]
