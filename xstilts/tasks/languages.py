"""The languages the offline fixtures are written in: English and three synthetic languages that
`xstilts.data.lexicon` realises (two Latin-script ones that share content words with English, one
Cyrillic-script one that shares none). The registry reads it to say which of a task's languages have
fixtures; the lexicon and the fixture writers read it to build them."""

from __future__ import annotations

FIXTURE_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "ru")
