"""Text that no field of the service accepts, for the fuzzing and the rule-by-rule tests."""

from __future__ import annotations

HOSTILE = ["\ud800", "x\udfff", "\udc00\ud800", "a\x00b", "y" * 100_000]
"""Lone surrogates (JSON can write them as escapes, UTF-8 cannot encode them: FastAPI's 422
echoing them was a 500), NUL (PostgreSQL refuses it) and text longer than every limit."""
