"""The Dockerfile, checked without a Docker engine: hadolint, stages, layer order, context."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.tools import tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    name: str
    parent: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [args for op, args in self.instructions if op == instruction]


def parse(text: str) -> list[Stage]:
    """Stages of a Dockerfile with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        op, _, args = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, line
            stages.append(Stage(match.group(2) or "", match.group(1)))
        elif stages:
            stages[-1].instructions.append((op, args.strip()))
    return stages


STAGES = parse(DOCKERFILE.read_text())
BY_NAME = {stage.name: stage for stage in STAGES}


def chain(name: str) -> list[Stage]:
    """The stage and every stage it is built FROM or COPYs --from, transitively."""
    seen: dict[str, Stage] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in BY_NAME:
            continue
        stage = seen[current] = BY_NAME[current]
        todo.append(stage.parent)
        todo += re.findall(r"--from=(\S+)", " ".join(stage.args("COPY")))
    return list(seen.values())


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_target_is_the_runtime_without_torch() -> None:
    default = STAGES[-1]
    assert default.name == "runtime"
    text = " ".join(args for stage in chain("runtime") for _, args in stage.instructions)
    assert "torch" not in text and "['models']" not in text


def test_proxy_target_has_neither_torch_nor_the_statistics_libraries() -> None:
    text = " ".join(args for stage in chain("proxy") for _, args in stage.instructions)
    assert "optional-dependencies" not in text and "torch" not in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    for heavy in ("statsmodels", "scipy", "matplotlib", "numpy", "torch"):
        assert heavy not in base, heavy


def test_runtime_target_installs_the_analysis_extra() -> None:
    runs = " ".join(run for stage in chain("runtime") for run in stage.args("RUN"))
    assert "['optional-dependencies']['analysis']" in runs
    assert "['optional-dependencies']['judge']" in runs


def test_models_target_installs_torch_from_the_cpu_index() -> None:
    runs = " ".join(run for stage in chain("models") for run in stage.args("RUN"))
    assert "--index-url" in runs and "torch==${TORCH_VERSION}" in runs
    args = " ".join(a for stage in chain("models") for a in stage.args("ARG"))
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in args
    assert "['optional-dependencies']['models']" in runs


def test_final_stages_run_as_a_non_root_user() -> None:
    for name in ("runtime", "models", "proxy"):
        users = BY_NAME[name].args("USER")
        assert users and users[-1].split(":")[0] not in ("root", "0"), name
        assert BY_NAME[name].args("ENTRYPOINT") == ['["tunegate"]']


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    deps = BY_NAME["deps"]
    assert deps.args("COPY") == ["pyproject.toml ./"]
    assert any("pip install --requirement" in run for run in deps.args("RUN"))
    build = BY_NAME["build"]
    assert build.parent == "deps"
    order = [op for op, _ in build.instructions]
    assert order.index("COPY") < order.index("RUN")
    assert build.args("RUN") == ["pip install --no-deps ."]


def test_requirement_extraction_reads_the_pyproject_dependencies() -> None:
    """Run the Dockerfile's own extraction snippet against pyproject.toml."""
    (run,) = BY_NAME["deps"].args("RUN")
    snippet = next(part for part in run.split("&&") if "tomllib" in part)
    code = shlex.split(snippet.split(">")[0])[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert result.stdout.split("\n")[:-1] == project["dependencies"]
    assert not any(dep.startswith("torch") for dep in project["dependencies"])


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; ! re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, body.replace("**", "*")) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_copied_sources_exist_and_are_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in STAGES:
        for args in stage.args("COPY"):
            if "--from=" in args:
                continue
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert not _ignored(source, patterns), source
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for include in packages["packages"]["find"]["include"]:
        package = include.rstrip("*")
        copied = any(args.startswith(f"{package} ") for args in BY_NAME["build"].args("COPY"))
        assert copied, f"package {package} is not copied into the image"
    for unwanted in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "bench/x.py"):
        assert _ignored(unwanted, patterns), unwanted
