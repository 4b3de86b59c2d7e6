"""The task registry: one entry per task. To add a task, add one `TaskDef` here (and an adapter if its
schema is new); to add a format, extend `Format` and the format layers in `xstilts.data`/`modeling`.

Multi-task settings are sweep-level mixtures, not tasks: jiant's "full ANLI" (ANLI+) is
`intermediate: [{name: anli-plus, tasks: [snli, mnli, anli-r1, anli-r2, anli-r3]}]` (proportional sampling;
here one head per task, where jiant shares one NLI head).
"""

from __future__ import annotations

import difflib

from xstilts.errors import ConfigError
from xstilts.tasks import adapters as a
from xstilts.tasks import readers as r
from xstilts.tasks.base import Format, Role, Source, TaskDef
from xstilts.tasks.languages import FIXTURE_LANGUAGES

XTREME = "google/xtreme"

PANX_LANGS = tuple(
    "af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt ru sw ta te th "
    "tl tr ur vi yo zh".split()
)
PANX_XTREME_R_ADDED = tuple("qu pl uk az lt pa gu ro".split())
UDPOS_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip
# XTREME-R's UD-POS additions (UD 2.7), not in google/xtreme: every test treebank of the language in the
# hub's universal_dependencies (UD 2.7), concatenated as XTREME does.
UD_TREEBANKS = {
    "lt": ("lt_alksnis", "lt_hse"), "pl": ("pl_lfg", "pl_pdb", "pl_pud"), "uk": ("uk_iu",), "wo": ("wo_wtb",),
    "ro": ("ro_nonstandard", "ro_rrt", "ro_simonero"),
}  # fmt: skip
TATOEBA_ISO3 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
    "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip
TATOEBA_XTREME_R_ISO3 = {"az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron"}
XNLI_LANGS = tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split())
PAWSX_LANGS = tuple("de en es fr ja ko zh".split())
XQUAD_LANGS = tuple("ar de el en es hi ru th tr vi zh".split())  # XTREME; XTREME-R adds ro
MLQA_LANGS = tuple("ar de en es hi vi zh".split())
TYDIQA_LANGS = tuple(a.TYDIQA_PREFIX)
BUCC_LANGS = ("de", "fr", "ru", "zh")
XCOPA_LANGS = tuple("et ht id it qu sw ta th tr vi zh".split())
LAREQA_LANGS = tuple("ar de el en es hi ru th tr vi zh".split())
MEWSLI_X_LANGS = tuple("ar de en es fa ja pl ro ta tr uk".split())

UPOS = "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

GLUE = "nyu-mll/glue"
_MNLI_TRAIN = Source(GLUE, "mnli", "train", a.glue_pair("premise", "hypothesis"), a.has_label)
_MNLI_DEV = Source(GLUE, "mnli", "validation_matched", a.glue_pair("premise", "hypothesis"), a.has_label)
_SQUAD_TRAIN = Source("rajpurkar/squad", "plain_text", "train", a.squad)
_SQUAD_DEV = Source("rajpurkar/squad", "plain_text", "validation", a.squad)
_SIQA_TRAIN = Source("allenai/social_i_qa", None, "train", a.social_iqa, a.has_label)
_SIQA_DEV = Source("allenai/social_i_qa", None, "validation", a.social_iqa, a.has_label)
_COPA_TRAIN = Source("aps/super_glue", "copa", "train", a.copa, a.has_label)
_COPA_DEV = Source("aps/super_glue", "copa", "validation", a.copa, a.has_label)
_CCG = "ccgbank"
_NLI_PAIR = a.glue_pair("premise", "hypothesis")
_MEWSLI_X = "mewsli-x"
_BUCC = "bucc2018"
MLM = "mlm"
BENCHMARKS = ("xtreme", "xtreme-r")


def _bucc_files(split: str) -> Source:
    """A split of the original BUCC 2018 files ("sample" = dev, "training" = test)."""
    return Source(_BUCC, None, "{lang}-en." + split, a.bitext, reader=r.bucc_rows, path_key="bucc_path")


def _glue(config: str, adapter, dev_split: str = "validation") -> tuple[Source, Source]:
    train = Source(GLUE, config, "train", adapter, a.has_label)
    return train, Source(GLUE, config, dev_split, adapter, a.has_label)


def _anli(rnd: int, difficulty: str) -> TaskDef:
    adapt = a.glue_pair("premise", "hypothesis")
    mixture = " ANLI+ is the sweep mixture `tasks: [snli, mnli, anli-r1, anli-r2, anli-r3]`."
    return TaskDef(
        name=f"anli-r{rnd}", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source("facebook/anli", "plain_text", f"train_r{rnd}", adapt, a.has_label),
        dev=Source("facebook/anli", "plain_text", f"dev_r{rnd}", adapt, a.has_label),
        evaluate=None, labels=a.NLI_LABELS,
        description=f"Adversarial NLI, round {rnd} (human-and-model-in-the-loop; later rounds fool stronger "
        f"models).{mixture}",
        domain="Wikipedia" if rnd < 3 else "Wikipedia, news, fiction, spoken, procedural",
        difficulty=difficulty, source="Nie et al. 2020",
    )  # fmt: skip


def _mlqa_gxlt(question_lang: str) -> TaskDef:
    """MLQA's generalised cross-lingual transfer: questions in one language, contexts in every language
    (the task's languages are the context languages; answers are normalised by the context language)."""
    return TaskDef(
        name=f"mlqa-gxlt-{question_lang}", role=Role.TARGET, format=Format.SPAN_QA, metric="mlqa",
        train=_SQUAD_TRAIN, dev=_SQUAD_DEV,
        evaluate=Source(XTREME, "MLQA.{lang}." + question_lang, "test", a.squad),
        languages=MLQA_LANGS, hparams={"epochs": 2},
        description=f"MLQA G-XLT: questions in {question_lang}, contexts in each language (English training "
        "data: SQuAD v1.1)",
        domain="Wikipedia", source="Lewis et al. 2020",
    )  # fmt: skip


_INTERMEDIATE: tuple[TaskDef, ...] = (
    TaskDef(
        name="mnli", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=_MNLI_TRAIN, dev=_MNLI_DEV, evaluate=None, labels=a.NLI_LABELS,
        description="Multi-Genre NLI", domain="mixed genres", difficulty="medium", source="GLUE",
    ),
    TaskDef(
        name="qqp", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy_f1",
        train=Source(GLUE, "qqp", "train", a.glue_pair("question1", "question2"), a.has_label),
        dev=Source(GLUE, "qqp", "validation", a.glue_pair("question1", "question2"), a.has_label),
        evaluate=None, labels=("not_duplicate", "duplicate"),
        description="Quora Question Pairs", domain="community QA", difficulty="easy", source="GLUE",
    ),
    TaskDef(
        name="sst2", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source(GLUE, "sst2", "train", a.glue_single("sentence"), a.has_label),
        dev=Source(GLUE, "sst2", "validation", a.glue_single("sentence"), a.has_label),
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
    _anli(1, "hard"),
    _anli(2, "harder"),
    _anli(3, "hardest"),
    TaskDef(
        name="snli", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source("stanfordnlp/snli", "plain_text", "train", _NLI_PAIR, a.has_label),
        dev=Source("stanfordnlp/snli", "plain_text", "validation", _NLI_PAIR, a.has_label),
        evaluate=None, labels=a.NLI_LABELS,
        description="Stanford NLI (label -1, no gold consensus, is dropped)", domain="image captions",
        difficulty="easy", source="Bowman et al. 2015",
    ),
    TaskDef(
        name="ccg", role=Role.INTERMEDIATE, format=Format.TAGGING, metric="token_accuracy",
        train=Source(_CCG, None, "train", a.tagging("tag_ids"), reader=r.ccg_rows, path_key="ccg_path"),
        dev=Source(_CCG, None, "dev", a.tagging("tag_ids"), reader=r.ccg_rows, path_key="ccg_path"),
        evaluate=None, label_reader=r.ccg_labels,
        description="CCG supertagging (CCGbank, LDC-licensed: jiant's TSV files from `data.ccg_path`; the "
        "supertag set comes from its tags_to_id.json, 1,363 tags in jiant)",
        domain="Wall Street Journal", difficulty="medium", source="Hockenmaier & Steedman 2007",
    ),
    TaskDef(
        name="commonsenseqa", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("tau/commonsense_qa", None, "train", a.commonsense_qa, a.has_answer_key),
        dev=Source("tau/commonsense_qa", None, "validation", a.commonsense_qa, a.has_answer_key),
        evaluate=None, labels=tuple("ABCDE"),
        description="CommonsenseQA (5 choices, answerKey letter)", domain="ConceptNet", difficulty="hard",
        source="Talmor et al. 2019",
    ),
    TaskDef(
        name="cosmosqa", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("allenai/cosmos_qa", None, "train", a.cosmos_qa, a.has_label),
        dev=Source("allenai/cosmos_qa", None, "validation", a.cosmos_qa, a.has_label),
        evaluate=None, labels=("0", "1", "2", "3"),
        description="Cosmos QA: commonsense reading comprehension (4 choices)", domain="personal narratives",
        difficulty="hard", source="Huang et al. 2019",
    ),
    TaskDef(
        name="squad-v2", role=Role.INTERMEDIATE, format=Format.SPAN_QA, metric="squad_v2",
        train=Source("rajpurkar/squad_v2", "squad_v2", "train", a.squad),
        dev=Source("rajpurkar/squad_v2", "squad_v2", "validation", a.squad), evaluate=None,
        hparams={"epochs": 2},
        description="SQuAD v2.0: unanswerable questions are trained to the CLS token and scored with the "
        "empty answer", domain="Wikipedia", difficulty="hard", source="Rajpurkar et al. 2018",
    ),
    TaskDef(
        name="swag", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("allenai/swag", "regular", "train", a.swag, a.has_label),
        dev=Source("allenai/swag", "regular", "validation", a.swag, a.has_label),
        evaluate=None, labels=("0", "1", "2", "3"),
        description="SWAG grounded commonsense inference (HellaSwag's easier predecessor)",
        domain="video captions", difficulty="medium", source="Zellers et al. 2018",
    ),
    TaskDef(
        name="rte", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=_glue("rte", a.glue_pair("sentence1", "sentence2"))[0],
        dev=_glue("rte", a.glue_pair("sentence1", "sentence2"))[1],
        evaluate=None, labels=("entailment", "not_entailment"),
        description="Recognizing Textual Entailment (small)", domain="news, Wikipedia", difficulty="medium",
        source="GLUE",
    ),
    TaskDef(
        name="boolq", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source("google/boolq", None, "train", a.boolq),
        dev=Source("google/boolq", None, "validation", a.boolq),
        evaluate=None, labels=("False", "True"),
        description="BoolQ yes/no questions over a passage", domain="Wikipedia, search queries",
        difficulty="medium", source="Clark et al. 2019",
    ),
    TaskDef(
        name="piqa", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("ybisk/piqa", None, "train", a.piqa, a.has_label),
        dev=Source("ybisk/piqa", None, "validation", a.piqa, a.has_label),
        evaluate=None, labels=("sol1", "sol2"),
        description="Physical Interaction QA (2 solutions)", domain="instructables", difficulty="hard",
        source="Bisk et al. 2020",
    ),
    TaskDef(
        name="siqa", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=_SIQA_TRAIN, dev=_SIQA_DEV, evaluate=None, labels=("1", "2", "3"),
        description="Social IQa (3 choices; XTREME-R's first XCOPA training stage)",
        domain="social situations", difficulty="medium", source="Sap et al. 2019",
    ),
    TaskDef(
        name="winogrande", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("allenai/winogrande", "winogrande_xl", "train", a.winogrande, a.has_answer),
        dev=Source("allenai/winogrande", "winogrande_xl", "validation", a.winogrande, a.has_answer),
        evaluate=None, labels=("1", "2"),
        description="WinoGrande pronoun resolution (adversarially filtered, XL training set)",
        domain="crowdsourced sentences", difficulty="hard", source="Sakaguchi et al. 2020",
    ),
    TaskDef(
        name="cola", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="mcc",
        train=_glue("cola", a.glue_single("sentence"))[0], dev=_glue("cola", a.glue_single("sentence"))[1],
        evaluate=None, labels=("unacceptable", "acceptable"),
        description="Corpus of Linguistic Acceptability (Matthews correlation)", domain="linguistics papers",
        difficulty="medium", source="GLUE",
    ),
    TaskDef(
        name="mrpc", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy_f1",
        train=_glue("mrpc", a.glue_pair("sentence1", "sentence2"))[0],
        dev=_glue("mrpc", a.glue_pair("sentence1", "sentence2"))[1],
        evaluate=None, labels=("not_equivalent", "equivalent"),
        description="Microsoft Research Paraphrase Corpus", domain="news", difficulty="easy", source="GLUE",
    ),
    TaskDef(
        name="stsb", role=Role.INTERMEDIATE, format=Format.REGRESSION, metric="pearson_spearman",
        train=Source(GLUE, "stsb", "train", a.glue_regression("sentence1", "sentence2")),
        dev=Source(GLUE, "stsb", "validation", a.glue_regression("sentence1", "sentence2")), evaluate=None,
        description="Semantic Textual Similarity Benchmark (regression 0..5; (Pearson + Spearman) / 2)",
        domain="news, captions, forums", difficulty="medium", source="GLUE",
    ),
    TaskDef(
        name="race", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=Source("ehovy/race", "all", "train", a.race),
        dev=Source("ehovy/race", "all", "validation", a.race),
        evaluate=None, labels=tuple("ABCD"),
        description="RACE reading comprehension from English exams (middle + high school)", domain="exams",
        difficulty="medium", source="Lai et al. 2017",
    ),
    TaskDef(
        name="qnli", role=Role.INTERMEDIATE, format=Format.CLASSIFICATION, metric="accuracy",
        train=_glue("qnli", a.glue_pair("question", "sentence"))[0],
        dev=_glue("qnli", a.glue_pair("question", "sentence"))[1],
        evaluate=None, labels=("entailment", "not_entailment"),
        description="Question NLI (SQuAD sentences)", domain="Wikipedia", difficulty="easy", source="GLUE",
    ),
    TaskDef(
        name=MLM, role=Role.INTERMEDIATE, format=Format.MLM, metric="mlm_loss",
        train=Source("mlm-corpus", None, "train", a.text_line, reader=r.corpus_rows, path_key="mlm_corpus"),
        dev=None, evaluate=None,
        description="Multilingual masked language modelling on the sweep's `mlm.corpus` (one example per "
        "line; 15% of tokens masked, BERT's 80/10/10), as an extra task in an intermediate mixture "
        "(`tasks: [mnli, mlm]`); the head starts from the encoder's pretrained LM head",
        domain="the MLM corpus", source="Phang et al. 2020 (X-STILTs' MLM alternative)",
    ),
    TaskDef(
        name="copa", role=Role.INTERMEDIATE, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=_COPA_TRAIN, dev=_COPA_DEV, evaluate=None, labels=("choice1", "choice2"),
        description="Choice Of Plausible Alternatives (cause / effect; 400 training examples)",
        domain="commonsense causality", difficulty="medium", source="SuperGLUE",
    ),
)  # fmt: skip

_XTREME_TARGETS: tuple[TaskDef, ...] = (
    TaskDef(
        name="xnli", role=Role.TARGET, format=Format.CLASSIFICATION, metric="accuracy",
        train=_MNLI_TRAIN,
        dev=Source(XTREME, "XNLI", "validation", a.xnli, a.language_is),
        evaluate=Source(XTREME, "XNLI", "test", a.xnli, a.language_is),
        languages=XNLI_LANGS, labels=a.NLI_LABELS, hparams={"epochs": 2},
        benchmarks={"xtreme": XNLI_LANGS, "xtreme-r": XNLI_LANGS},
        description="Cross-lingual NLI (English training data: MNLI)", domain="mixed genres", source="XTREME",
    ),
    TaskDef(
        name="pawsx", role=Role.TARGET, format=Format.CLASSIFICATION, metric="accuracy",
        train=Source(XTREME, "PAWS-X.en", "train", a.pawsx),
        dev=Source(XTREME, "PAWS-X.en", "validation", a.pawsx),
        evaluate=Source(XTREME, "PAWS-X.{lang}", "test", a.pawsx),
        languages=PAWSX_LANGS, labels=("0", "1"), hparams={"epochs": 5}, benchmarks={"xtreme": PAWSX_LANGS},
        description="Cross-lingual paraphrase adversaries", domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="panx", role=Role.TARGET, format=Format.TAGGING, metric="seqeval_f1",
        train=Source(XTREME, "PAN-X.en", "train", a.tagging("ner_tags")),
        dev=Source(XTREME, "PAN-X.en", "validation", a.tagging("ner_tags")),
        evaluate=Source(XTREME, "PAN-X.{lang}", "test", a.tagging("ner_tags")),
        languages=PANX_LANGS + PANX_XTREME_R_ADDED, labels=PANX_TAGS, hparams={"epochs": 10},
        evaluate_overrides={lang: (Source("unimelb-nlptools/wikiann", lang, "test", a.tagging("ner_tags")),)
                            for lang in PANX_XTREME_R_ADDED},
        benchmarks={"xtreme": PANX_LANGS, "xtreme-r": PANX_LANGS + PANX_XTREME_R_ADDED},
        description="WikiANN named entities (XTREME-R additions from the hub's wikiann, same Rahimi splits)",
        domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="udpos", role=Role.TARGET, format=Format.TAGGING, metric="udpos_f1",
        train=Source(XTREME, "udpos.English", "train", a.tagging("pos_tags")),
        dev=Source(XTREME, "udpos.English", "validation", a.tagging("pos_tags")),
        evaluate=Source(XTREME, "udpos.{config_lang}", "test", a.tagging("pos_tags")),
        languages=tuple(UDPOS_NAMES) + tuple(UD_TREEBANKS), labels=UPOS, config_langs=UDPOS_NAMES,
        hparams={"epochs": 10},
        evaluate_overrides={lang: tuple(Source("universal-dependencies/universal_dependencies", tb, "test",
                                               a.ud_upos) for tb in banks)
                            for lang, banks in UD_TREEBANKS.items()},
        benchmarks={"xtreme": tuple(UDPOS_NAMES), "xtreme-r": tuple(UDPOS_NAMES) + tuple(UD_TREEBANKS)},
        description="Universal Dependencies part-of-speech tags (kk, th, tl, yo test-only; XTREME-R adds "
        "lt pl uk wo ro from UD 2.7); F1 as XTREME's published numbers: seqeval 0.0.12's chunks of the raw "
        "UPOS tags", domain="treebanks", source="XTREME",
    ),
    TaskDef(
        name="xquad", role=Role.TARGET, format=Format.SPAN_QA, metric="squad",
        train=_SQUAD_TRAIN, dev=_SQUAD_DEV,
        evaluate=Source(XTREME, "XQuAD.{lang}", "validation", a.squad),
        languages=XQUAD_LANGS + ("ro",), hparams={"epochs": 2},
        evaluate_overrides={"ro": (Source("google/xquad", "xquad.ro", "validation", a.squad),)},
        benchmarks={"xtreme": XQUAD_LANGS, "xtreme-r": XQUAD_LANGS + ("ro",)},
        description="Cross-lingual QA over SQuAD paragraphs (ro: XTREME-R, from google/xquad)",
        domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="mlqa", role=Role.TARGET, format=Format.SPAN_QA, metric="mlqa",
        train=_SQUAD_TRAIN, dev=_SQUAD_DEV,
        evaluate=Source(XTREME, "MLQA.{lang}.{lang}", "test", a.squad),
        languages=MLQA_LANGS, hparams={"epochs": 2},
        benchmarks={"xtreme": MLQA_LANGS, "xtreme-r": MLQA_LANGS},
        description="MLQA, context and question in the same language (config MLQA.<lang>.<lang>, test split; "
        "validation holds the dev set); cross-language pairs are the mlqa-gxlt-<question language> tasks",
        domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="tydiqa", role=Role.TARGET, format=Format.SPAN_QA, metric="squad",
        train=Source(XTREME, "tydiqa", "train", a.squad, a.tydiqa_language_is),
        dev=Source(XTREME, "tydiqa", "validation", a.squad, a.tydiqa_language_is),
        evaluate=Source(XTREME, "tydiqa", "validation", a.squad, a.tydiqa_language_is),
        languages=TYDIQA_LANGS, hparams={"epochs": 2},
        benchmarks={"xtreme": TYDIQA_LANGS, "xtreme-r": TYDIQA_LANGS},
        description="TyDiQA-GoldP: trained on the `english-` ids only (zero-shot), evaluated per language by "
        "id prefix", domain="Wikipedia", source="XTREME",
    ),
    TaskDef(
        name="bucc", role=Role.TARGET, format=Format.RETRIEVAL, metric="bucc_f1",
        train=None,
        dev=_bucc_files("sample"), evaluate=_bucc_files("training"),
        gold_only=(Source(XTREME, "bucc18.{lang}", "validation", a.bucc),
                   Source(XTREME, "bucc18.{lang}", "test", a.bucc)),
        languages=BUCC_LANGS, needs_target_training=False, benchmarks={"xtreme": BUCC_LANGS},
        description="BUCC 2018 bitext mining against English over every sentence of the shared task's files "
        "(`data.bucc_path`): ratio margin (k=4), repeated sentences dropped, threshold tuned on the sample "
        "split, F1 on the training split; without the files, the hub's gold pairs only (bucc_f1_gold_only)",
        domain="Wikipedia, news", source="XTREME",
    ),
    TaskDef(
        name="tatoeba", role=Role.TARGET, format=Format.RETRIEVAL, metric="tatoeba_accuracy",
        train=None, dev=None,
        evaluate=Source(XTREME, "tatoeba.{config_lang}", "validation", a.tatoeba),
        languages=tuple(TATOEBA_ISO3) + tuple(TATOEBA_XTREME_R_ISO3),
        config_langs={**TATOEBA_ISO3, **TATOEBA_XTREME_R_ISO3}, needs_target_training=False,
        evaluate_overrides={lang: (Source("mteb/tatoeba-bitext-mining", "{config_lang}-eng", "test",
                                          a.tatoeba_mteb),)
                            for lang in TATOEBA_XTREME_R_ISO3},
        benchmarks={"xtreme": tuple(TATOEBA_ISO3),
                    "xtreme-r": tuple(TATOEBA_ISO3) + tuple(TATOEBA_XTREME_R_ISO3)},
        description="Sentence retrieval against English (nearest neighbour)", domain="Tatoeba",
        source="XTREME",
    ),
    *(_mlqa_gxlt(q) for q in MLQA_LANGS),
)  # fmt: skip

_XTREME_R_TARGETS: tuple[TaskDef, ...] = (
    TaskDef(
        name="xcopa", role=Role.TARGET, format=Format.MULTIPLE_CHOICE, metric="accuracy",
        train=_COPA_TRAIN, dev=_COPA_DEV,
        evaluate=Source("cambridgeltl/xcopa", "{lang}", "test", a.copa),
        train_stages=(_SIQA_TRAIN, _COPA_TRAIN),
        languages=XCOPA_LANGS, labels=("choice1", "choice2"), hparams={"epochs": 5, "max_length": 128},
        benchmarks={"xtreme-r": XCOPA_LANGS}, fixture_stand_ins={"et": "de", "it": "es", "ta": "ru"},
        description="XCOPA causal commonsense: trained on English SIQA, then English COPA (XTREME-R's "
        "train_xcopa.sh), evaluated zero-shot", domain="commonsense causality", source="XTREME-R",
    ),
    TaskDef(
        name="lareqa", role=Role.TARGET, format=Format.RETRIEVAL, metric="map@20",
        train=None, dev=None,
        evaluate=Source("google-research-datasets/xquad_r", "{lang}", "validation", a.lareqa),
        languages=LAREQA_LANGS, needs_target_training=False, benchmarks={"xtreme-r": LAREQA_LANGS},
        description="LAReQA on XQuAD-R: each language's questions retrieve answer sentences from the pool of "
        "every evaluated language (mAP@20), embedded straight from the encoder (XTREME-R fine-tunes a dual "
        "encoder on SQuAD v1.1 first: use a SQuAD intermediate task for that)",
        domain="Wikipedia", source="XTREME-R",
    ),
    TaskDef(
        name="mewsli-x", role=Role.TARGET, format=Format.RETRIEVAL, metric="map@20",
        train=None, dev=None,
        evaluate=Source(_MEWSLI_X, None, "test", a.mewsli_mention, a.mention_language_is,
                        reader=r.mewsli_mentions, path_key="mewsli_x_path"),
        candidates=Source(_MEWSLI_X, None, "candidates", a.mewsli_entity, reader=r.mewsli_entities,
                          path_key="mewsli_x_path"),
        languages=MEWSLI_X_LANGS, needs_target_training=False, benchmarks={"xtreme-r": MEWSLI_X_LANGS},
        description="Mewsli-X entity retrieval: WikiNews mentions retrieve English entity descriptions "
        "(mAP@20 = MRR@20, one gold entity); data from `data.mewsli_x_path` (get-mewsli-x.sh output), "
        "embedded straight from the encoder", domain="WikiNews, Wikipedia", source="XTREME-R",
    ),
)  # fmt: skip

TASKS: tuple[TaskDef, ...] = _INTERMEDIATE + _XTREME_TARGETS + _XTREME_R_TARGETS

# The one place a task is declared: everything else (planning, data, fixtures' languages, training,
# scoring, `xstilts tasks list`) reads it from here, so a task is one entry (tests add one at run time).
REGISTRY: dict[str, TaskDef] = {t.name: t for t in TASKS}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


def get_task(name: str, *, file: str | None = None, field: str | None = None) -> TaskDef:
    """The task called `name` (case, '-' and '_' are ignored: PAWS-X == pawsx), or a ConfigError that
    suggests the closest registered names."""
    aliases = {_normalise(registered): registered for registered in REGISTRY}
    key = aliases.get(_normalise(name))
    if key is not None:
        return REGISTRY[key]
    close = difflib.get_close_matches(_normalise(name), list(aliases), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(aliases[c] for c in close)}?" if close else "run `xstilts tasks list`"
    raise ConfigError(f"unknown task '{name}'", file=file, field=field, fix=hint)


def all_tasks() -> list[TaskDef]:
    return list(REGISTRY.values())


def _training_identity(task: TaskDef) -> tuple:
    """What a target's English fine-tuning depends on (data, dev set, head, defaults), not its name."""
    return (task.format, task.training_sources(), task.dev, task.labels, task.label_reader,
            tuple(sorted(task.hparams.items())))  # fmt: skip


def shared_training(task: TaskDef) -> TaskDef:
    """The first registered target whose English fine-tuning is the same as `task`'s (same training and
    dev data, head and defaults): MLQA and the MLQA G-XLT pairs train exactly as XQuAD does (SQuAD v1.1),
    so one trained model serves all of them, as in XTREME. `task` itself when none comes before it."""
    if not task.needs_target_training:
        return task
    identity = _training_identity(task)
    for other in REGISTRY.values():
        if other.is_target() and other.needs_target_training and _training_identity(other) == identity:
            return other
    return task


def benchmark_targets(benchmark: str) -> list[str]:
    """The target tasks of a benchmark, in registry order (XTREME: 9; XTREME-R: 10)."""
    return [t.name for t in REGISTRY.values() if t.is_target() and benchmark in t.benchmarks]


def fixture_languages(task: TaskDef, requested: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The task's languages (or `requested`) that have fixtures: the synthetic fixture languages, plus the
    task's stand-ins (XCOPA, with none of en/de/es/ru, has fixtures for et, it and ta)."""
    langs = list(requested) if requested else list(task.languages)
    return [lang for lang in langs if lang in FIXTURE_LANGUAGES or lang in task.fixture_stand_ins]
