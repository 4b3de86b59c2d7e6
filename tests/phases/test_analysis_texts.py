"""The texts the domain-alignment phase compares: English training text per format, the English side of
retrieval tasks (which have no training data), the last stage of a staged task."""

from __future__ import annotations

import pytest

from xstilts.phases.analysis import english_texts
from xstilts.tasks import get_task

FORMATS = ["mnli", "hellaswag", "squad", "udpos", "xcopa", "tatoeba", "lareqa", "bucc"]


@pytest.mark.parametrize("name", FORMATS)
def test_english_texts_of_every_format(name: str, data) -> None:
    texts = english_texts(get_task(name), data, 5)
    assert 0 < len(texts) <= 5 and all(isinstance(t, str) and t.strip() for t in texts)
    assert not any(ch in "".join(texts) for ch in "абвгдежзиклмнопрстуфхцчшщыэюя"), "English side only"


def test_texts_join_the_fields_of_an_example(data) -> None:
    squad = english_texts(get_task("squad"), data, 1)[0]
    assert squad.split("?")[0].startswith(("what", "who")) and squad.count(".") >= 2  # question + context
    choices = english_texts(get_task("hellaswag"), data, 1)[0]
    assert choices.count(".") >= 4  # the context and each ending
