"""The verdict report (``report.md`` and ``report.html``) written from the figures' rows.

This module formats only: every word and number comes from the rows the figures' ``report(data)`` return, so it
is not part of the figure data's fingerprint (``_runner.figure_fingerprint``) and editing it recomputes nothing.

What a reader gets, in both files (the same rows, the same words; only the HTML folds long cells):

* the count of each verdict class at the top (:data:`CLASSES`, :func:`verdict_class`: the class follows from the
  verdict's own words by the rules in :data:`RULES`, or from a row's ``"verdict_class"`` when a figure gives one);
* the main findings, one line each, at most one per figure (:func:`findings`), each with its verdict class and
  the caveats its row carries (:func:`caveats`: label model, normalised or raw confusion, activation, ...);
* one table row per claim, its verdict cell coloured by class (HTML) and the class in its own column;
* an interval whose two ends print the same is printed as one value marked as a point (:func:`point_intervals`);
* in the HTML, cells over :data:`FOLD` characters show their first clause and fold the rest in ``<details>``, and
  each figure is a :data:`THUMBNAIL`-pixel thumbnail (responsive) linking to the full PNG and to the PDF.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import montecarlo as mc

#: The verdict classes, in the order the counts are shown, each with its colour and what it means.
CLASSES = {
    "holds": ("#cfe8d5", "the check passes by its stated rule"),
    "consistent": ("#e4f1cf", "the data agree with the claim without confirming it (a bound non-vacuous on the "
                              "grid, a direction the theorem allows)"),
    "partly": ("#fbefc4", "part of the claim holds, part does not (or only within a stated tolerance)"),
    "not resolved": ("#e3e3e8", "the data do not decide (intervals overlap, a bound vacuous on the grid)"),
    "not reproduced": ("#fbdcc0", "the effect was not seen on this run (point values, no interval against it)"),
    "contradicted": ("#f5cdd0", "the data go against the claim (violated, rejected, departs)"),
    "not testable": ("#f2f2f2", "no verdict could be given here (too few grid values, no estimate)"),
    "other": ("#ffffff", "words the report's rules do not know; read the row"),
}

#: How a verdict's words give its class: the first rule whose pattern matches the start of the verdict (or of one
#: labelled part of it, see :func:`verdict_class`) gives the class; patterns starting with ``.*`` match anywhere.
RULES = (
    ("not testable", r"no verdict\b|not testable|no comparison|no fit\b|hypotheses-fail|\d+ runs?(\(s\))? stopped|"
                     r"no estimate"),
    ("partly", r"partly|mixed\b|holds only within|holds at every \w+ only within|holds at (?!every\b|all\b)"),
    ("not resolved", r"not resolved|(correlation )?not established|vacuous\b|no significant|"
                     r"the floor is 0 at some"),
    ("not reproduced", r"not reproduced|not observed"),
    ("contradicted", r"contradicted|violated|rejected|departs|disagree|estimate outside|heavier than gaussian|"
                     r"depth lowers|no bound\b.*\bcan hold|.*\(not l\^2\)|.*\bnot n\^2 exp|.*\bnot l\^2\b"),
    ("consistent", r"non-vacuous|consistent with|lighter than gaussian|depth raises|.*as the theorem.*allows"),
    ("holds", r"holds\b|reproduced\b|agree\b"),
)
_RULES = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in RULES)

#: A label before a part of a verdict that lists one result per grid value: "tau=0.9: ...", "l=16: ...",
#: "beta=1, tau=0.6: ...", "at eta = 0.05 l: ...".
_LABEL = re.compile(r"^\s*(?:(?:[a-z_]+\s*=\s*[^:;]+)|(?:at [^:;]+)):\s+", re.IGNORECASE)

_POSITIVE = {"holds", "consistent"}
_NEGATIVE = {"contradicted", "not reproduced"}


def _classify(text: str) -> str | None:
    for name, pattern in _RULES:
        if pattern.match(text):
            return name
    return None


def verdict_class(row_or_verdict) -> str:
    """The class of a verdict (one of :data:`CLASSES`): a row's ``"verdict_class"`` if it gives one, else its words.

    A verdict that starts with a label ("tau=0.9: depth raises ...; tau=0.95: ...") is one result per grid value:
    each labelled part is classed by :data:`RULES` and the classes combined (parts no rule knows are description
    and left out; "not testable" parts count only when no part was tested): one class if they agree, "consistent"
    for holds with consistent, "partly" when something positive comes with something negative or unresolved, the
    negative class when negative comes only with unresolved.  Any other verdict is classed by its start.
    """
    if isinstance(row_or_verdict, dict):
        given = row_or_verdict.get("verdict_class")
        if given:
            if given not in CLASSES:
                raise ValueError(f"verdict_class must be one of {list(CLASSES)}, got {given!r}")
            return given
        verdict = str(row_or_verdict.get("verdict", ""))
    else:
        verdict = str(row_or_verdict)
    verdict = verdict.strip()
    if not _LABEL.match(verdict):
        return _classify(verdict) or "other"
    parts = {_classify(_LABEL.sub("", part, count=1)) for part in re.split(r";\s+", verdict)} - {None}
    if len(parts) > 1:
        parts.discard("not testable")
    if not parts:
        return "other"
    if len(parts) == 1:
        return parts.pop()
    if "partly" in parts or (parts & _POSITIVE and parts - _POSITIVE):
        return "partly"
    if parts <= _POSITIVE:
        return "consistent"
    negative = parts & _NEGATIVE
    return "contradicted" if "contradicted" in negative else ("not reproduced" if negative else "not resolved")


def counts(rows: list[dict]) -> dict[str, int]:
    """How many rows have each verdict class, in the order of :data:`CLASSES`, classes with no row left out."""
    found = [verdict_class(r) for r in rows]
    return {name: found.count(name) for name in CLASSES if name in found}


#: The kind of confusion a finding is about (what it says and the pattern that finds it), looked for in the finding's
#: words and then in its row's claim and check.
CONFUSION = (
    ("normalised confusion (minimum gradient cosine)", r"normali[sz]ed confusion|min(imum)?( gradient| pairwise)? cos"),
    ("raw confusion eta*", r"\braw eta\*|\beta\*"),
)
#: Other caveats a finding or its row's claim and check can carry: what the caveat says in the finding's line, and the
#: pattern that finds it.
CAVEATS = (
    ("labels random +-1, independent of the data", r"random \+-1 labels|labels:? random \+-1|random-sign labels"),
    ("Strategy 4.1 initialisation", r"Strategy 4\.1"),
    ("tanh", r"\btanh\b"),
    ("relu", r"\brelu\b"),
    ("one seed (no seed-level interval)", r"\bone seed\b|\b1 seed\(s\)"),
    ("our derivation, not the paper's", r"our derivation|this toolkit's derivation"),
)
_CONFUSION = tuple((words, re.compile(pattern, re.IGNORECASE)) for words, pattern in CONFUSION)
_CAVEATS = tuple((words, re.compile(pattern, re.IGNORECASE)) for words, pattern in CAVEATS)
_SIZES = re.compile(r"\bd = (\d+), N = (\d+)\b")


def caveats(row: dict) -> list[str]:
    """The caveats of a finding, stated the same way in every finding's line whether or not its sentence says them
    too: its row's ``"caveats"`` (a string or a list), then the kind of confusion (:data:`CONFUSION`: the one the
    finding names, else the first its row's claim and check name), :data:`CAVEATS` that the finding, claim or check
    carry (label model, initialisation, activation, seeds, whose derivation) and the data size ``d = .., N = ..``.
    Nothing is guessed: a caveat the row's words do not carry is not given."""
    given = row.get("caveats") or []
    found = [given] if isinstance(given, str) else list(given)
    finding = str(row.get("finding", ""))
    text = f"{finding} {row.get('claim', '')} {row.get('check', '')}"
    for words in (finding, text):
        named = sorted((m.start(), kind) for kind, pattern in _CONFUSION if (m := pattern.search(words)))
        if named:
            found.append(named[0][1])
            break
    found += [words for words, pattern in _CAVEATS if pattern.search(text)]
    size = _SIZES.search(text)
    if size:
        found.append(size.group(0))
    return list(dict.fromkeys(str(c) for c in found))


#: How many findings the report states in its first lines.
MAX_FINDINGS = 4


def findings(rows: list[dict], limit: int = MAX_FINDINGS) -> list[dict]:
    """The rows that carry a ``"finding"`` (one sentence with its number), most important first, one per figure.

    Order: the row's ``"finding_priority"`` (lower first; default 5), then the order of the rows.  A figure
    gives at most one main finding (its most important; its other findings stay in its rows), and a finding
    whose words another already states is left out, so no two lines repeat each other; at most ``limit``.
    """
    flagged = sorted(((r.get("finding_priority", 5), i, r) for i, r in enumerate(rows) if r.get("finding")),
                     key=lambda item: item[:2])
    chosen, figures, texts = [], set(), set()
    for _, _, r in flagged:
        text = " ".join(str(r["finding"]).split()).lower()
        if r.get("figure") in figures or text in texts:
            continue
        figures.add(r.get("figure"))
        texts.add(text)
        chosen.append(r)
    return chosen[:limit]


#: A number as the report prints it: 0.5, -1.7e-09, 1.73e-09, 12.3%.
_NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?"
_POINT = re.compile(rf"\[\s*({_NUMBER})\s*,\s*\1\s*\]")


def point_intervals(text: str) -> str:
    """``text`` with every interval whose two ends print the same, ``[1.73e-09, 1.73e-09]``, printed as the one
    value it is at the digits shown, marked as a point: ``1.73e-09 (a point: both ends of its interval agree to
    the digits shown)``.  Intervals of integers (lists such as ``[2, 2]``) are left alone."""
    def one(match):
        value = match.group(1)
        if not re.search(r"[.e%]", value):
            return match.group(0)
        return f"{value} (a point: both ends of its interval agree to the digits shown)"
    return _POINT.sub(one, text)


#: Cells longer than this many characters are folded in the HTML: their first clause shown, the rest in <details>.
FOLD = 300
#: The longest first clause shown of a folded cell (characters); a longer one is cut at a word.
SUMMARY = 160
#: The thumbnails' width in pixels (at most 45% of the window's width).
THUMBNAIL = 480


def _clauses(text: str) -> list[str]:
    """``text`` cut after each "; " (and each sentence end) outside brackets: its clauses, each with its "; "."""
    parts, depth, begin = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if depth == 0 and i + 1 < len(text) and text[i + 1] == " " and (
                char == ";" or (char == "." and re.match(r"\s+[A-Z(]", text[i + 1:]))):
            parts.append(text[begin:i + 1])
            begin = i + 2
    return [p for p in parts + [text[begin:]] if p.strip()]


def _split_first(text: str) -> tuple[str, str]:
    """The first clause of ``text`` (:func:`_clauses`, at most :data:`SUMMARY` characters) and the rest."""
    clauses = _clauses(text)
    first, rest = clauses[0], " ".join(clauses[1:])
    if len(first) > SUMMARY:  # cut at a list's ", " if one is near, else at a word
        comma, space = first.rfind(", ", 0, SUMMARY), first.rfind(" ", 0, SUMMARY)
        cut = comma + 1 if comma > SUMMARY // 2 else space if space > SUMMARY // 2 else SUMMARY
        first, rest = first[:cut], first[cut:].lstrip() + (" " + rest if rest else "")
    return first, rest


def html_cell(text: str) -> str:
    """One table cell's HTML: the escaped text, folded in ``<details>`` when longer than :data:`FOLD` (its first
    clause in the summary, the rest one clause a line)."""
    text = str(text)
    if len(text) <= FOLD:
        return html.escape(text, quote=False)
    first, rest = _split_first(text)
    if not rest:
        return html.escape(text, quote=False)
    parts = _clauses(rest)
    return (f"<details><summary>{html.escape(first, quote=False)} <span class=more>&hellip; {len(parts)} more</span>"
            "</summary>" + "<br>".join(html.escape(p, quote=False) for p in parts) + "</details>")


def _badge(name: str) -> str:
    return f"<span class=\"verdict {_css(name)}\">{html.escape(name)}</span>"


def _css(name: str) -> str:
    return "v-" + name.replace(" ", "-")


def _lead_text(r: dict) -> str:
    """A finding's line without its link: the finding, then its caveats."""
    cav = caveats(r)
    return point_intervals(" ".join(str(r["finding"]).split())) + (f". Caveats: {'; '.join(cav)}." if cav else "")


DESCRIPTION = ("Sankararaman, De, Xu, Huang, Goldstein, ICML 2020.  One row per result or claim: the check that was "
               "run, its numbers (Monte Carlo probabilities with 95% Clopper-Pearson intervals, means with standard "
               "errors), and the verdict.  Bounds with unspecified absolute constants are reported with the largest "
               "constant for which they dominate every grid point.")


def _figure_groups(rows: list[dict]) -> list[int]:
    """For each row, how many rows its figure cell spans (consecutive rows of one figure share one thumbnail);
    0 for a row inside a span."""
    spans = [0] * len(rows)
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1]["link"] == rows[i]["link"]:
            j += 1
        spans[i] = j - i + 1
        i = j + 1
    return spans


def write_report(rows: list[dict], scale: str, out: Path, timings: dict | None = None) -> Path:
    """One row per claim checked: the check, the numbers, the verdict, its class and a link to the figure.

    The first lines count the verdict classes and state the main findings (:func:`findings`), each with its
    class, its caveats and a link to its figure.  Writes ``out/report.md`` and ``out/report.html`` (the same
    rows and words; the HTML colours the verdicts, folds long cells and shows thumbnails); returns the first.
    """
    columns = ("claim", "check", "numbers", "verdict")
    hidden = {"figure", "link", "finding", "finding_priority", "verdict_class", "caveats"}
    extra = tuple(sorted({k for r in rows for k in r} - set(columns) - hidden))
    classes = [verdict_class(r) for r in rows]
    tally = counts(rows)
    top = findings(rows)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    title = f"Gradient confusion: verdict report ({scale} run, {stamp})"
    cell = lambda r, c: point_intervals(str(r.get(c, "")))  # noqa: E731

    # -- Markdown
    escape = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    tally_md = ", ".join(f"{n} {name}" for name, n in tally.items())
    lead = "".join(f"{n}. **{verdict_class(r)}**: {_lead_text(r)} ([{r['figure']}]({r['link']}))\n"
                   for n, r in enumerate(top, 1))
    legend = "; ".join(f"*{name}*: {meaning}" for name, (_, meaning) in CLASSES.items() if name in tally)
    header = ("| " + " | ".join(columns + ("class",) + extra) + " | figure |\n|"
              + "---|" * (len(columns) + len(extra) + 2) + "\n")
    lines = []
    for r, klass in zip(rows, classes):
        cells = [escape(cell(r, c)) for c in columns[:3]] + [f"**{escape(cell(r, 'verdict'))}**", klass]
        cells += [escape(cell(r, c)) for c in extra]
        lines.append("| " + " | ".join(cells) + f" | [{r['figure']}]({r['link']}) |")
    md = (f"# {title}\n\n**Verdicts** ({len(rows)} rows): {tally_md}\n\n"
          + (f"**Main findings**\n\n{lead}\n" if top else "")
          + f"{DESCRIPTION}  Verdict classes: {legend}.\n\n" + header + "\n".join(lines) + "\n")
    if timings:
        md += "\nSeconds per figure: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    mc.atomic_write(out / "report.md", md)

    # -- HTML
    style = (
        "body{font-family:system-ui,sans-serif;line-height:1.4;max-width:110em;margin:auto;padding:0 1em}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;"
        "text-align:left}th{background:#f4f4f4;position:sticky;top:0}"
        ".verdict{display:inline-block;border-radius:3px;padding:0 .4em;border:1px solid #0002;white-space:nowrap}"
        ".counts .verdict{margin-right:.4em}.findings li{margin-bottom:.4em}.caveats{color:#555;font-size:90%}"
        "details summary{cursor:pointer}details[open] summary{margin-bottom:.3em}.more{color:#666;font-size:90%}"
        f"td.figure{{width:{THUMBNAIL}px;max-width:45vw}}td.figure img{{width:{THUMBNAIL}px;max-width:45vw;"
        "height:auto;display:block}"
        + "".join(f".{_css(name)}{{background:{colour}}}" for name, (colour, _) in CLASSES.items())
    )
    tally_html = "".join(f"<span class=\"verdict {_css(name)}\" data-class=\"{html.escape(name)}\" "
                         f"data-count=\"{n}\" title=\"{html.escape(CLASSES[name][1])}\"><b>{n}</b> "
                         f"{html.escape(name)}</span>" for name, n in tally.items())
    lead_html = "".join(
        f"<li>{_badge(verdict_class(r))} {html.escape(point_intervals(' '.join(str(r['finding']).split())))}"
        + (f" <span class=caveats>Caveats: {html.escape('; '.join(caveats(r)))}.</span>" if caveats(r) else "")
        + f" (<a href=\"{html.escape(r['link'])}\">{html.escape(r['figure'])}</a>)</li>"
        for r in top)
    legend_html = "".join(f"<li>{_badge(name)} {html.escape(meaning)}</li>"
                          for name, (_, meaning) in CLASSES.items() if name in tally)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns + ("class",) + extra)
    body = []
    for r, klass, span in zip(rows, classes, _figure_groups(rows)):
        cells = [f"<td>{html_cell(cell(r, c))}</td>" for c in columns[:3]]
        cells.append(f"<td class=\"{_css(klass)}\">{html_cell(cell(r, 'verdict'))}</td>")
        cells.append(f"<td>{_badge(klass)}</td>")
        cells += [f"<td>{html_cell(cell(r, c))}</td>" for c in extra]
        if span and not r["link"].endswith(".png"):  # a row that checks no figure (the documents' quotes)
            cells.append(f"<td class=figure rowspan={span}><a href=\"{html.escape(r['link'])}\">"
                         f"{html.escape(r['figure'])}</a></td>")
        elif span:
            link = html.escape(r["link"])
            pdf = html.escape(re.sub(r"\.png$", ".pdf", r["link"]))
            cells.append(f"<td class=figure rowspan={span}><a href=\"{link}\"><img src=\"{link}\" "
                         f"alt=\"{html.escape(r['figure'])}\" loading=lazy></a>{html.escape(r['figure'])} "
                         f"(<a href=\"{link}\">PNG</a>, <a href=\"{pdf}\">PDF</a>)</td>")
        body.append(f"<tr data-class=\"{html.escape(klass)}\">" + "".join(cells) + "</tr>\n")
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
        f"<title>Gradient confusion: verdict report</title><style>{style}</style>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class=counts><b>Verdicts</b> ({len(rows)} rows): {tally_html}</p>"
        + (f"<h2>Main findings</h2><ol class=findings>{lead_html}</ol>" if top else "")
        + f"<p>{html.escape(DESCRIPTION)}</p><details><summary>Verdict classes</summary><ul>{legend_html}</ul>"
        f"</details><table><thead><tr>{head}<th>figure</th></tr></thead><tbody>\n{''.join(body)}</tbody></table>"
        + (f"<p>Seconds per figure: {html.escape(', '.join(f'{k} {v:.0f}' for k, v in timings.items()))}</p>"
           if timings else "")
        + "</html>\n"
    )
    mc.atomic_write(out / "report.html", page)
    return out / "report.md"
