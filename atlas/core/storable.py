"""Whether text from a client can be stored: PostgreSQL refuses NUL characters, and JSON's lone \\ud800 escapes make
strings no database can encode. Checked at the edges (API bodies and URLs, page forms) so they are a 4xx, not a 500."""
from __future__ import annotations

from typing import Any, Iterator


def strings(value: Any) -> Iterator[str]:
    """Every string in parsed JSON, keys included (iteratively: the document may be deeply nested)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            pending.extend(item)


def storable(text: str) -> bool:
    """No NUL and no unpaired surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def all_storable(value: Any) -> bool:
    """Whether every string in a parsed JSON value can be stored."""
    return all(storable(text) for text in strings(value))
