"""The layering holds: the import contracts, the architecture map, what `import proxy.app` loads."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tunegate", "proxy", "judge", "analysis", "cli", "demo", "bench", "tests")


def _real_imports() -> dict[str, set[str]]:
    """For each top-level package, the other top-level packages its modules import."""
    graph = grimp.build_graph(*PACKAGES)
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        imported = set()
        for module in graph.find_descendants(package) | {package}:
            imported |= {m.split(".")[0] for m in graph.find_modules_directly_imported_by(module)}
        found[package] = imported - {package}
    return found


def _documented_imports() -> dict[str, set[str]]:
    """The "may import" column of docs/architecture.md's package table."""
    table: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            table[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    return table


def test_import_linter_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("KEPT") == 3, result.stdout


def test_the_architecture_map_matches_the_import_graph() -> None:
    documented, real = _documented_imports(), _real_imports()
    assert set(documented) == set(PACKAGES), "every package has a row in docs/architecture.md"
    for package in PACKAGES:
        assert real[package] <= documented[package], (
            f"{package} imports {sorted(real[package] - documented[package])},"
            " which docs/architecture.md does not allow"
        )
        assert documented[package] <= real[package], (
            f"docs/architecture.md says {package} may import"
            f" {sorted(documented[package] - real[package])}, which it does not: update the map"
        )


def test_the_contract_package_imports_no_plane() -> None:
    assert _real_imports()["tunegate"] == set()


def _loaded_after(imports: str, roots: set[str]) -> list[str]:
    code = (
        f"import sys, {imports}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(roots)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, cwd=ROOT, capture_output=True
    )
    loaded: list[str] = ast.literal_eval(out.stdout.decode())
    return loaded


HEAVY = {"torch", "transformers", "statsmodels", "scipy", "matplotlib", "sklearn"}


def test_importing_the_proxy_loads_no_judge_analysis_or_heavy_library() -> None:
    assert _loaded_after("proxy.app, proxy.upstream", {"judge", "analysis", "demo", *HEAVY}) == []


def test_the_serve_command_loads_only_the_planes_settings_sections() -> None:
    loaded = _loaded_after("cli.serve, cli.compose", {"judge", "analysis", "demo", *HEAVY})
    assert set(loaded) <= {"judge", "judge.config", "analysis", "analysis.config"}, loaded
