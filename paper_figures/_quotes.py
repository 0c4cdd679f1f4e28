"""The numbers the README, the user guide and the findings page quote, and the check that they are the code's.

A quoted number (or phrase with numbers) sits in a document between two markers, invisible once rendered::

    ... tends to an exact Beta integral, <!--q F16_floor-->1.73e-9<!--/q--> (...)

Every key names a text that code makes:

* **figure quotes**: a figure's ``report(data)`` rows carry ``"quotes": {key: text}``, made from the same numbers
  as the row (so a quote is never computed twice).  The main job collects them into ``results/quotes.json``
  (:func:`write_quotes`, with the scale, the code fingerprint and the commit) and, at the quick scale, adds a
  report row saying whether the documents quote what this run made (:func:`documents_row`).
  ``docs/quotes.json`` is the snapshot of a complete quick run that the documents show; ``python3 tasks.py
  figures --update-docs`` writes it and the marked texts (:func:`update_documents`).
* **code quotes** (:func:`code_quotes`): texts made from the code alone (``theory``'s exact constants), computed
  whenever they are asked for.

``tests/project/test_quoted_numbers.py`` holds every marked text to the snapshot and to the code quotes, checks the
snapshot's keys against the figures' and fails on a number in a document's prose that no marker and no stated
exemption accounts for.  This module formats and compares only: it is outside the figure data's fingerprint.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

#: The documents whose numbers are quoted (paths from the repository root).
DOCUMENTS = ("README.md", "docs/findings.md", "docs/guide.md")
#: The snapshot of a quick run's quotes that the documents show.
SNAPSHOT = "docs/quotes.json"
#: ``<!--q KEY-->text<!--/q-->``: a key is letters, digits and underscores; the text may wrap over lines.
MARKER = re.compile(r"<!--q ([A-Za-z0-9_]+)-->(.*?)<!--/q-->", re.DOTALL)
#: The scale the documents quote.
SCALE = "quick"
_KEY = re.compile(r"[A-Za-z0-9_]+")


def sci(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, in scientific notation without padding: ``1.73e-9``, ``0.5``.

    Numbers from 1e-3 to 1e4 are written plainly (``%g``); others as ``m e k`` with no ``+`` and no leading zero
    in the exponent.
    """
    x = float(x)
    if x == 0 or not math.isfinite(x) or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _collapse(text: str) -> str:
    return " ".join(text.split())


def code_quotes() -> dict[str, str]:
    """The quotes made from the code alone (no Monte Carlo): ``theory``'s exact constants, as the documents write them."""
    import theory

    ce = theory.THEOREM_3_2_COUNTEREXAMPLE
    printed = float(theory.theorem_3_2_printed.evaluate(**{k: ce[k] for k in ("N", "L", "alpha", "T", "eta",
                                                                            "Delta0")}))
    return {
        "theory_results": f"all {len(theory.RESULTS)} results",
        "F2_counterexample": f"a left side of {ce['lhs']:g} against a printed bound of {printed:g}",
    }


def collect(rows: list[dict]) -> dict[str, dict]:
    """``{key: {"text", "figure"}}`` from report rows carrying ``"quotes"``; a key given twice is an error."""
    out: dict[str, dict] = {}
    for row in rows:
        for key, text in (row.get("quotes") or {}).items():
            if not _KEY.fullmatch(key) or not isinstance(text, str):
                raise ValueError(f"figure {row.get('figure')!r}: quote {key!r} must be a name of letters, digits and "
                                 f"underscores with a text, got {text!r}")
            if key in out:
                raise ValueError(f"quote {key!r} is given by two rows ({out[key]['figure']} and {row.get('figure')})")
            out[key] = {"text": _collapse(text), "figure": row.get("figure")}
    return out


def write_quotes(path: Path, quotes: dict[str, dict], scale: str, figures: list[str], code: str, commit) -> Path:
    """Write ``quotes`` (from :func:`collect`) with what made them: scale, figures, code fingerprint, commit."""
    import montecarlo as mc

    record = {"scale": scale, "figures": sorted(figures), "code": code, "commit": commit,
              "quotes": dict(sorted(quotes.items()))}
    mc.atomic_write(Path(path), json.dumps(record, indent=1) + "\n")
    return Path(path)


def read_quotes(path: Path) -> dict:
    """A quotes file read as data and validated (it may come from someone else): its record, or ValueError."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"quotes file {path}: cannot be read as JSON ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("quotes"), dict):
        raise ValueError(f"quotes file {path}: expected an object with a 'quotes' object")
    for key in ("scale", "code"):
        if not isinstance(record.get(key), str):
            raise ValueError(f"quotes file {path}: '{key}' must be a string")
    for key, entry in record["quotes"].items():
        if not (_KEY.fullmatch(key) and isinstance(entry, dict) and isinstance(entry.get("text"), str)
                and isinstance(entry.get("figure"), str)):
            raise ValueError(f"quotes file {path}: entry {key!r} must be {{'text': str, 'figure': str}}")
    return record


def marked(text: str) -> list[tuple[str, str]]:
    """The ``(key, text)`` of every marker in a document, in order (the text with its whitespace collapsed)."""
    return [(m.group(1), _collapse(m.group(2))) for m in MARKER.finditer(text)]


def check_documents(root: Path, texts: dict[str, str]) -> list[str]:
    """What in the documents under ``root`` differs from ``texts`` (``{key: text}``): one line each, empty if none."""
    problems = []
    for name in DOCUMENTS:
        path = Path(root) / name
        if not path.exists():
            continue
        for key, quoted in marked(path.read_text()):
            if key not in texts:
                problems.append(f"{name}: quote {key!r} is not made by any figure or by the code")
            elif quoted != texts[key]:
                problems.append(f"{name}: {key} quotes {quoted!r}, the code makes {texts[key]!r}")
    return problems


def update_documents(root: Path, texts: dict[str, str]) -> list[str]:
    """Rewrite every marked text in the documents under ``root`` to ``texts`` (line breaks inside a quote become
    spaces); return the documents changed.  A key the documents quote that ``texts`` lacks is an error."""
    changed = []
    for name in DOCUMENTS:
        path = Path(root) / name
        if not path.exists():
            continue
        old = path.read_text()
        missing = sorted({key for key, _ in marked(old)} - set(texts))
        if missing:
            raise ValueError(f"{name} quotes {', '.join(missing)}, which no figure of this run and no code makes")
        new = MARKER.sub(lambda m: f"<!--q {m.group(1)}-->{texts[m.group(1)]}<!--/q-->", old)
        if new != old:
            path.write_text(new)
            changed.append(name)
    return changed


def documents_row(root: Path, fresh: dict[str, dict], figures: list[str]) -> dict | None:
    """A report row: do the documents quote what this run made?  None when the documents are not here (an
    installed package) or quote nothing this run made."""
    texts = {key: entry["text"] for key, entry in fresh.items()}
    texts.update(code_quotes())
    quoted = {}
    for name in DOCUMENTS:
        path = Path(root) / name
        if path.exists():
            for key, text in marked(path.read_text()):
                quoted.setdefault((name, key), text)
    made = {k: v for k, v in quoted.items() if k[1] in texts}
    if not made:
        return None
    differ = [f"{name}: {key} quotes {text!r}, this run {texts[key]!r}" for (name, key), text in made.items()
              if text != texts[key]]
    unmade = sorted({key for (_, key) in quoted if key not in texts})
    return {
        "figure": "documents",
        "link": "quotes.json",
        "claim": "The numbers the README, the user guide and the findings page quote are this code's",
        "check": f"each marked quote of {', '.join(DOCUMENTS)} against the same quote made by this run "
                 f"({len(figures)} figures) and by the code; python3 tasks.py figures --update-docs rewrites them",
        "numbers": f"{len(made) - len(differ)} of {len(made)} quotes agree"
                   + (f"; not made by this run's figures: {', '.join(unmade)}" if unmade else ""),
        "verdict": "agree: every quote is this run's" if not differ else
                   f"disagree at {len(differ)} of {len(made)}: " + "; ".join(differ),
    }
