"""Exact inner-product kNN on an accelerator (torch), with `xstilts.evaluate.metrics.exact_knn`'s
contract: the k best database rows per query, best first, equal scores ordered by ascending index.

BUCC mines over every sentence of both sides (about 400k each for de-en), which numpy on CPU does in tens
of minutes per direction; on a GPU it takes seconds. Ties: `torch.topk` leaves the order of equal values
unspecified, so a few more than k are fetched and re-ordered by (score, index) on the host; a row whose
tie continues past them is redone exactly on the host.
"""

from __future__ import annotations

import numpy as np

from xstilts.evaluate.metrics import Knn, top_k_indices

EXTRA = 8  # candidates fetched beyond k to order ties


def device_knn(device) -> Knn:
    def knn(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        k = min(k, database.shape[0])
        fetch = min(database.shape[0], k + EXTRA)
        db = torch.from_numpy(np.ascontiguousarray(database, dtype=np.float32)).to(device)
        sims = np.empty((queries.shape[0], k))
        inds = np.empty((queries.shape[0], k), dtype=np.int64)
        rows = max(1, min(8192, 2**28 // max(1, database.shape[0])))
        for lo in range(0, queries.shape[0], rows):
            q = torch.from_numpy(np.ascontiguousarray(queries[lo : lo + rows], dtype=np.float32)).to(device)
            block = q @ db.T
            values, index = (t.cpu().numpy() for t in torch.topk(block, fetch, dim=1))
            order = np.lexsort((index, -values), axis=-1)
            values, index = np.take_along_axis(values, order, 1), np.take_along_axis(index, order, 1)
            if fetch < database.shape[0]:
                for row in np.flatnonzero(values[:, k - 1] == values[:, -1]):  # tie beyond what was fetched
                    full = block[row].cpu().numpy()[None, :]
                    index[row, :k] = top_k_indices(full, k)[0]
                    values[row, :k] = full[0, index[row, :k]]
            sims[lo : lo + len(q)] = values[:, :k]
            inds[lo : lo + len(q)] = index[:, :k]
        return sims, inds

    return knn
