"""``import montecarlo`` and the command line's help load no heavy library; every public name still resolves.

The package imports its public names on first access (PEP 562), and the CLI's parser is built from light tables
with each command importing its machinery when it runs (issue 26).  The checks run in fresh interpreters, since
this one has long imported everything; how fast ``--help`` answers is a benchmark (``benchmarks/cli_help.py``), not
a test.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import montecarlo as mc

HEAVY = ("torch", "numba", "sympy", "pandas", "scipy")
EAGER = {"code_fingerprint", "git_commit", "source_digest"}  # defined in (or imported by) the package itself


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def _loaded(code: str) -> list[str]:
    """The heavy packages loaded by ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    result = _python("-c", probe)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_montecarlo_loads_no_heavy_library():
    assert _loaded("import montecarlo") == []
    assert _loaded("import montecarlo as mc; mc.code_fingerprint; mc.git_commit; mc.source_digest") == []


@pytest.mark.parametrize("argv", [["--help"], ["tail", "--help"], ["sweep", "--help"], ["train", "--help"],
                                  ["show", "--help"]])
def test_help_loads_no_heavy_library(argv):
    """``python -m montecarlo ... --help`` as a user runs it: every module it imports, read from ``-X importtime``."""
    result = _python("-X", "importtime", "-m", "montecarlo", *argv)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m montecarlo" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "montecarlo._src.cli" in imported  # the probe saw the imports
    assert sorted({name.split(".")[0] for name in imported} & set(HEAVY)) == []


def test_the_parser_loads_no_heavy_library():
    assert _loaded("from montecarlo.__main__ import parser; parser().format_help()") == []


def test_a_public_name_is_imported_on_first_access_and_kept():
    code = ("import sys, montecarlo as mc\n"
            "assert 'MLP' not in vars(mc) and 'montecarlo._src.draw.network' not in sys.modules\n"
            "net = mc.MLP(3, 4, 1)\n"
            "assert vars(mc)['MLP'] is mc.MLP and 'montecarlo._src.draw.network' in sys.modules\n"
            "from montecarlo import sample_confusion, STATISTICS\n"
            "assert sample_confusion is mc.sample_confusion")
    assert _loaded(code) != []  # sample_confusion needs numba: loaded then, not before


def _declared() -> dict[str, str]:
    """Public name -> its defining module, from the package's ``if TYPE_CHECKING:`` imports (what tools read)."""
    tree = ast.parse(Path(mc.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING")
    declared = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.dump(node)
        for alias in node.names:
            declared[alias.asname or alias.name] = importlib.import_module("." + node.module, "montecarlo").__name__
    return declared


def test_every_public_name_resolves_to_the_object_of_its_defining_module():
    declared = _declared()
    assert set(declared) == set(mc.__all__) - EAGER
    assert len(mc.__all__) == len(set(mc.__all__))
    for name in mc.__all__:
        value = getattr(mc, name)
        if name in declared:
            assert value is getattr(sys.modules[declared[name]], name), name
    namespace = {}
    exec("from montecarlo import *", namespace)
    assert {name for name in namespace if name != "__builtins__"} == set(mc.__all__)
    assert set(mc.__all__) <= set(dir(mc))


def test_the_package_still_refuses_unknown_names_and_keeps_its_own_functions():
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        mc.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from montecarlo import no_such_name", {})
    fingerprint = mc.code_fingerprint()
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert mc.git_commit() is None or isinstance(mc.git_commit(), str)
