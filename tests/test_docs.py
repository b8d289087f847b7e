"""Every code block in the README and in docs/ runs, as written.

* ```python blocks run in order, one namespace per file (a block written as a ``>>>``
  session runs as a doctest in that namespace).
* ```console / ```sh / ```bash blocks: each command line runs, in this environment, in
  a scratch folder holding what the commands expect to find there (``my_module.py``,
  ``path/to/my_impl.py``, ``results.json``); ``uv run [flags] X`` runs ``X`` here. Its
  exit status must be 0.
* A plain ``` block right after a paragraph that names a command in backticks is that
  command's output, excerpted: each of its lines must be a line the command prints.
* Lines and blocks that cannot run in a test are listed below with the reason. A block
  or a command line that is neither run nor listed fails the test, so a new block in the
  docs is run from the day it is written.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))

# Command lines that do not run here, and why (matched after stripping a trailing comment).
NOT_RUN = {
    "uv run pytest": "the test command itself",
    "xent-ref verify --impl torch": "needs PyTorch, which is not a dependency",
    "python -m venv": "creates an environment",
}
NOT_RUN_PREFIXES = {
    "pip install": "installs packages",
    "uv run --with jupyterlab jupyter": "starts a notebook server",
    "PYTHONPATH=. python -m pytest -m torch": "needs PyTorch",
    "PYTHONPATH=. python scripts/": "needs PyTorch",
    "python scripts/make_": "writes fixtures with PyTorch",
    "env -u OPENBLAS_CORETYPE": "a benchmark run by hand, minutes long",
    "PYTHONPATH=. /path/to/": "a benchmark run by hand with PyTorch",
    "uv run python scripts/build_notebooks.py": "rebuilds the committed notebooks "
                                                "(tests/test_notebooks.py checks they are current)",
    "git clone": "needs a repository URL",
}
# Languages that are data, not code: format illustrations with placeholders.
DATA_LANGUAGES = {"json", "toml", "text"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    before: str  # the prose between the previous block and this one

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


def blocks_of(path: Path) -> list[Block]:
    found, lines = [], path.read_text(encoding="utf-8").splitlines()
    i, prose_start = 0, 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, language = match.group(1), match.group(2).lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = "\n".join(line[len(indent):] for line in lines[i + 1:end])
        found.append(Block(path, i + 1, language, body, "\n".join(lines[prose_start:i])))
        i = prose_start = end + 1
    return found


ALL_BLOCKS = [block for path in FILES for block in blocks_of(path)]


def _command_lines(block: Block) -> list[str]:
    """The command lines of a shell block, trailing comments removed."""
    commands = []
    for line in block.text.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        commands.append(re.sub(r"\s+#\s.*$", "", line).strip())
    return commands


def _why_not_run(command: str) -> str | None:
    if command in NOT_RUN:
        return NOT_RUN[command]
    for prefix, why in NOT_RUN_PREFIXES.items():
        if command.startswith(prefix):
            return why
    return None


def _argv(command: str) -> list[str] | None:
    """The argv that runs ``command`` in this environment, or None if it is not ours."""
    words = shlex.split(command)
    if words[:2] == ["uv", "run"]:
        words = words[2:]
        while words and words[0].startswith("--"):  # uv's own flags (--no-dev, ...)
            words = words[1:]
    if words[:1] == ["xent-ref"]:
        return [sys.executable, "-m", "xent_ref", *words[1:]]
    if words[:1] == ["python"]:
        return [sys.executable, *words[1:]]
    return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A folder with what the documented commands expect to find."""
    folder = tmp_path_factory.mktemp("docs")
    implementation = "from xent_ref import *  # noqa: F401,F403  (a stand-in implementation)\n"
    (folder / "my_module.py").write_text(implementation)
    (folder / "path" / "to").mkdir(parents=True)
    (folder / "path" / "to" / "my_impl.py").write_text(implementation)
    from xent_ref import golden

    files = {}  # the large arrays, as .npy files beside results.json

    def encode(array):
        return golden.encode_stored(array, files)

    # (the losses and their gradients; the second-order kinds are not offered)
    results = [{"id": case.id, "loss": encode(case.loss),
                "grad": golden.encode_grad(case.grad, encode)} for case in golden.build_corpus()
               if case.kind == "loss"]
    document = {"format": "xent-ref-results", "schema": 1, "implementation": "xent_ref",
                "results": results}
    golden.write_arrays(folder / "results.json", files)
    (folder / "results.json").write_text(json.dumps(document))
    return folder


@lru_cache(maxsize=None)
def _run(argv: tuple[str, ...], cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _cwd_for(argv: list[str], scratch: Path) -> Path:
    """Commands that name repository files run at the root; the rest in the scratch folder."""
    return ROOT if any((ROOT / arg).exists() and "/" in arg for arg in argv[1:]) else scratch


def _output_command(block: Block) -> str | None:
    """The command whose output a plain block shows: the last backticked command in the
    paragraph just before it."""
    paragraph = block.before.strip().split("\n\n")[-1]
    candidates = [c for c in re.findall(r"`([^`]+)`", paragraph) if _argv(c) is not None]
    return candidates[-1] if candidates else None


SHELL = {"console", "sh", "bash", "shell"}


def _kind(block: Block) -> str:
    if block.language == "python":
        return "python"
    if block.language in SHELL:
        return "shell"
    if block.language in DATA_LANGUAGES:
        return "data"
    if block.language == "" and _output_command(block) is not None:
        return "output"
    return "unknown"


# Plain blocks that are neither code nor output: the reason for each.
NOT_CODE = {
    "docs/learning.md": {
        "numerator   = sum of loss": "the end of print(ex) in the block above; "
                                     "tests/test_explain.py holds it to explain's output",
    },
}


def _not_code_reason(block: Block) -> str | None:
    for marker, why in NOT_CODE.get(str(block.path.relative_to(ROOT)), {}).items():
        if block.text.lstrip().startswith(marker):
            return why
    return None


def test_every_block_is_run_or_listed():
    unaccounted = [b.name for b in ALL_BLOCKS
                   if _kind(b) == "unknown" and _not_code_reason(b) is None]
    assert not unaccounted, f"code blocks neither run nor listed in tests/test_docs.py: {unaccounted}"


def test_every_command_line_is_run_or_listed():
    unaccounted = [(b.name, c) for b in ALL_BLOCKS if _kind(b) == "shell"
                   for c in _command_lines(b) if _why_not_run(c) is None and _argv(c) is None]
    assert not unaccounted, f"commands neither run nor listed in tests/test_docs.py: {unaccounted}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block that writes a file writes it here
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks_of(path):
        if block.language != "python":
            continue
        if block.text.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(block.text, namespace, block.name,
                                                       str(path), block.line)
            runner = doctest.DocTestRunner(
                optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, clear_globs=False)
            assert runner.failures == 0, f"doctest block {block.name} failed (output above)"
        else:
            exec(compile(block.text, block.name, "exec"), namespace)  # noqa: S102


SHELL_COMMANDS = sorted({(b.name, c) for b in ALL_BLOCKS if _kind(b) == "shell"
                         for c in _command_lines(b) if _why_not_run(c) is None})


@pytest.mark.parametrize("where, command", SHELL_COMMANDS,
                         ids=[f"{w} {c}" for w, c in SHELL_COMMANDS])
def test_shell_commands_run(where, command, scratch):
    argv = _argv(command)
    result = _run(tuple(argv), str(_cwd_for(argv, scratch)))
    assert result.returncode == 0, (f"{where}: `{command}` exited {result.returncode}\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


OUTPUT_BLOCKS = [b for b in ALL_BLOCKS if _kind(b) == "output"]


@pytest.mark.parametrize("block", OUTPUT_BLOCKS, ids=[b.name for b in OUTPUT_BLOCKS])
def test_output_excerpts_are_what_the_command_prints(block, scratch):
    command = _output_command(block)
    argv = _argv(command)
    result = _run(tuple(argv), str(_cwd_for(argv, scratch)))
    assert result.returncode == 0, result.stderr[-2000:]
    printed = {line.rstrip() for line in result.stdout.splitlines()}
    missing = [line for line in block.text.splitlines()
               if line.strip() not in ("", "...")  # "..." marks lines left out
               and line.rstrip() not in printed]
    assert not missing, f"{block.name}: lines `{command}` does not print: {missing}"
