"""How the pages write parasitemias and probabilities."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(fraction, digits: int = 1) -> str:
    """0.0213 -> '2.1 %'; None -> '—' (nothing classified yet)."""
    if fraction is None or fraction == "":
        return "—"
    value, digits = float(fraction) * 100, int(digits)
    # A model's probability is never certainty: rounding must not print 0 % or 100 % for what is not.
    smallest = 10.0**-digits
    if 0 < value < smallest:
        return f"< {smallest:.{digits}f} %"
    if 100 - smallest < value < 100:
        return f"> {100 - smallest:.{digits}f} %"
    return f"{value:.{digits}f} %"


@register.filter
def at_coverage(metrics, coverage: str):
    """A card's accuracy on the surest share of cells ('0.9': the surest 90 %); None where the card predates it."""
    return (metrics or {}).get("accuracy_at_coverage", {}).get(str(coverage))
