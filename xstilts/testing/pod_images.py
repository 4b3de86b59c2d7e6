"""What the stand-in kubelet runs instead of the images: the checked-out code, with what each image has.

The loopback cluster's kubelet runs a pod's command as a local process with our virtualenv's bin dir on
PATH. `write_shim` puts an `xstilts` executable ahead of it that imports this checkout (not whatever the
virtualenv's editable install points at) and, for every command but `phase run` (the trainer image's),
hides every installed distribution the controller image does not install: the dependency closure
of `pyproject.toml`'s base dependencies plus the extras that images/controller/Dockerfile installs.
So an in-cluster controller that needs torch, or matplotlib without the `report` extra, fails here as
it would in its image.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

CONTROLLER_DOCKERFILE = Path("images") / "controller" / "Dockerfile"


def controller_requirements(repo: Path) -> list[Any]:
    """The base dependencies plus those of the extras the controller image installs (`/src[...]`)
    (`packaging` Requirements; Python 3.11+ for tomllib)."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    dockerfile = (repo / CONTROLLER_DOCKERFILE).read_text()
    extras = re.search(r"pip install[^\n]*?/src(?:\[([^\]]*)\])?", dockerfile)
    for extra in (extras.group(1) or "").split(",") if extras else []:
        requirements += [
            Requirement(r) for r in project.get("optional-dependencies", {}).get(extra.strip(), [])
        ]
    return [r for r in requirements if canonicalize_name(r.name) != "xstilts"]


def _closure(requirements: list[Any]) -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for text in dist.requires or []:
            sub = Requirement(text)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments):
                todo.append((sub, frozenset(sub.extras)))
    return {key.split("[")[0] for key in seen}


def _top_level(dist: metadata.Distribution) -> set[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    names = set()
    for file in dist.files or []:
        first = file.parts[0] if file.parts else ""
        if not first or first.endswith((".dist-info", ".egg-info", ".pth")) or first in ("..", "__pycache__"):
            continue
        names.add(first.split(".")[0] if first.endswith((".py", ".so", ".pyd")) else first)
    return names


def modules_not_in_controller_image(repo: Path) -> list[str]:
    from packaging.utils import canonicalize_name

    keep = _closure(controller_requirements(repo))
    kept_modules: set[str] = set()
    other_modules: set[str] = set()
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name == "xstilts":
            continue
        (kept_modules if name in keep else other_modules).update(_top_level(dist))
    stdlib = set(sys.stdlib_module_names)
    return sorted(m for m in other_modules - kept_modules - stdlib if m.isidentifier())


SHIM = """#!{python}
# Written by xstilts/testing/pod_images.py: the `xstilts` command of pods on the stand-in kubelet.
import sys

sys.path.insert(0, {repo!r})
if sys.argv[1:2] != ["phase"]:  # not the trainer image: only what the controller image installs
    NOT_IN_IMAGE = frozenset({blocked!r})

    class ControllerImage:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in NOT_IN_IMAGE:
                message = f"No module named {{name!r}} (not in the controller image)"
                raise ModuleNotFoundError(message, name=name)
            return None

    sys.meta_path.insert(0, ControllerImage())
from xstilts.cli.main import main

main()
"""


def write_shim(directory: Path, repo: Path, python: str = sys.executable) -> Path:
    """`directory/xstilts` (returns the directory, for the kubelet's --path)."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "xstilts"
    shim.write_text(SHIM.format(python=python, repo=str(repo), blocked=modules_not_in_controller_image(repo)))
    shim.chmod(0o755)
    return directory
