"""The getting-started page runs as written, and prints what it says it prints.

Its Python blocks run in order in one namespace (as a reader pastes them); the first block's output is compared
with the ``text`` block that follows it on the page, and the tail recipe's threshold must have the tail probability
it claims on the curve it was read from.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting_started.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), re.S)


def test_the_getting_started_page_runs_as_written_and_prints_what_it_shows():
    code, shown = blocks("python"), blocks("text")
    assert len(code) == 2 and len(shown) == 1
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code[0], str(PAGE), "exec"), namespace)
    assert out.getvalue().split() == shown[0].split()  # the page's printed output is the code's own
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code[1], str(PAGE), "exec"), namespace)
    tail, tau = namespace["tail"], namespace["tau"]
    curve = tail.tail
    # tau lies between two grid points whose probabilities bracket 1e-10
    i = np.searchsorted(-curve["s"].to_numpy(), -tau)
    assert curve["probability"].iloc[i - 1] >= 1e-10 >= curve["probability"].iloc[i]
    assert -1 < tau < -0.99 and tail.estimate < 1e-10
