"""Input that an attacker (or an accident) controls ends in a one-line message and exit 3, never in a
traceback, a file touched outside its directory, or results committed under the wrong name: hostile
YAML (deep nesting, alias bombs, recursive aliases), addresses that are paths, edited phase specs, a
store path that leaves the working tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_xstilts
from tests.e2e.sweeps import micro, planned, write
from xstilts.backends.reconcile import write_specs
from xstilts.plan import expand
from xstilts.plan.phase import Phase
from xstilts.spec import load_sweep
from xstilts.store import LocalStore


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[-1].startswith("Error: "), result.stderr[-2000:]
    return lines[-1]


# ---- hostile YAML ------------------------------------------------------------------------------------


def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nencoders: " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_xstilts("sweep", "plan", str(path))
    assert result.returncode == 3
    assert "nests deeper than" in one_line_error(result)


def alias_bomb(levels: int = 30) -> str:
    """kubernetes.tolerations that expand to 4**levels entries through aliases (tiny on disk)."""
    plain = {k: v for k, v in micro(name="bomb").items() if k != "kubernetes"}
    sweep = yaml.safe_dump(plain, sort_keys=False)
    lines = [sweep, "bombs:"]
    lines.append('  b0: &b0 [{key: "k", operator: "Exists", effect: "NoSchedule"}]')
    for i in range(1, levels):
        lines.append(f"  b{i}: &b{i} [*b{i - 1}, *b{i - 1}, *b{i - 1}, *b{i - 1}]")
    lines.append(f"kubernetes: {{tolerations: *b{levels - 1}}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", ["plan", "render"])
def test_an_alias_bomb_is_refused_at_load(tmp_path: Path, command: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert path.stat().st_size < 4096
    args = ["sweep", command, str(path)] + (["--out", str(tmp_path / "out")] if command == "render" else [])
    result = run_xstilts(*args, timeout=120)
    assert result.returncode == 3
    assert "expands to more than" in one_line_error(result) and "aliases" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = yaml.safe_dump(micro(name="aliases"), sort_keys=False).replace("training:", "training: &t", 1)
    path = tmp_path / "ok.yaml"
    path.write_text(text + "target_training: *t\n")
    result = run_xstilts("sweep", "plan", str(path), "-o", "json")
    assert result.returncode == 0, result.stderr


def test_a_recursive_alias_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "recursive.yaml"
    path.write_text("name: &a [*a]\n")
    result = run_xstilts("sweep", "plan", str(path))
    assert result.returncode == 3
    assert "recursive alias" in one_line_error(result)


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: huge\ndescription: '" + "x" * (2 * 1024 * 1024) + "'\n")
    result = run_xstilts("sweep", "plan", str(path))
    assert result.returncode == 3
    assert "larger than" in one_line_error(result)


def test_messages_print_the_users_text_literally(tmp_path: Path) -> None:
    path = write(tmp_path, micro(name="Not_A_Valid_Name"))
    result = run_xstilts("sweep", "plan", str(path))
    assert result.returncode == 3
    line = one_line_error(result)
    assert "[a-z0-9]" in line, "pydantic's pattern must survive (not be eaten as markup)"


# ---- store paths -------------------------------------------------------------------------------------


def test_a_relative_store_that_leaves_the_working_tree_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    path = write(work, micro(store="../../../../etc"))
    result = run_xstilts("sweep", "plan", str(path), cwd=work)
    assert result.returncode == 3
    line = one_line_error(result)
    assert "field 'store'" in line and "absolute path" in line


def test_an_absolute_store_is_accepted_and_plan_shows_where_it_resolves(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / ".." / "runs"
    path = write(tmp_path, micro(store=str(target)))
    result = run_xstilts("sweep", "plan", str(path), "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["store"] == str((tmp_path / "runs").resolve())
    table = run_xstilts("sweep", "plan", str(path))
    assert f"store {(tmp_path / 'runs').resolve()}" in table.stdout


def test_huge_sweeps_are_announced(tmp_path: Path) -> None:
    path = write(tmp_path, micro())
    result = run_xstilts("sweep", "plan", str(path), env={"XSTILTS_PLAN_WARN_PHASES": "3"})
    assert result.returncode == 0
    assert "warning: sweep 'micro' expands to up to" in result.stderr and "splitting" in result.stderr
    quiet = run_xstilts("sweep", "plan", str(path))
    assert "warning" not in quiet.stderr


# ---- addresses and specs -----------------------------------------------------------------------------


def test_a_path_as_address_touches_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "x" / "victim.lock"
    victim.parent.mkdir()
    victim.write_text("precious")
    locks = tmp_path / "a" / "locks"
    store = tmp_path / "store"
    result = run_xstilts(
        "phase", "run", "../../x/victim", "--store", str(store), env={"XSTILTS_LOCK_DIR": str(locks)}
    )
    assert result.returncode == 3
    assert "is not a phase address" in one_line_error(result)
    assert victim.read_text() == "precious"
    assert not locks.exists() and not store.exists(), "nothing was created before the check"


def test_every_shipped_sweep_round_trips_its_specs_to_their_addresses() -> None:
    """A spec read back from the store hashes to its address (so verification never refuses our own)."""
    for sweep_file in sorted((REPO / "jobs").glob("*.yaml")):
        for phase in expand(load_sweep(sweep_file)).ordered():
            stored = Phase.model_validate_json(phase.model_dump_json(indent=1))
            assert stored.computed_address() == phase.address, f"{sweep_file.name}: {phase.name}"


def test_an_edited_spec_is_refused_and_nothing_is_committed(tmp_path: Path) -> None:
    sweep_file = write(tmp_path, micro())
    plan, encoder, _ = planned(sweep_file)
    store = tmp_path / "store"
    write_specs(plan, LocalStore(store))
    evaluate = next(p for p in plan.ordered() if p.kind == "evaluate" and p.label == "pawsx")
    spec_path = store / "specs" / f"{evaluate.address}.json"
    spec = json.loads(spec_path.read_text())
    spec["config"]["languages"] = spec["config"]["languages"][:1]  # one language instead of all
    spec_path.write_text(json.dumps(spec))
    result = run_xstilts("phase", "run", evaluate.address, "--store", str(store))
    assert result.returncode == 3
    line = one_line_error(result)
    assert f"specs/{evaluate.address}.json" in line and "does not match its address" in line
    assert not (store / evaluate.prefix).exists()


def test_a_spec_naming_another_phase_is_refused(tmp_path: Path) -> None:
    sweep_file = write(tmp_path, micro())
    plan, encoder, intermediate = planned(sweep_file)
    store = tmp_path / "store"
    write_specs(plan, LocalStore(store))
    spec_path = store / "specs" / f"{intermediate.address}.json"
    spec = json.loads(spec_path.read_text())
    spec["address"] = f"../target/{next(p for p in plan.ordered() if p.kind == 'target').address}"
    spec_path.write_text(json.dumps(spec))
    result = run_xstilts("phase", "run", intermediate.address, "--store", str(store))
    assert result.returncode == 3
    line = one_line_error(result)
    assert f"specs/{intermediate.address}.json" in line and "not a valid phase spec" in line
