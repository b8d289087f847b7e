"""The ``xent-ref`` command line: version, and errors reported by the subcommand at fault."""

from __future__ import annotations

import subprocess
import sys

import pytest

import xent_ref
from xent_ref import cli


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xent_ref", *args], capture_output=True,
                          text=True, timeout=120)


def test_version_is_the_package_version():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"xent-ref {xent_ref.__version__}"


def test_installed_metadata_has_the_same_version():
    from importlib.metadata import version

    assert version("xent-ref") == xent_ref.__version__


@pytest.mark.parametrize("args, usage", [
    (["examples", "--bogus"], "usage: xent-ref examples"),
    (["golden", "export", "--bogus", "out.json"], "usage: xent-ref golden export"),
    (["verify", "--impl", "xent_ref", "--bogus"], "usage: xent-ref verify"),
])
def test_unknown_option_is_reported_by_its_subcommand(args, usage, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert "unrecognized arguments: --bogus" in err


def test_missing_subcommand_shows_the_top_level_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("usage: xent-ref [-h] [--version]")


def test_verify_help_mentions_the_path_form():
    result = _run("verify", "--help")
    assert result.returncode == 0
    assert ".py file" in result.stdout
