"""k8s/base is generated from the Helm chart, its one source: `helm template` of the default release
(`xstilts`, with the S3 Secret `xstilts-s3`), made namespace-neutral and stripped of Helm's labels
(kustomization.yaml adds its own). `scripts/sync-k8s-base` rewrites the files; tests/chart checks that
the checked-in files are what it writes.

    python -m xstilts.testing.k8s_base [--check]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from xstilts.testing.tools import helm_binary

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "xstilts"
BASE = REPO / "k8s" / "base"
RELEASE = "xstilts"
NAMESPACE = "xstilts-generated"  # rendered into, then removed: the base applies to any namespace
TEMPLATES = ("serviceaccount.yaml", "rbac.yaml", "settings-configmap.yaml")
FILES = {
    "ServiceAccount": "serviceaccount.yaml",
    "Role": "role.yaml",
    "RoleBinding": "rolebinding.yaml",
    "ConfigMap": "settings-configmap.yaml",
}
NOTES = {
    "RoleBinding": "The subject has no namespace: RBAC reads it as the RoleBinding's own.",
    "ConfigMap": "No `namespace:` key: the settings apply to the namespace this ConfigMap is applied in.\n"
    "Read by `xstilts` (xstilts.spec.cluster.ClusterSettings; camelCase keys, unknown keys rejected).\n"
    "Set s3.endpointUrl for MinIO, Ceph RGW, GCS interop (leave it out for AWS S3): edit here, or patch\n"
    "it from an overlay.",
}
_HELM_LABEL = re.compile(r"^    (helm\.sh/chart|app\.kubernetes\.io/[a-z-]+): .*$")


def render_chart(helm: Path | None = None) -> str:
    helm = helm or helm_binary()
    args = [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--set", "s3.existingSecret=xstilts-s3"]
    for template in TEMPLATES:
        args += ["--show-only", f"templates/{template}"]
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout


def base_files(rendered: str) -> dict[str, str]:
    """File name -> text of each k8s/base manifest, from the chart's rendered manifests."""
    files: dict[str, str] = {}
    for document in rendered.split("\n---\n"):
        lines = [line for line in document.strip("-\n").splitlines() if not line.startswith("# Source:")]
        lines = [line for line in lines if not _HELM_LABEL.match(line)]
        lines = [line for line in lines if line.strip() != f"namespace: {NAMESPACE}"]
        lines = [line for i, line in enumerate(lines) if not _empty_labels(lines, i)]
        kind = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("kind:"))
        header = ["# Generated from charts/xstilts by scripts/sync-k8s-base: edit the chart, then run it."]
        header += [f"# {note}" for note in NOTES.get(kind, "").splitlines()]
        files[FILES[kind]] = "\n".join(header + lines).rstrip() + "\n"
    return files


def _empty_labels(lines: list[str], i: int) -> bool:
    """`  labels:` with nothing left under it."""
    following = lines[i + 1] if i + 1 < len(lines) else ""
    return lines[i] == "  labels:" and not following.startswith("    ")


def main(argv: list[str]) -> int:
    files = base_files(render_chart())
    stale = [name for name, text in files.items() if (BASE / name).read_text() != text]
    if "--check" in argv:
        for name in stale:
            print(f"k8s/base/{name} is not what the chart renders (fix: scripts/sync-k8s-base)")
        return 1 if stale else 0
    for name in stale:
        (BASE / name).write_text(files[name])
        print(f"wrote k8s/base/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
