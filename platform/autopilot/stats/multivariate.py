"""Placeholder until filled: see issue 2."""

__all__: list[str] = []
