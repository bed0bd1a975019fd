"""How the pages write parasitemias and probabilities."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(fraction, digits: int = 1) -> str:
    """0.0213 -> '2.1 %'; None -> '—' (nothing classified yet)."""
    if fraction is None or fraction == "":
        return "—"
    return f"{float(fraction) * 100:.{int(digits)}f} %"
