"""Regular expressions written by clients (q `~=`, `idPattern`, subscription `idPattern`), run by RE2.

Python's `re` backtracks: `(a+)+$` against 30 characters takes seconds while holding the GIL, so one
request froze every other one. RE2 matches in time linear in the input and never backtracks. It
accepts the Perl/ECMAScript syntax NGSI-LD patterns are written in, except backreferences and
lookaround assertions (which cannot be matched in linear time): those are answered 400 with the
reason, instead of being run. Other differences from Python's `re`: `\\d`, `\\w`, `\\s` are ASCII
classes (as in ECMAScript), `$` does not match before a final newline, and `\\Z` is written `\\z`.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import re2

__all__ = ["MAX_PATTERN_LENGTH", "Pattern", "RegexError", "compile_pattern"]

MAX_PATTERN_LENGTH = 1024
_CACHE_SIZE = 256
# RE2's own bound on the compiled program (repetitions such as `a{1000}{1000}` exceed it).
_MAX_PROGRAM_BYTES = 8 << 20


class Pattern(Protocol):
    """What callers use of a compiled RE2 pattern."""

    def search(self, text: str) -> Any: ...


class RegexError(ValueError):
    """A pattern RE2 cannot run (syntax error, backreference, lookaround, too large)."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors are answered to the client, not written to stderr
    options.max_mem = _MAX_PROGRAM_BYTES
    return options


_OPTIONS = _options()
_cache: dict[str, Pattern] = {}


def compile_pattern(pattern: str) -> Pattern:
    """The compiled pattern (cached); raises RegexError with a reason a client can act on."""
    compiled = _cache.get(pattern)
    if compiled is not None:
        return compiled
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = cast(Pattern, re2.compile(pattern, options=_OPTIONS))
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) \
            else str(exc)
        raise RegexError(f"{reason} (regular expressions run in linear time: backreferences and "
                         "lookaround assertions are not supported)") from None
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[pattern] = compiled
    return compiled
