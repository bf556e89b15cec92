"""A persona's ``privacy.data_collection`` setting, as the commands that make memories of
what the persona is told check it: ingesting a conversation, a plugin's add."""

from __future__ import annotations

from sqlalchemy import select

from pjai.errors import PrivacyError
from pjai.memory.backend import Backend
from pjai.schema.tables import personas

__all__ = ["check_collection_allowed"]


def check_collection_allowed(
    backend: Backend,
    persona_id: str,
    *,
    refused: str = "the conversation is kept and no memory is made of it",
) -> None:
    """:class:`~pjai.errors.PrivacyError` naming the persona, the setting and what is
    ``refused`` if the persona's ``privacy.data_collection`` is off."""
    rows = backend.query(
        select(personas.c.name, personas.c.privacy_data_collection).where(
            personas.c.id == persona_id
        )
    )
    if rows and not rows[0].privacy_data_collection:
        raise PrivacyError(
            f"{rows[0].name} ({persona_id}) has data collection off "
            f"(privacy.data_collection): {refused}; turn it on with `pjai persona update "
            "PERSONA --set privacy.data_collection=true`"
        )
