"""The API's request parsers (a module of its own: DRF's views read their settings at import)."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's, with JSON nested deeper than Python can read answered as any other bad JSON (DRF's
    catches only ``ValueError``; ``[[[…`` 200,000 deep raised ``RecursionError``, a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply to read.") from None
