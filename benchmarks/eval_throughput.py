"""Evaluation throughput: xstilts' `predict` against a transformers `pipeline("text-classification")`,
same model, same examples, in one run.

    .venv/bin/python benchmarks/eval_throughput.py [--per-lang 500] [--repeat 3] [--threads 2]
        [--spread uniform|long-tail] [--skip-unbatched]

The model is the tiny random-init XLM-R-shaped encoder of the training benchmark (hidden 128, 4 layers)
with a RoBERTa classification head (3 labels), saved once as `XLMRobertaForSequenceClassification`; the
xstilts side loads the same encoder (`MultiTaskModel`, sdpa) and copies the head's weights, and the two
sides' predicted labels are compared (they must agree). The examples are XNLI-shaped pairs in the four
fixture languages (en, de, es, ru), premises of 1-12 fixture clauses, in the order a dataset gives them
(not sorted): `--spread uniform` (the training benchmark's data: every clause count equally likely,
~35-256 tokens, mean ~155) or `--spread long-tail` (most premises 1-3 clauses, a few up to 12, as in
real NLI data: mean ~60 tokens).

- xstilts: `featurize` (batch tokenization, `truncation=True, max_length=256`) then
  `xstilts.evaluate.predict.predict` (batches of 64 sorted by length, dynamic padding, no grad); timed
  from text to predicted labels, tokenization included, and `predict` alone.
- pipeline: `pipeline("text-classification", model=..., tokenizer=..., device="cpu")` called on the
  list of `{"text", "text_pair"}` dicts with `truncation=True, max_length=256`, twice: with its default
  `batch_size` (1: one forward per example, as most scripts call it) and with `batch_size=64` (the
  same batch size as `predict`; the pipeline pads each batch to its longest example in input order).

The sides alternate, `--repeat` rounds; the table shows medians of examples/s. The ratios are against
the batched pipeline (the stronger baseline) and the default one: the ratio of the medians, and the
median of the per-round ratios (sides measured minutes apart, so less exposed to the machine's load
drifting, which on a shared 2-core machine moves single figures by 2-5x).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import tempfile
import time
from pathlib import Path

from common import build_encoder, git_sha, length_summary, machine, median, nli_examples

import torch  # isort: skip

LANGS = ("en", "de", "es", "ru")


def build_models(encoder_dir: Path, out_dir: Path, seed: int):
    """The HF classification model (saved to `out_dir`) and the same weights as a MultiTaskModel."""
    from transformers import AutoTokenizer, XLMRobertaForSequenceClassification

    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.tasks import get_task

    torch.manual_seed(seed)
    hf = XLMRobertaForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=3, attn_implementation="sdpa"
    )
    hf.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(encoder_dir).save_pretrained(out_dir)
    task = get_task("xnli")
    ours = MultiTaskModel(load_encoder(out_dir), [task])
    head = ours.heads[task.name]
    with torch.no_grad():
        head.dense.weight.copy_(hf.classifier.dense.weight)
        head.dense.bias.copy_(hf.classifier.dense.bias)
        head.out.weight.copy_(hf.classifier.out_proj.weight)
        head.out.bias.copy_(hf.classifier.out_proj.bias)
    return hf.eval(), ours.eval(), task


def run_xstilts(model, task, tokenizer, examples: list[dict], batch_size: int) -> dict:
    from xstilts.data.features import featurize
    from xstilts.evaluate.predict import predict

    started = time.perf_counter()
    features = featurize(task, tokenizer, examples, 256)
    tokenized = time.perf_counter()
    labels = predict(model, task, features, tokenizer.pad_token_id, batch_size=batch_size)
    done = time.perf_counter()
    return {"seconds": done - started, "predict_seconds": done - tokenized, "labels": labels}


def run_pipeline(classifier, examples: list[dict], batch_size: int | None) -> dict:
    inputs = [{"text": e["text_a"], "text_pair": e["text_b"]} for e in examples]
    kwargs = {"batch_size": batch_size} if batch_size else {}
    started = time.perf_counter()
    outputs = classifier(inputs, truncation=True, max_length=256, **kwargs)
    seconds = time.perf_counter() - started
    labels = [int(o["label"].rsplit("_", 1)[-1]) for o in outputs]
    return {"seconds": seconds, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-lang", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread", choices=["uniform", "long-tail"], default="uniform")
    parser.add_argument("--skip-unbatched", action="store_true", help="leave out the batch_size=1 pipeline")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"date {datetime.date.today()}  git {git_sha()}  machine {machine()}")
    with tempfile.TemporaryDirectory(prefix="xstilts-bench-") as tmp:
        work = Path(tmp)
        with contextlib.redirect_stderr(io.StringIO()):
            encoder_dir = build_encoder(work / "encoder")
            hf, ours, task = build_models(encoder_dir, work / "classifier", args.seed)
        tokenizer = AutoTokenizer.from_pretrained(work / "classifier")
        classifier = pipeline("text-classification", model=hf, tokenizer=tokenizer, device="cpu")
        examples = []
        for k, lang in enumerate(LANGS):
            examples += nli_examples(args.per_lang, 100 + k, lang=lang, spread=args.spread)
        lengths = [len(ids) for ids in tokenizer(
            [e["text_a"] for e in examples], [e["text_b"] for e in examples], truncation=True, max_length=256
        )["input_ids"]]  # fmt: skip
        print(f"examples: {len(examples)} ({args.per_lang} per language x {len(LANGS)}, {args.spread} "
              f"premise lengths), tokens per "
              f"example: {length_summary(lengths)}; threads {torch.get_num_threads()}")  # fmt: skip

        sides = {
            "xstilts predict": lambda: run_xstilts(ours, task, tokenizer, examples, args.batch_size),
            f"pipeline batch_size={args.batch_size}": lambda: run_pipeline(
                classifier, examples, args.batch_size
            ),
        }
        if not args.skip_unbatched:
            sides["pipeline default (batch_size=1)"] = lambda: run_pipeline(classifier, examples, None)
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        for r in range(args.repeat):
            for name, run in sides.items():
                out = run()
                out["per_s"] = len(examples) / out["seconds"]
                runs[name].append(out)
                extra = f" (predict alone {out['predict_seconds']:.2f} s)" if "predict_seconds" in out else ""
                load = machine()["load_avg"]
                print(f"  run {r + 1} {name:34s} {out['seconds']:7.2f} s{extra}  "
                      f"{out['per_s']:7.1f} examples/s  (load {load})", flush=True)  # fmt: skip

        reference = runs["xstilts predict"][0]["labels"]
        print()
        print("| side | examples/s (median) | runs (examples/s) | seconds | agreement with xstilts |")
        print("|---|---:|---|---:|---:|")
        medians = {}
        for name, outs in runs.items():
            medians[name] = median([o["per_s"] for o in outs])
            agree = sum(a == b for a, b in zip(outs[0]["labels"], reference, strict=True)) / len(reference)
            each = ", ".join(f"{o['per_s']:.1f}" for o in outs)
            print(f"| {name} | {medians[name]:.1f} | {each} | {median([o['seconds'] for o in outs]):.2f} | "
                  f"{agree:.4f} |")  # fmt: skip
        predict_only = median([len(examples) / o["predict_seconds"] for o in runs["xstilts predict"]])
        print(f"\nxstilts predict alone (features ready): {predict_only:.1f} examples/s")
        ours = runs["xstilts predict"]
        for name, rate in medians.items():
            if name != "xstilts predict":
                paired = median([a["per_s"] / b["per_s"] for a, b in zip(ours, runs[name], strict=True)])
                print(f"ratio xstilts / {name}: {medians['xstilts predict'] / rate:.2f}x of the medians, "
                      f"{paired:.2f}x median of the per-round ratios")  # fmt: skip
        print(f"load average at the end: {machine()['load_avg']}")


if __name__ == "__main__":
    main()
