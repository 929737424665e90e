"""Pick one resource by id or name, with close-match suggestions and ambiguity errors (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TypeVar

from stackyard.errors import ValidationError

R = TypeVar("R")


def pick(
    candidates: Sequence[R],
    wanted: str,
    *,
    kind: str,
    field: str,
    id_of: Callable[[R], str],
    name_of: Callable[[R], str],
) -> R:
    """The candidate whose id equals `wanted`, else the only one whose name equals it.

    Unknown → ValidationError naming the field and the closest names; several with that name →
    ValidationError listing their ids, so the caller can pass an id instead.
    """
    for candidate in candidates:
        if id_of(candidate) == wanted:
            return candidate
    named = [c for c in candidates if name_of(c) == wanted]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(sorted(id_of(c) for c in named))
        raise ValidationError(
            field, f"{len(named)} {kind}s are named {wanted!r} ({ids}); give the id instead"
        )
    names = sorted({name_of(c) for c in candidates if name_of(c)})
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
    raise ValidationError(field, f"no {kind} named or with id {wanted!r}{hint}")
