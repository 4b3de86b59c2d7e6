"""Generate ``typology.tsv``: URIEL-based distances from English for every XTREME / XTREME-R language.

Provenance
----------
Source: ``lang2vec==1.1.2`` from PyPI (the latest release there; wheel sha256 printed by ``pip download``).
The wheel ships the URIEL feature vectors (``lang2vec/data/*.npz``) and works offline, but it has **no**
``distance()`` function and no precomputed URIEL distance matrices (those arrived later on GitHub
only, as ``distances.zip``). So the distances here are recomputed from the shipped vectors, following
the definitions in Littell et al. (2017, EACL), "URIEL and lang2vec":

- ``syntactic``, ``phonological``, ``inventory``: cosine distance between the kNN-imputed feature
  vectors ``syntax_knn``, ``phonology_knn``, ``inventory_knn`` (URIEL's own definition).
- ``geographic``: great-circle distance divided by the antipodal distance (so in [0, 1]). URIEL's ``geo``
  vector holds exactly that normalised distance from the language to 299 fixed points (names
  ``GC_<lat>_<lon>``), so the language's coordinates are recovered by least squares and the distance is
  computed from them. ``lat``/``lon`` columns are those recovered coordinates; ``geo_fit_rmse`` shows
  how well the fit reproduces the 299 values.
- ``genetic``: ``1 - shared / max(len(a), len(b))`` over the Glottolog ancestor sets of the ``fam``
  vector (1.0 when no family is shared, e.g. isolates). A reconstruction: URIEL derives its genetic
  distance from the same tree, but its exact normalisation is not documented in the wheel.
- ``featural``: cosine distance over the concatenation ``fam + geo + syntax_knn + phonology_knn +
  inventory_knn``. Also a reconstruction of URIEL's "featural" (all-category) distance.
- ``syntax_observed``: how many of the 103 syntax features are *observed* (not imputed) in
  ``syntax_wals|syntax_sswl|syntax_ethnologue``; low counts mean the syntactic distance rests mostly on
  kNN imputation (see Toossi et al. 2024 on URIEL's missing values).

ISO 639-1 codes map to ISO 639-3 through lang2vec's own ``letter_codes.json`` (so ``ar`` is the
macrolanguage ``ara``, ``zh`` is ``zho``, ...), as anyone calling ``l2v.get_features("ar", ...)`` gets.

Outputs (both tab-separated, 4 decimals):

- ``typology.tsv``: one row per language, distances from English plus the metadata columns above.
- ``typology_pairs.tsv``: every unordered pair of the languages with the six distances, so another
  reference language (e.g. German or Russian as the source, Turc et al. 2021) can be used.

Run (throwaway environment; lang2vec is *not* a dependency of xstilts; takes about two minutes):

    python3 -m venv /tmp/l2venv
    /tmp/l2venv/bin/pip install lang2vec==1.1.2 numpy "setuptools<81"
    /tmp/l2venv/bin/python xstilts/analysis/data/make_typology_table.py xstilts/analysis/data
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import lang2vec.lang2vec as l2v
import numpy as np

LANGUAGES = (
    "af ar az bg bn de el en es et eu fa fi fr gu he hi ht hu id it ja jv ka kk ko lt ml mr ms my nl pa pl "
    "pt qu ro ru sw ta te th tl tr uk ur vi wo yo zh"
).split()
REFERENCE = "en"
KINDS = ("syntactic", "phonological", "inventory", "genetic", "geographic", "featural")
LANGUAGE_COLUMNS = ("lang", "iso3", *KINDS, "syntax_observed", "lat", "lon", "geo_fit_rmse")
PAIR_COLUMNS = ("lang_a", "lang_b", *KINDS)


def vectors(feature_set: str, langs: list[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    feats = l2v.get_features(langs, feature_set, header=True)
    names = list(feats.pop("CODE"))
    return names, {lang: np.array(values, dtype=object) for lang, values in feats.items()}


def numeric(vector: np.ndarray) -> np.ndarray:
    if any(isinstance(v, str) for v in vector):
        raise ValueError("missing values in a feature set that should be complete")
    return vector.astype(float)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def central_angle(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    la1, lo1, la2, lo2 = (np.radians(x) for x in (lat1, lon1, lat2, lon2))
    cos = np.sin(la1) * np.sin(la2) + np.cos(la1) * np.cos(la2) * np.cos(lo1 - lo2)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def locate(geo: np.ndarray, points: np.ndarray) -> tuple[float, float, float]:
    """Find (lat, lon) whose normalised distances to ``points`` best match ``geo`` (grid refinement)."""
    best_lat, best_lon, step, span = 0.0, 0.0, 1.0, 180.0
    for _ in range(5):
        lats = np.clip(np.arange(best_lat - span, best_lat + span + step / 2, step), -90, 90)
        lons = np.arange(best_lon - 2 * span, best_lon + 2 * span + step / 2, step)
        grid_lat, grid_lon = (g.ravel() for g in np.meshgrid(lats, lons, indexing="ij"))
        predicted = central_angle(
            grid_lat[:, None], grid_lon[:, None], points[None, :, 0], points[None, :, 1]
        )
        sse = ((predicted / np.pi - geo[None, :]) ** 2).sum(axis=1)
        k = int(sse.argmin())
        best_lat, best_lon = float(grid_lat[k]), float((grid_lon[k] + 180.0) % 360.0 - 180.0)
        rmse = float(np.sqrt(sse[k] / len(geo)))
        span, step = step * 2, step / 10
    return best_lat, best_lon, rmse


def genetic_distance(fam_a: np.ndarray, fam_b: np.ndarray) -> float:
    a, b = fam_a > 0.5, fam_b > 0.5
    longest = max(int(a.sum()), int(b.sum()))
    if longest == 0:
        return 1.0
    return 1.0 - int((a & b).sum()) / longest


def observed_syntax_counts(langs: list[str]) -> dict[str, int]:
    _, union = vectors("syntax_wals|syntax_sswl|syntax_ethnologue", langs)
    return {lang: sum(not isinstance(v, str) for v in vec) for lang, vec in union.items()}


class Distances:
    def __init__(self, langs: list[str]) -> None:
        sets = {n: vectors(n, langs) for n in ("syntax_knn", "phonology_knn", "inventory_knn", "fam", "geo")}
        self.vec = {
            name: {lang: numeric(v) for lang, v in table.items()} for name, (_, table) in sets.items()
        }
        geo_points = np.array([[float(x) for x in n[len("GC_") :].split("_")] for n in sets["geo"][0]])
        self.located = {lang: locate(self.vec["geo"][lang], geo_points) for lang in langs}

    def featural_vector(self, lang: str) -> np.ndarray:
        parts = ("fam", "geo", "syntax_knn", "phonology_knn", "inventory_knn")
        return np.concatenate([self.vec[s][lang] for s in parts])

    def between(self, a: str, b: str) -> dict[str, float]:
        (lat_a, lon_a, _), (lat_b, lon_b, _) = self.located[a], self.located[b]
        angle = central_angle(np.array(lat_a), np.array(lon_a), np.array(lat_b), np.array(lon_b))
        return {
            "syntactic": cosine_distance(self.vec["syntax_knn"][a], self.vec["syntax_knn"][b]),
            "phonological": cosine_distance(self.vec["phonology_knn"][a], self.vec["phonology_knn"][b]),
            "inventory": cosine_distance(self.vec["inventory_knn"][a], self.vec["inventory_knn"][b]),
            "genetic": genetic_distance(self.vec["fam"][a], self.vec["fam"][b]),
            "geographic": float(angle) / np.pi,
            "featural": cosine_distance(self.featural_vector(a), self.featural_vector(b)),
        }


def write_tsv(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    lines = ["\t".join(columns)] + ["\t".join(_format(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(out_dir: Path) -> None:
    langs = LANGUAGES
    distances = Distances(langs)
    observed = observed_syntax_counts(langs)
    language_rows = []
    for lang in langs:
        lat, lon, rmse = distances.located[lang]
        language_rows.append(
            {
                "lang": lang,
                "iso3": l2v.LETTER_CODES.get(lang, lang),
                **distances.between(lang, REFERENCE),
                "syntax_observed": observed[lang],
                "lat": lat,
                "lon": lon,
                "geo_fit_rmse": rmse,
            }
        )
    pair_rows = [{"lang_a": a, "lang_b": b, **distances.between(a, b)} for a, b in combinations(langs, 2)]
    write_tsv(out_dir / "typology.tsv", LANGUAGE_COLUMNS, language_rows)
    write_tsv(out_dir / "typology_pairs.tsv", PAIR_COLUMNS, pair_rows)
    print(f"wrote {len(language_rows)} languages and {len(pair_rows)} pairs to {out_dir}", file=sys.stderr)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{0.0 if abs(value) < 5e-5 else value:.4f}"
    return str(value)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
