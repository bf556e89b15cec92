"""Persona templates: starting points for a new persona, as the desktop app offers them.

A template is a description, a communication style and settings (personality and
memory; privacy keeps its defaults) that :meth:`pjai.app.Personas.create` starts from;
a settings file and ``path=value`` edits then change what the template set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pjai.errors import ConfigError

__all__ = ["TEMPLATES", "PersonaTemplate", "template"]


@dataclass(frozen=True, slots=True)
class PersonaTemplate:
    """A named starting point for a persona."""

    name: str
    description: str
    communication_style: str
    settings: dict[str, Any] = field(default_factory=dict)
    """Groups of settings (``personality``, ``memory``), as a settings file holds them."""


_BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def _personality(kind: str, traits: list[str], ocean: tuple[int, ...]) -> dict[str, Any]:
    """A personality: its type, dominant traits and Big Five scores in OCEAN order."""
    big_five = dict(zip(_BIG_FIVE, ocean, strict=True))
    return {"big_five": big_five, "dominant_traits": traits, "type": kind}


TEMPLATES: dict[str, PersonaTemplate] = {
    t.name: t
    for t in (
        PersonaTemplate(
            "assistant",
            "A helpful general assistant: organised, accurate, to the point.",
            "Clear and concise; answers first, then details if asked.",
            {
                "personality": _personality(
                    "helper", ["helpful", "organised", "precise"], (60, 85, 50, 80, 20)
                ),
            },
        ),
        PersonaTemplate(
            "coach",
            "A coach who keeps track of goals and habits and follows up on them.",
            "Encouraging and direct; asks questions, celebrates progress, names next steps.",
            {
                "personality": _personality(
                    "motivator", ["encouraging", "direct", "persistent"], (65, 80, 80, 75, 20)
                ),
                # Goals and commitments matter for weeks: keep more of them hot.
                "memory": {"importance_threshold": 0.4, "capacities": {"hot": 150}},
            },
        ),
        PersonaTemplate(
            "writer",
            "A writing partner for drafts, style and story.",
            "Vivid and thoughtful; offers alternatives and explains choices of words.",
            {
                "personality": _personality(
                    "creative", ["imaginative", "expressive", "curious"], (90, 55, 50, 65, 40)
                ),
                # Drafts and ideas pile up; an old idea may be the one needed.
                "memory": {"importance_threshold": 0.2, "capacities": {"warm": 2_000}},
            },
        ),
        PersonaTemplate(
            "tutor",
            "A patient tutor who remembers what was learned and what is still hard.",
            "Patient and step by step; checks understanding with questions and examples.",
            {
                "personality": _personality(
                    "teacher", ["patient", "structured", "supportive"], (70, 85, 55, 85, 15)
                ),
                "memory": {"importance_threshold": 0.35},
            },
        ),
        PersonaTemplate(
            "companion",
            "A friendly companion for everyday conversation who remembers what matters to you.",
            "Warm and casual; listens, remembers details, asks how things went.",
            {
                "personality": _personality(
                    "friend", ["warm", "empathetic", "playful"], (70, 50, 75, 90, 30)
                ),
                # Personal details keep their value for long: decay recency slowly.
                "memory": {"scoring": {"half_life_days": 90.0}},
            },
        ),
        PersonaTemplate(
            "researcher",
            "A research assistant who collects sources, facts and open questions.",
            "Precise and sceptical; cites sources, separates facts from guesses.",
            {
                "personality": _personality(
                    "analyst", ["analytical", "thorough", "sceptical"], (85, 90, 35, 55, 25)
                ),
                # Facts stay useful: rank by importance more than by recency.
                "memory": {
                    "importance_threshold": 0.25,
                    "capacities": {"warm": 5_000, "cold": 50_000},
                    "max_memories": 50_000,
                    "scoring": {"importance_weight": 0.5, "recency_weight": 0.2},
                },
            },
        ),
    )
}
"""The templates by name."""


def template(name: str) -> PersonaTemplate:
    """The template ``name``, or :class:`~pjai.errors.ConfigError` listing the others."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConfigError(
            f"no persona template {name!r}: use one of {', '.join(TEMPLATES)}"
        ) from None
