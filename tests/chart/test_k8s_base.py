"""k8s/base comes from one source, the chart: the checked-in manifests are what
`scripts/sync-k8s-base` (xstilts.testing.k8s_base) generates from `helm template`."""

from __future__ import annotations

from pathlib import Path

from xstilts.testing.k8s_base import BASE, FILES, base_files, render_chart


def test_k8s_base_is_generated_from_the_chart(helm: Path) -> None:
    generated = base_files(render_chart(helm))
    assert set(generated) == set(FILES.values())
    for name, text in generated.items():
        assert (BASE / name).read_text() == text, f"k8s/base/{name} is stale: run scripts/sync-k8s-base"


def test_generated_base_is_namespace_neutral_and_has_no_helm_labels(helm: Path) -> None:
    for name, text in base_files(render_chart(helm)).items():
        manifest = [line for line in text.splitlines() if not line.startswith("#")]
        assert not [line for line in manifest if line.strip().startswith("namespace:")], name
        assert "helm.sh/chart" not in text and "app.kubernetes.io/managed-by: Helm" not in text, name
