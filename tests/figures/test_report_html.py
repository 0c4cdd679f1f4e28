"""The verdict report people read (issue 26 item 6), built from small synthetic rows, not from the main job.

Counts of the verdict classes at the top equal the rows' classes; each verdict cell carries its class; long cells are
folded in the HTML only; one line per main finding, no two from one figure, none repeated; an interval whose ends
print the same is printed as a point; each finding's line has its caveats; thumbnails link to the figure files; the
Markdown has the same rows, words and classes as the HTML.
"""

import re
from collections import Counter
from html.parser import HTMLParser

import pytest

from paper_figures import _report, _runner
from paper_figures._report import verdict_class, write_report

F4 = "figures/F4_gaussian_init/F4_gaussian_init.png"
F16 = "figures/F16_rare_tails/F16_rare_tails.png"
F2 = "figures/F2_sgd_theorems/F2_sgd_theorems.png"
LONG = "; ".join(f"beta={b}: l=8 0.219 [0.189,0.241] / 0.059, l=16 0.463 [0.432,0.494] / 0.295, l=32 0.727 "
                 f"[0.698,0.754] / 0.662" for b in range(1, 7))
FLOOR = "F16: Pr[min cos < -0.97] tends with width to an exact positive floor [1.73e-09, 1.73e-09] (d = 16, N = 8)"


def _row(figure, link, verdict, **more):
    return {"figure": figure, "link": link, "claim": f"claim of {figure}", "check": "a check", "numbers": "p = 0.5",
            "verdict": verdict, **more}


def _rows():
    return [
        _row("F2_sgd_theorems", F2, "holds on all regimes"),
        _row("F2_sgd_theorems", F2, "violated at orthogonal (eta = 0), rescaled s = 1000 (T = 1..400)",
             finding="F2: Theorem 3.2 as printed fails the scale test", finding_priority=1.8),
        _row("F4_gaussian_init", F4, "vacuous: theorem_4_1_sphere holds on this grid with c2 <= 127"),
        _row("F4_gaussian_init", F4, "violated: Pr rises with width at depths [1, 2]",
             check="ML slope of -log Pr[eta* > 0.03] against l^2; Monte Carlo, tanh, Strategy 4.1, d = 16, N = 8",
             finding="F4: Pr[eta* > 0.03] rises with width", finding_priority=1.5, **{"infinite width": LONG}),
        _row("F4_gaussian_init", F4, "non-vacuous: theorem_4_2_sphere_iclr holds on this grid"),
        _row("F16_rare_tails", F16, "no bound N^2 exp(-c l^2 ...) on the normalised confusion can hold at all widths",
             check="the normalised confusion (minimum gradient cosine), random +-1 labels, tanh",
             numbers="tau=0.97: floor [1.73e-09, 1.73e-09]; depths [2, 2]", finding=FLOOR, finding_priority=1),
        # the same figure's second finding repeats the first: not a second main-finding line
        _row("F16_rare_tails", F16, "contradicted: Pr tends to the positive infinite-width floor (exact)",
             finding="F16: Pr[min cos < -0.97] falls with width only to the floor [1.73e-09, 1.73e-09]",
             finding_priority=1.2),
        _row("F16_rare_tails", F16, "tau=0.6: no verdict: 2 grid values (3 needed); tau=0.7: no verdict: 2 grid "
                                    "values (3 needed)"),
        _row("F16_rare_tails", F16, "tau=0.9: depth raises the excess over the floor; tau=0.95: depth raises the "
                                    "excess over the floor"),
        _row("F16_rare_tails", F16, "l=16: heavier than Gaussian in eta (q = 1.4 < 2); l=32: consistent with a "
                                    "Gaussian tail in eta (the interval of q contains 2)"),
        _row("F16_rare_tails", F16, "not resolved at matched loss (pair-bootstrap spreads overlap)"),
        _row("F16_rare_tails", F16, "not reproduced on this run"),
    ]


class _Page(HTMLParser):
    """The parts of the report's HTML the tests read: counts, findings, table rows (cells, classes), links."""

    def __init__(self):
        super().__init__()
        self.counts, self.findings, self.rows, self.images = {}, [], [], []
        self._stack, self._text = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and "data-count" in a:
            self.counts[a["data-class"]] = int(a["data-count"])
        if tag == "li" and self._stack and self._stack[-1] == "ol":
            self.findings.append("")
            self._text = "li"
        if tag == "tr" and "data-class" in a:
            self.rows.append({"class": a["data-class"], "cells": [], "cell_classes": []})
        if tag == "td" and self.rows:
            self.rows[-1]["cells"].append("")
            self.rows[-1]["cell_classes"].append(a.get("class"))
            self._text = "td"
        if tag == "img":
            self.images.append({"src": a["src"], "href": self._href})
        if tag == "a":
            self._href = a["href"]
        if tag in ("ol", "details", "summary"):
            self._stack.append(tag)
            if tag in ("details", "summary") and self._text == "td":
                self.rows[-1]["cells"][-1] += f"<{tag}>"

    def handle_endtag(self, tag):
        if tag in ("ol", "details", "summary") and self._stack:
            self._stack.pop()
            if self._text == "td":
                self.rows[-1]["cells"][-1] += f"</{tag}>"
        if tag in ("li", "td"):
            self._text = None

    def handle_data(self, data):
        if self._text == "li":
            self.findings[-1] += data
        elif self._text == "td":
            self.rows[-1]["cells"][-1] += data


@pytest.fixture
def report(tmp_path):
    for link in (F2, F4, F16):
        (tmp_path / link).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / link).write_bytes(b"\x89PNG\r\n")
    rows = _rows()
    write_report(rows, "fast", tmp_path, {"F2_sgd_theorems": 1.0})
    page = _Page()
    page.feed((tmp_path / "report.html").read_text())
    return rows, page, (tmp_path / "report.md").read_text(), tmp_path


def _md_rows(md):
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    split = lambda line: [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]  # noqa: E731
    header = split(lines[0])
    return header, [dict(zip(header, split(line))) for line in lines[1:]]


def test_the_counts_at_the_top_equal_the_rows_verdict_classes(report):
    rows, page, md, _ = report
    expected = Counter(verdict_class(r) for r in rows)
    assert page.counts == dict(expected)
    assert sum(page.counts.values()) == len(rows) == len(page.rows)
    assert Counter(r["class"] for r in page.rows) == expected
    top = md.split("**Main findings**")[0]
    assert f"**Verdicts** ({len(rows)} rows): " in top
    for name, n in expected.items():
        assert f"{n} {name}" in top
    # the synthetic rows reach every class but "other", in the counts' order
    assert list(page.counts) == [c for c in _report.CLASSES if c != "other"]


def test_each_verdict_cell_has_its_class(report):
    rows, page, md, _ = report
    style = re.search(r"<style>(.*?)</style>", (report[3] / "report.html").read_text()).group(1)
    for row, shown in zip(rows, page.rows):
        klass = verdict_class(row)
        css = "v-" + klass.replace(" ", "-")
        assert shown["class"] == klass
        verdict_cell = shown["cells"][3]
        assert shown["cell_classes"][3] == css and verdict_cell.startswith(row["verdict"][:40])
        assert shown["cells"][4] == klass  # the class's own column
        assert f".{css}{{background:" in style
    assert [r["class"] for r in _md_rows(md)[1]] == [verdict_class(r) for r in rows]


@pytest.mark.parametrize("verdict, klass", [
    ("holds", "holds"), ("holds on this grid", "holds"),
    ("holds at every depth (within 3 s.e. of the formula)", "holds"),
    ("holds at all 4 (architecture, depth, tau): |predicted - measured| <= 3 s.e.", "holds"),
    ("reproduced at matched loss in one seed (no seed-level interval)", "holds"), ("agree at every point", "holds"),
    ("non-vacuous: theorem_6_1 holds on this grid with c <= 1.76e+03", "consistent"),
    ("tau=0.9: depth raises the excess over the floor; tau=0.95: no verdict: 2 grid values (3 needed)", "consistent"),
    ("partly: training speed only, in one seed (no seed-level interval)", "partly"),
    ("holds only within the stated tolerance of 0.05 on the power", "partly"),
    ("holds at every depth only within the stated 10% tolerance", "partly"),
    ("holds at widths [4]; at widths [16, 64] it grows with depth", "partly"),
    ("holds at 3 of 4 (|predicted - measured| <= 3 s.e.); fails at ...", "partly"),
    ("mixed at matched loss", "partly"), ("partly reproduced at matched loss (some levels not resolved)", "partly"),
    ("tau=0.9: depth raises the excess over the floor; tau=0.95: depth lowers the excess over the floor", "partly"),
    ("vacuous: theorem_4_1_sphere holds on this grid with c2 <= 127", "not resolved"),
    ("not resolved: the intervals at the narrowest and widest width overlap", "not resolved"),
    ("correlation not established (a Spearman 95% interval reaches 0)", "not resolved"),
    ("not established (the run may be too short)", "not resolved"),
    ("not observed on this grid", "not reproduced"), ("not reproduced on this run", "not reproduced"),
    ("violated at orthogonal (eta = 0)", "contradicted"), ("rejected", "contradicted"),
    ("departs: exact median inside at 87% of the points", "contradicted"),
    ("contradicted at matched loss in one seed", "contradicted"), ("disagree at l=16 tau=0.9", "contradicted"),
    ("the rescaled eta*'s limit law has a positive tail (floor) at every eta: what Theorem 4.1 could say is "
     "Pr -> floor(eta) > 0, not N^2 exp(-c (l d + l^2 beta) eta^2) -> 0", "contradicted"),
    ("at eta = 0.05 l: -log Pr grows like l^0.88 [-0.2, 2] (not l^2)", "contradicted"),
    ("no verdict: 2 grid values (3 needed)", "not testable"),
    ("not testable at matched loss: one depth", "not testable"),
    ("no comparison: no measured C", "not testable"), ("2 run(s) stopped: no estimate there", "not testable"),
    ("tau=0.9: no fit: too few points", "not testable"),
    ("something no rule knows", "other"),
])
def test_verdict_words_give_their_class(verdict, klass):
    assert verdict_class(verdict) == klass
    assert verdict_class({"verdict": verdict}) == klass


def test_a_row_may_give_its_class_and_only_a_known_one():
    assert verdict_class({"verdict": "something no rule knows", "verdict_class": "partly"}) == "partly"
    with pytest.raises(ValueError, match="verdict_class must be one of"):
        verdict_class({"verdict": "holds", "verdict_class": "fine"})


def test_long_cells_are_folded_in_the_html_only(report):
    rows, page, md, _ = report
    long_row = next(r for r in page.rows if any(len(c) > 300 for c in r["cells"]))
    folded = [c for c in long_row["cells"] if c.startswith("<details><summary>")]
    assert len(folded) == 1
    summary = re.match(r"<details><summary>(.*?)</summary>", folded[0]).group(1)
    assert summary.startswith(LONG.split("; ")[0]) and "5 more" in summary  # first clause shown, 5 folded
    assert folded[0].replace("<details><summary>", "").count("beta=") == 6  # nothing lost
    for row in page.rows:  # short cells stay as they are
        assert all(c.startswith("<details>") == (len(c) > 300) for c in row["cells"] if "beta=" not in c)
    assert "<details>" not in md and LONG in md  # the Markdown has the whole cell, unfolded


def test_one_line_per_main_finding_none_repeated(report):
    rows, page, md, _ = report
    lines = page.findings
    assert len(lines) == len(set(lines)) == 3  # F16 (its first finding only), F4, F2
    assert [line.split(":")[0].split()[-1] for line in lines] == ["F16", "F4", "F2"]
    assert not any("falls with width only to the floor" in line for line in lines)
    md_lines = re.findall(r"^\d+\. .*$", md, re.MULTILINE)
    assert len(md_lines) == 3 and all("\n" not in line for line in md_lines)
    assert [verdict_class(r) for r in _runner.findings(rows)] == ["contradicted"] * 3
    assert all(line.startswith(("contradicted ", "holds ")) for line in lines)  # the class leads each line
    # the same text twice, even from two figures, is one line
    twice = [_row("F2_sgd_theorems", F2, "holds", finding="same words"),
             _row("F4_gaussian_init", F4, "holds", finding="same  words ")]
    assert len(_report.findings(twice)) == 1


def test_a_one_point_interval_is_printed_as_a_point(report):
    rows, page, md, _ = report
    assert "[1.73e-09, 1.73e-09]" not in md and "1.73e-09, 1.73e-09" not in (report[3] / "report.html").read_text()
    assert "floor 1.73e-09 (a point: both ends of its interval agree to the digits shown)" in page.findings[0]
    assert "depths [2, 2]" in md  # a list of integers is no interval: left alone
    assert _report.point_intervals("0.5 [0.4, 0.6] and [0.25,0.25] and [3%, 3%]") == (
        "0.5 [0.4, 0.6] and 0.25 (a point: both ends of its interval agree to the digits shown) and 3% (a point: "
        "both ends of its interval agree to the digits shown)")


def test_each_finding_line_has_its_caveats(report):
    rows, page, md, _ = report
    f16, f4, f2 = page.findings
    assert "Caveats: normalised confusion (minimum gradient cosine); labels random +-1, independent of the data; " \
           "tanh; d = 16, N = 8." in f16
    assert "Caveats: raw confusion eta*; Strategy 4.1 initialisation; tanh; d = 16, N = 8." in f4
    assert "Caveats" not in f2  # its row carries none: nothing is guessed
    assert "Caveats: raw confusion eta*; Strategy 4.1 initialisation; tanh; d = 16, N = 8." in md
    given = _row("F2_sgd_theorems", F2, "holds", finding="x", caveats="least squares")
    assert _report.caveats(given) == ["least squares"]


def test_thumbnails_link_to_the_figure_files(report):
    rows, page, md, folder = report
    text = (folder / "report.html").read_text()
    assert [i["src"] for i in page.images] == [F2, F4, F16]  # one per figure, spanning its rows
    for image in page.images:
        assert image["href"] == image["src"] and (folder / image["src"]).exists()
        assert f'<a href="{image["src"].replace(".png", ".pdf")}">PDF</a>' in text
    assert f"img{{width:{_report.THUMBNAIL}px;max-width:45vw" in text and _report.THUMBNAIL >= 480
    spans = [int(s) for s in re.findall(r"<td class=figure rowspan=(\d+)>", text)]
    assert spans == [2, 3, 7] and sum(spans) == len(rows)


def test_the_markdown_has_the_html_rows(report):
    rows, page, md, _ = report
    header, md_rows = _md_rows(md)
    assert header == ["claim", "check", "numbers", "verdict", "class", "infinite width", "figure"]
    assert len(md_rows) == len(page.rows) == len(rows)
    for row, md_row, shown in zip(rows, md_rows, page.rows):
        assert md_row["verdict"] == f"**{_report.point_intervals(row['verdict'])}**"
        assert md_row["class"] == shown["class"] == shown["cells"][4]
        assert md_row["claim"] == shown["cells"][0]
        assert md_row["figure"] == f"[{row['figure']}]({row['link']})"
    assert "Seconds per figure: F2_sgd_theorems 1" in md


def test_the_report_code_is_outside_the_data_fingerprint(monkeypatch):
    seen = []
    monkeypatch.setattr(_runner.mc, "source_digest", lambda paths, root: seen.extend(p.name for p in paths) or "x")
    _runner.figure_fingerprint()
    assert "_report.py" not in seen and "_runner.py" in seen and "f16_rare_tails.py" in seen
