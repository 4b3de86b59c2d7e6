"""The report's section on `xstilts suggest`: its leave-one-target-out evaluation on the store's results
(embeddings as the store has them; nothing is computed for a report)."""

from __future__ import annotations

from xstilts.store import Store
from xstilts.suggest.embeddings import read_embeddings, taskemb_phase
from xstilts.suggest.observe import alignment_pairs, observed_gains, read_store
from xstilts.suggest.rank import evaluate
from xstilts.suggest.text import evaluation_markdown


def loto_markdown(store: Store) -> str | None:
    """The section, or None when the store has no target with two or more observed candidates."""
    view = read_store(store)
    gains = observed_gains(store, view)
    if not gains:
        return None
    counts: dict[str, int] = {}
    for g in gains:
        counts[g.encoder] = counts.get(g.encoder, 0) + 1
    encoder = view.phases[max(counts, key=lambda a: (counts[a], a))]
    gains = [g for g in gains if g.encoder == encoder.address]
    embeddings = {}
    for task in {*(g.intermediate for g in gains), *(g.target for g in gains)}:
        phase = taskemb_phase(encoder, task)
        if view.is_done(phase.address):
            embeddings[task] = read_embeddings(store, phase)
    evaluation = evaluate(gains, embeddings, alignment_pairs(store, view, encoder.address))
    if not evaluation.rows:
        return None
    note = "" if embeddings else "No task embeddings in the store yet (`xstilts suggest` computes them): "
    note += (
        "features: "
        + ("embedding cosines, " if embeddings else "")
        + "alignment where measured, prior gain.\n\n"
    )
    return evaluation_markdown(evaluation).replace("\n\n", "\n\n" + note, 1)
