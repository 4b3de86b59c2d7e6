"""Evaluation: XTREME / XTREME-R metrics (``metrics``) and extractive-QA span decoding (``qa_decode``).

Both modules are numpy-only (seqeval is imported lazily by ``metrics.tagging_f1``) so the controller and
reports can score predictions without torch.
"""
