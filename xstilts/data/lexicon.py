"""The synthetic languages behind the fixtures.

One concept inventory, realised in the fixture languages (`xstilts.tasks.languages`): English, two
Latin-script languages (de, es) that share about half of their content words with English (like cognates
and loans), and one Cyrillic-script language (ru) that shares none. Function words differ in every
language, es puts adjectives after nouns and ru has no articles. Sentences are built from
language-independent clauses, so every dataset is parallel across languages and zero-shot transfer can
only come from what the encoder learned: that is what lets a test show a real intermediate-task gain.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

SHARED_WITH_ENGLISH = {"de": 0.5, "es": 0.5, "ru": 0.0}

NOUNS = (
    "dog cat bird horse cow fish lion tiger bear wolf fox mouse rabbit duck goat sheep frog snake owl deer "
    "teacher doctor farmer baker driver pilot singer child girl boy"
).split()
VERBS = "chases sees likes follows helps finds watches feeds calls visits meets paints".split()
ADJECTIVES = "big small old young happy quiet brave lazy clever angry".split()
POSITIVE = "good great wonderful lovely excellent".split()
NEGATIVE = "bad awful terrible boring poor".split()
# Meaning-changing cue words: negation turns a statement into its contradiction, hedges make it
# unverifiable. NLI teaches an encoder to notice them; paraphrase detection needs the same skill.
NEGATIONS = "not never".split()
HEDGES = "maybe perhaps".split()
# Loanword-like concepts every Latin-script fixture language shares with English.
ALWAYS_SHARED = {"not", "maybe"}
FIRST_NAMES = "anna maria peter john paul lucas sofia elena david carlos ivan olga".split()
SURNAMES = "smith miller garcia novak weber petrov".split()
PLACES = "paris berlin madrid moscow london rome vienna prague lisbon oslo".split()
ORGS = "acme globex initech umbrella stark wayne cyberdyne".split()

FUNCTION_WORDS = {
    "en": {"the": "the", "in": "in", "and": "and", "what": "what", "who": "who", "does": "does", "is": "is",
           "at": "at"},
    "de": {"the": "der", "in": "im", "and": "und", "what": "was", "who": "wer", "does": "tut", "is": "ist",
           "at": "bei"},
    "es": {"the": "el", "in": "en", "and": "y", "what": "que", "who": "quien", "does": "hace", "is": "es",
           "at": "junto"},
    "ru": {"the": "", "in": "в", "and": "и", "what": "что", "who": "кто", "does": "делает", "is": "есть",
           "at": "у"},
}  # fmt: skip

_CYRILLIC = {
    "a": "а", "b": "б", "c": "к", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и", "j": "ж",
    "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к", "r": "р", "s": "с", "t": "т",
    "u": "у", "v": "в", "w": "в", "x": "кс", "y": "ы", "z": "з",
}  # fmt: skip
_ONSETS = "b d f g k l m n p r s t v z br dr gr kr st tr pl sl".split()
_VOWELS = "a e i o u ei au".split()


def _stable_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def _pseudo_word(concept: str, lang: str) -> str:
    rng = random.Random(_stable_int("word", concept, lang))
    syllables = rng.randint(2, 3)
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice("nrsl")


def cyrillic(word: str) -> str:
    return "".join(_CYRILLIC.get(ch, ch) for ch in word)


def content_word(concept: str, lang: str) -> str:
    """A content word in `lang`: the English word (shared), or the language's own form."""
    if lang == "en":
        return concept
    shared = (_stable_int("share", concept, lang) % 1000) / 1000 < SHARED_WITH_ENGLISH[lang]
    shared = shared or (concept in ALWAYS_SHARED and lang != "ru")
    word = concept if shared else _pseudo_word(concept, lang)
    return cyrillic(word) if lang == "ru" else word


def name_word(name: str, lang: str) -> str:
    """Proper names are the same in Latin-script languages and transliterated in Russian."""
    return cyrillic(name) if lang == "ru" else name


def function_word(key: str, lang: str) -> str:
    return FUNCTION_WORDS[lang][key]


@dataclass(frozen=True)
class Clause:
    subject: str
    verb: str
    obj: str
    adjective: str | None = None
    place: str | None = None

    def swapped(self) -> Clause:
        return Clause(self.obj, self.verb, self.subject, None, self.place)


def noun_phrase(noun: str, lang: str, adjective: str | None = None) -> list[tuple[str, str]]:
    """(word, UPOS) pairs of a noun phrase."""
    out: list[tuple[str, str]] = []
    det = function_word("the", lang)
    if det:
        out.append((det, "DET"))
    adj = [(content_word(adjective, lang), "ADJ")] if adjective else []
    noun_tok = [(content_word(noun, lang), "NOUN")]
    out += noun_tok + adj if lang == "es" else adj + noun_tok
    return out


def realise(
    clause: Clause,
    lang: str,
    *,
    place_first: bool = False,
    negation: str | None = None,
    hedge: str | None = None,
) -> list[tuple[str, str]]:
    """A clause as (word, UPOS) pairs, ending with '.' (optionally negated after the verb, or hedged)."""
    place = []
    if clause.place:
        place = [(function_word("in", lang), "ADP"), (name_word(clause.place, lang), "PROPN")]
    body = (
        noun_phrase(clause.subject, lang, clause.adjective)
        + [(content_word(clause.verb, lang), "VERB")]
        + ([(content_word(negation, lang), "PART")] if negation else [])
        + noun_phrase(clause.obj, lang)
    )
    words = place + body if place_first else body + place
    if hedge:
        words = [(content_word(hedge, lang), "ADV")] + words
    return words + [(".", "PUNCT")]


def words(pairs: list[tuple[str, str]]) -> list[str]:
    return [w for w, _ in pairs]


def text(pairs: list[tuple[str, str]]) -> str:
    return " ".join(words(pairs))


def random_clause(rng: random.Random, *, adjective: bool = True, place: bool = True) -> Clause:
    subject, obj = rng.sample(NOUNS, 2)
    return Clause(
        subject=subject,
        verb=rng.choice(VERBS),
        obj=obj,
        adjective=rng.choice(ADJECTIVES) if adjective and rng.random() < 0.7 else None,
        place=rng.choice(PLACES) if place and rng.random() < 0.5 else None,
    )


def all_words(lang: str) -> list[str]:
    """Every word form of a language (for tokenizer training)."""
    concepts = NOUNS + VERBS + ADJECTIVES + POSITIVE + NEGATIVE + NEGATIONS + HEDGES
    names = FIRST_NAMES + SURNAMES + PLACES + ORGS
    return (
        [content_word(c, lang) for c in concepts]
        + [name_word(n, lang) for n in names]
        + [w for w in FUNCTION_WORDS[lang].values() if w]
    )


def attribute(noun: str, adjective: str, lang: str) -> list[tuple[str, str]]:
    """'the <noun> is <adjective> .' as (word, UPOS) pairs (multiple-choice endings, COPA alternatives)."""
    verb = [(function_word("is", lang), "AUX"), (content_word(adjective, lang), "ADJ"), (".", "PUNCT")]
    return noun_phrase(noun, lang) + verb
