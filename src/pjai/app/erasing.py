"""Erasures that still owe a rewrite: a mark in the data directory from just before an
erasure commits its event (or a key exchange destroys the keys of a persona erased
elsewhere) until every file is rewritten.

Without a key ring, or once the keys are gone, nothing else tells that an erasure
stopped before the store, the SQL primary, the vectors and the import report were
rewritten, and freed pages of those files keep the persona's rows in plaintext. The
mark does: :func:`pjai.app.privacy.finish_erasures` (run on opening the directory)
finishes the rewrite, and the privacy report lists the erasure as unfinished until then.

One small file per persona, ``erasing-<digest>.json`` beside the store, holding its
id: made with a link (on the disk before the event is committed, or the keys go) and
removed by name, so that several erasures can be owed at once and processes marking
and clearing at once need no lock. An erasure about to commit its event that finds the
mark there makes one of its own beside it (``erasing-<digest>.<random>.json``), as does
a key exchange destroying the persona's keys: an erasure in another process whose
event then fails takes back only the mark it made, and the rewrite stays owed. A
file, not a row in the store or the key ring: it is there in a directory with the
store switched off or without a key ring, and no repair rebuilds it away.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from pjai.errors import ConfigError
from pjai.files import create_text, fsync_path, json_value, written_beside

__all__ = [
    "ERASING_PREFIX",
    "Owed",
    "copies_left",
    "only_copies_left",
    "owe_rewrite",
    "rewrite_done",
    "rewrites_owed",
    "take_back",
]

ERASING_PREFIX = "erasing-"
"""The start of the name of each mark in a data directory."""


@dataclass(frozen=True, slots=True)
class Owed:
    """What :func:`owe_rewrite` did."""

    before: bool
    """Whether the rewrite was owed already: a mark of the persona was there (an
    erasure of it stopped, or could not rewrite a file, or is under way elsewhere)."""
    mark: Path | None
    """The mark this call made, which it alone takes back (:func:`take_back`); ``None``
    when it made none (one was there, and none of its own was asked for)."""


def owe_rewrite(directory: Path, persona_id: str, *, own: bool = True) -> Owed:
    """Mark, durably, that the erasure of ``persona_id`` owes the rewrite of the files in
    ``directory``, before its event is committed or its keys go. With ``own``, a mark of
    this call's own even when one is there: the one there may be that of an erasure in
    another process whose event is yet to fail, which takes it back while the persona's
    row is there. Without (an erasure finished for a persona with no row, which no
    other erasure takes a mark back for), none more.
    :class:`~pjai.errors.ConfigError` when the directory cannot be written."""
    path = _mark(directory, persona_id)
    plain = json.dumps({"persona_id": persona_id}) + "\n"
    try:
        if create_text(path, plain):
            return Owed(before=False, mark=path)
        if _marks(directory).get(persona_id) is not None:
            # It said only damaged copies were left: this erasure rewrites again (the
            # persona was made anew meanwhile), and until it has, a rewrite is owed.
            _replace_durably(path, plain)
        if not own:
            return Owed(before=True, mark=None)
        mine = path.with_name(f"{path.stem}.{secrets.token_hex(8)}.json")
        create_text(mine, plain)
        return Owed(before=True, mark=mine)
    except OSError as exc:
        raise ConfigError(
            f"cannot note in {directory} that the erasure of {persona_id!r} owes a rewrite "
            f"({exc.strerror or exc}): make the directory writable and erase it again"
        ) from exc


def take_back(owed: Owed) -> None:
    """Remove the mark :func:`owe_rewrite` made for an erasure whose event was not
    committed (nothing was deleted by it); another erasure's mark stays."""
    if owed.mark is not None:
        owed.mark.unlink(missing_ok=True)


def rewrite_done(directory: Path, persona_id: str) -> None:
    """Clear the persona's marks: every file is rewritten. Not flushed to the disk: a
    mark that comes back after a crash only costs one more rewrite."""
    for path in _marks_of(directory, persona_id):
        path.unlink(missing_ok=True)


def only_copies_left(directory: Path, persona_id: str) -> None:
    """Note in the mark of ``persona_id`` that every file PJai rewrites is rewritten and
    only damaged copies that a repair set aside still hold its rows: deleting them, not
    another rewrite, finishes the erasure (:func:`copies_left`)."""
    text = json.dumps({"persona_id": persona_id, "left": _COPIES}) + "\n"
    path = _mark(directory, persona_id)
    _replace_durably(path, text)
    for other in _marks_of(directory, persona_id):
        if other != path:
            other.unlink(missing_ok=True)


def copies_left(directory: Path) -> set[str]:
    """The personas of ``directory`` whose erasure waits only for damaged copies to be
    deleted (:func:`only_copies_left`)."""
    return {p for p, left in _marks(directory).items() if left == _COPIES}


def rewrites_owed(directory: Path) -> list[str]:
    """The personas whose erasure owes a rewrite in ``directory`` (or waits for damaged
    copies to be deleted), by id."""
    return sorted(_marks(directory))


_COPIES = "damaged copies"


def _replace_durably(path: Path, text: str) -> None:
    """Put ``text`` in place of the mark at ``path``, on the disk when this returns: a
    mark torn by a crash would refuse the directory's opening."""
    with written_beside(path, text, durable=True) as temporary:
        temporary.replace(path)
    fsync_path(path.parent)


def _marks(directory: Path) -> dict[str, str | None]:
    """Each marked persona, with what its mark says is left (``None``: the rewrite)."""
    owed: dict[str, str | None] = {}
    for path in directory.glob(f"{ERASING_PREFIX}*.json"):  # a writer's temporary starts with "."
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue  # cleared meanwhile
        except (OSError, UnicodeDecodeError) as exc:
            raise _not_a_mark(path, str(exc)) from exc
        try:
            mark = json_value(text)
            persona_id = mark["persona_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise _not_a_mark(path, f"no persona id in {text[:80]!r}") from exc
        if not isinstance(persona_id, str):
            raise _not_a_mark(path, f"persona id {persona_id!r} is not text")
        left = mark.get("left")
        left = left if isinstance(left, str) else None
        if persona_id not in owed or left is None:  # a rewrite any of its marks owes
            owed[persona_id] = left
    return owed


def _mark(directory: Path, persona_id: str) -> Path:
    # A digest: an id (a desktop import's, or a peer's) may hold any character.
    digest = hashlib.sha256(persona_id.encode()).hexdigest()[:32]
    return directory / f"{ERASING_PREFIX}{digest}.json"


def _marks_of(directory: Path, persona_id: str) -> list[Path]:
    """The persona's mark and those erasures made beside it (:func:`owe_rewrite`)."""
    path = _mark(directory, persona_id)
    return [path, *directory.glob(f"{path.stem}.*.json")]


def _not_a_mark(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"{path} does not read as the mark of an erasure that owes a rewrite ({why}); "
        "delete it, then run `pjai privacy erase ID --yes` again for the erasures "
        "`pjai privacy report` lists"
    )
