"""The task registry: one entry per task. To add a task, add one `TaskDef` here (and an adapter if its
schema is new); to add a format, extend `Format` and the format layers in `xstilts.data`/`modeling`.
"""

from __future__ import annotations

import difflib

from xstilts.errors import ConfigError
from xstilts.tasks import adapters as a
from xstilts.tasks.base import Format, Role, Source, TaskDef

XTREME = "google/xtreme"

PANX_LANGS = tuple(
    "af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt ru sw ta te th tl "
    "tr ur vi yo zh".split()
)
UDPOS_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip
TATOEBA_ISO3 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
    "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip
XNLI_LANGS = tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split())
PAWSX_LANGS = tuple("de en es fr ja ko zh".split())
XQUAD_LANGS = tuple("ar de el en es hi ro ru th tr vi zh".split())

UPOS = (
    "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
)
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

_MNLI_TRAIN = Source("nyu-mll/glue", "mnli", "train", a.glue_pair("premise", "hypothesis"), a.has_label)
_MNLI_DEV = Source("nyu-mll/glue", "mnli", "validation_matched", a.glue_pair("premise", "hypothesis"), a.has_label)
_SQUAD_TRAIN = Source("rajpurkar/squad", "plain_text", "train", a.squad)
_SQUAD_DEV = Source("rajpurkar/squad", "plain_text", "validation", a.squad)

TASKS: tuple[TaskDef, ...] = (
    # ---- English intermediate tasks -------------------------------------------------------------
    TaskDef(
        name="mnli", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=_MNLI_TRAIN, dev=_MNLI_DEV, evaluate=None, labels=a.NLI_LABELS,
        description="Multi-Genre NLI", domain="mixed genres", difficulty="medium", source="GLUE",
    ),
    TaskDef(
        name="qqp", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy_f1",
        train=Source("nyu-mll/glue", "qqp", "train", a.glue_pair("question1", "question2"), a.has_label),
        dev=Source("nyu-mll/glue", "qqp", "validation", a.glue_pair("question1", "question2"), a.has_label),
        evaluate=None, labels=("not_duplicate", "duplicate"),
        description="Quora Question Pairs", domain="community QA", difficulty="easy", source="GLUE",
    ),
    TaskDef(
        name="sst2", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source("nyu-mll/glue", "sst2", "train", a.glue_single("sentence"), a.has_label),
        dev=Source("nyu-mll/glue", "sst2", "validation", a.glue_single("sentence"), a.has_label),
        evaluate=None, labels=("negative", "positive"),
        description="Stanford Sentiment Treebank (binary)", domain="movie reviews", difficulty="easy",
        source="GLUE",
    ),
    TaskDef(
        name="squad", role=Role.INTERMEDIATE, format=Format.SPAN_QA, metric="squad",
        train=_SQUAD_TRAIN, dev=_SQUAD_DEV, evaluate=None, hparams={"epochs": 2},
        description="SQuAD v1.1", domain="Wikipedia", difficulty="medium", source="Rajpurkar et al. 2016",
    ),
    TaskDef(
        name="hellaswag", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("Rowan/hellaswag", None, "train", a.hellaswag, a.has_label),
        dev=Source("Rowan/hellaswag", None, "validation", a.hellaswag, a.has_label),
        evaluate=None, labels=("0", "1", "2", "3"),
        description="HellaSwag commonsense completion (adversarial filtering)", domain="ActivityNet, WikiHow",
        difficulty="hard", source="Zellers et al. 2019",
    ),
    # ---- XTREME targets --------------------------------------------------------------------------
    TaskDef(
        name="xnli", role=Role.TARGET, format=Format.CLASSIFICATION, metric="accuracy",
        train=_MNLI_TRAIN,
        dev=Source(XTREME, "XNLI", "validation", a.xnli, a.language_is),
        evaluate=Source(XTREME, "XNLI", "test", a.xnli, a.language_is),
        languages=XNLI_LANGS, labels=a.NLI_LABELS, hparams={"epochs": 2},
        description="Cross-lingual NLI (English training data: MNLI)", domain="mixed genres", source="XTREME",
    ),
    TaskDef(
        name="pawsx", role=Role.TARGET, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source(XTREME, "PAWS-X.en", "train", a.pawsx),
        dev=Source(XTREME, "PAWS-X.en", "validation", a.pawsx),
        evaluate=Source(XTREME, "PAWS-X.{lang}", "test", a.pawsx),
        languages=PAWSX_LANGS, labels=("0", "1"), hparams={"epochs": 5},
        description="Cross-lingual paraphrase adversaries", domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="panx", role=Role.TARGET, format=Format.TAGGING, metric="seqeval_f1",
        train=Source(XTREME, "PAN-X.en", "train", a.tagging("ner_tags")),
        dev=Source(XTREME, "PAN-X.en", "validation", a.tagging("ner_tags")),
        evaluate=Source(XTREME, "PAN-X.{lang}", "test", a.tagging("ner_tags")),
        languages=PANX_LANGS, labels=PANX_TAGS, hparams={"epochs": 10},
        description="WikiANN named entities", domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="udpos", role=Role.TARGET, format=Format.TAGGING, metric="seqeval_f1",
        train=Source(XTREME, "udpos.English", "train", a.tagging("pos_tags")),
        dev=Source(XTREME, "udpos.English", "validation", a.tagging("pos_tags")),
        evaluate=Source(XTREME, "udpos.{config_lang}", "test", a.tagging("pos_tags")),
        languages=tuple(UDPOS_NAMES), labels=UPOS, config_langs=UDPOS_NAMES, hparams={"epochs": 10},
        description="Universal Dependencies part-of-speech tags", domain="treebanks", source="XTREME",
    ),
    TaskDef(
        name="xquad", role=Role.TARGET, format=Format.SPAN_QA, metric="squad",
        train=_SQUAD_TRAIN, dev=_SQUAD_DEV,
        evaluate=Source(XTREME, "XQuAD.{lang}", "validation", a.squad),
        languages=XQUAD_LANGS, hparams={"epochs": 2},
        description="Cross-lingual QA over SQuAD paragraphs", domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="tatoeba", role=Role.TARGET, format=Format.RETRIEVAL, metric="tatoeba_accuracy",
        train=None, dev=None,
        evaluate=Source(XTREME, "tatoeba.{config_lang}", "validation", a.tatoeba),
        languages=tuple(TATOEBA_ISO3), config_langs=TATOEBA_ISO3, needs_target_training=False,
        description="Sentence retrieval against English (nearest neighbour)", domain="Tatoeba",
        source="XTREME",
    ),
)  # fmt: skip

REGISTRY: dict[str, TaskDef] = {t.name: t for t in TASKS}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


_ALIASES = {_normalise(name): name for name in REGISTRY}


def get_task(name: str, *, file: str | None = None, field: str | None = None) -> TaskDef:
    """The task called `name` (case, '-' and '_' are ignored: PAWS-X == pawsx), or a ConfigError that
    suggests the closest registered names."""
    key = _ALIASES.get(_normalise(name))
    if key is not None:
        return REGISTRY[key]
    close = difflib.get_close_matches(_normalise(name), list(_ALIASES), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(_ALIASES[c] for c in close)}?" if close else "run `xstilts tasks list`"
    raise ConfigError(f"unknown task '{name}'", file=file, field=field, fix=hint)


def all_tasks() -> list[TaskDef]:
    return list(REGISTRY.values())
