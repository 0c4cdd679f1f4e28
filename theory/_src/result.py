"""The type of a result of the paper: formula, hypotheses, source, free constants, numerics."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import symbols as S

MODULES = ["scipy", "numpy"]

#: Relative tolerance of an equality hypothesis (``Eq(a, b)`` holds where ``|a - b| <= EQ_RTOL max(|a|, |b|)``).
#: A measured ``|x| = 1`` or ``||W|| = 1`` is the result of floating-point arithmetic (a normalised vector's norm
#: is 1 +- a few ulp, a Haar matrix's largest singular value 1 + 2e-16), so exact equality would reject a third
#: of sphere points and most orthogonal matrices; 1e-9 is far above rounding (1e-16 .. 1e-13 after a few
#: operations) and far below any deviation that changes a theorem's setting.
EQ_RTOL = 1e-9


@dataclass(frozen=True)
class Source:
    """Where a result comes from, and how reliably we know its text.

    ``provenance`` uses the digest's tags: "ICLR-verbatim" (read in full),
    "ICML-secondary" (reported by two research notes), "RECONSTRUCTION"
    (our derivation), "textbook".
    """

    paper: str
    version: str
    section: str
    numbering: str
    provenance: str
    other_versions: str = ""

    def describe(self) -> str:
        text = f"{self.paper}, {self.version}, {self.section}, {self.numbering} [{self.provenance}]"
        return text + (f"; {self.other_versions}" if self.other_versions else "")


PAPER = "Sankararaman, De, Xu, Huang, Goldstein (2020)"


@dataclass(frozen=True, eq=False)
class Hypothesis:
    """One assumption: a sympy relation and one line of text saying what it means.

    Relations are written with the assumption-free symbols of
    ``symbols.plain`` (so that ``alpha > 0`` is not simplified away by the
    positivity assumed for the statement's ``alpha``) and checked by name.
    """

    relation: sp.Basic | None
    text: str

    @functools.cached_property
    def _symbols(self) -> tuple:
        if self.relation is None:
            return ()
        return tuple(sorted(self.relation.free_symbols, key=lambda x: x.name))

    @functools.cached_property
    def _function(self):
        return _tolerant(self.relation, self._symbols)

    @property
    def label(self) -> str:
        """The text with the relation, ``"eta > 4 (...) [eta > 4]"``: how reports name the hypothesis."""
        return self.text + ("" if self.relation is None else f" [{sp.sstr(self.relation)}]")

    def holds(self, values: dict) -> np.ndarray | None:
        """Boolean array (broadcast over the given arrays): where the hypothesis holds; ``None`` if unchecked.

        Equalities (``Eq``, also inside ``And``/``Or``/``Not``) hold within the
        relative tolerance ``EQ_RTOL``; every other relation is evaluated exactly.
        """
        if self.relation is None or any(x.name not in values for x in self._symbols):
            return None
        args = [np.asarray(values[x.name], dtype=float) for x in self._symbols]
        shape = np.broadcast(*args).shape if args else ()
        return np.broadcast_to(np.asarray(self._function(*args), dtype=bool), shape)

    def check(self, values: dict) -> tuple[str, str]:
        """``(status, detail)`` with status "holds", "fails" or "unchecked"; ``values`` maps names to numbers or arrays.

        A hypothesis without a relation (for example "the activation is linear")
        is not a numeric condition and is always reported as unchecked.
        Equalities are checked to the relative tolerance ``EQ_RTOL`` (see ``holds``).
        """
        if self.relation is None:
            return "unchecked", "not a numeric condition; check it by construction"
        missing = [x.name for x in self._symbols if x.name not in values]
        if missing:
            return "unchecked", f"needs {', '.join(missing)}"
        args = [np.asarray(values[x.name], dtype=float) for x in self._symbols]
        shape = np.broadcast(*args).shape if args else ()
        ok = self.holds(values)
        if np.all(ok):
            return "holds", ""
        bad = np.argwhere(~ok)
        first = tuple(bad[0])
        at = ", ".join(f"{x.name}={np.broadcast_to(a, shape)[first]:.6g}" for x, a in zip(self._symbols, args))
        count = f"{len(bad)} of {ok.size} points" if ok.ndim else "this point"
        return "fails", f"fails at {count} ({at})"


def _tolerant(relation: sp.Basic, args: tuple):
    """A numpy function of ``args`` evaluating ``relation``, with every ``Eq`` compared to relative tolerance ``EQ_RTOL``."""
    if isinstance(relation, sp.Eq):
        lhs = sp.lambdify(args, relation.lhs, modules=MODULES)
        rhs = sp.lambdify(args, relation.rhs, modules=MODULES)

        def equal(*values):
            a, b = np.asarray(lhs(*values), dtype=float), np.asarray(rhs(*values), dtype=float)
            with np.errstate(invalid="ignore"):
                return np.abs(a - b) <= EQ_RTOL * np.maximum(np.abs(a), np.abs(b))
        return equal
    if isinstance(relation, (sp.And, sp.Or)):
        parts = [_tolerant(part, args) for part in relation.args]
        combine = np.logical_and if isinstance(relation, sp.And) else np.logical_or

        def joined(*values):
            out = np.asarray(parts[0](*values), dtype=bool)
            for part in parts[1:]:
                out = combine(out, np.asarray(part(*values), dtype=bool))
            return out
        return joined
    if isinstance(relation, sp.Not):
        inner = _tolerant(relation.args[0], args)
        return lambda *values: np.logical_not(inner(*values))
    return sp.lambdify(args, relation, modules=MODULES)


def _failure_terms(statement: sp.Basic) -> sp.Basic:
    """``1 - statement`` with the 1s cancelled symbolically, branch by branch (see ``Result.failure_expression``)."""
    folded = sp.piecewise_fold(1 - statement)
    if isinstance(folded, sp.Piecewise):
        return sp.Piecewise(*[(sp.expand(value, deep=False), condition) for value, condition in folded.args])
    return sp.expand(folded, deep=False)


@dataclass(frozen=True)
class Prediction:
    """What a result says at given values: its value, the hypotheses that fail, those left unchecked."""

    value: np.ndarray
    failures: list
    unchecked: list


@dataclass(frozen=True, eq=False)
class Result:
    """A result of the paper as a checkable object.

    ``statement`` is a sympy expression over the named symbols of
    :mod:`theory._src.symbols`; ``lhs`` is the LaTeX of what it is compared
    with (for example ``\\Pr[\\text{(3) holds}] \\ge``).  ``kind`` is one of
    "upper_bound", "probability_lower_bound", "identity", "definition",
    "exact", "derived".  ``defaults`` are substitutions used when a value is
    not given (for example ``zeta0 = 2 sqrt(beta)``).  ``verdicts`` records
    what our checks found about the printed text (for example a failed scale
    test, with a counterexample).  ``rate`` is, for a probability bound of
    the form ``1 - N^2 exp(-rate) - ...``, the exponent that carries the
    dependence on ``eta``: the variable a collapse plot puts on its axis.
    ``scale_degree`` is ``k`` when the compared quantity scales as ``s^k``
    under ``f_i -> s f_i`` (1 for a loss gap, 2 for a squared gradient norm).
    ``domains`` narrows, for this result only, the domain that
    ``symbols.DOMAINS`` declares for a symbol (for example ``d > 1`` where
    the statement has a ``Beta((d-1)/2, (d-1)/2)`` law).  ``notes`` records
    readings we chose where the source text is ambiguous (for example how a
    printed ``eta/4 zeta0^2`` is parenthesised).

    Every numeric entry point (``evaluate``, ``evaluate_rate``,
    ``evaluate_exact``, ``check_hypotheses``, calling the result) first checks
    each given value, and each default computed from them (``zeta0 = 2
    sqrt(beta)``), against its domain and raises ``ValueError`` naming the
    symbol and the accepted values: a negative width or a NaN is not a point
    where a theorem can be wrong, only a mistake.  Non-integer counts are
    flagged as failing hypotheses instead (see ``symbols``).
    """

    key: str
    name: str
    source: Source
    kind: str
    lhs: str
    statement: sp.Basic
    hypotheses: tuple = ()
    defaults: dict = field(default_factory=dict)
    meaning: str = ""
    verdicts: str = ""
    rate: sp.Basic | None = None
    scale_degree: int | None = None
    domains: dict = field(default_factory=dict)
    notes: str = ""

    # -- symbols -----------------------------------------------------------
    @property
    def symbols(self) -> tuple:
        """Every symbol the statement uses (after defaults), sorted by name."""
        return tuple(sorted(self.resolved.free_symbols, key=lambda x: x.name))

    @property
    def constants(self) -> tuple:
        """The paper's free absolute constants (c, c1, c2) that appear."""
        return tuple(x for x in S.CONSTANTS if x in self.resolved.free_symbols)

    @functools.cached_property
    def resolved(self) -> sp.Basic:
        """The statement with every default substituted (what ``evaluate`` computes when nothing overrides them)."""
        return self.statement.subs(self.defaults)

    # -- rendering ---------------------------------------------------------
    def latex(self) -> str:
        """LaTeX of the statement, with its left-hand side."""
        body = sp.latex(self.statement, symbol_names=S.LATEX_NAMES)
        text = f"{self.lhs} {body}" if self.lhs else body
        if self.defaults:
            subs = ", ".join(
                f"{sp.latex(k, symbol_names=S.LATEX_NAMES)} = {sp.latex(v, symbol_names=S.LATEX_NAMES)}"
                for k, v in self.defaults.items()
            )
            text += rf"\quad ({subs} \text{{ unless given}})"
        return text

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        return f"<{self.name} ({self.key}): {self.meaning or self.kind}>"

    # -- numerics ----------------------------------------------------------
    def domain(self, symbol: sp.Symbol) -> S.Domain:
        """The values ``symbol`` may take here: this result's ``domains``, else ``symbols.DOMAINS``."""
        return self.domains.get(symbol, S.DOMAINS[symbol])

    def _parse(self, values: dict) -> dict:
        parsed = {}
        for name, value in values.items():
            if name not in S.ALL:
                raise ValueError(
                    f"{self.key}: unknown symbol {name!r}; the named symbols are {', '.join(sorted(S.ALL))}"
                )
            parsed[S.ALL[name]] = value
        for symbol, value in parsed.items():
            self._check_value(symbol, value, f"argument {symbol.name!r}")
        self._check_defaults(parsed)
        return parsed

    def _check_value(self, symbol, value, what: str) -> None:
        """Refuse ``value`` (a number or array) outside the domain of ``symbol``, naming it and the domain."""
        if isinstance(value, sp.Basic) and not value.is_number:
            return  # a symbolic value (evaluate_exact): nothing numeric to check yet
        try:
            raw = np.asarray(value)
            # strings and booleans would convert silently ("512" -> 512.0, True -> 1.0): a number is wanted
            if raw.dtype.kind not in "iuf" and not (raw.dtype.kind == "O" and all(
                    isinstance(v, (int, float, sp.Basic)) and not isinstance(v, bool) for v in raw.flat)):
                raise TypeError
            array = raw.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"{self.key}: {what} must be a real number or an array of them; got {value!r}") from None
        domain = self.domain(symbol)
        bad = domain.outside(array)
        if np.any(bad):
            if array.ndim:
                first = float(array[tuple(np.argwhere(bad)[0])])
                got = f"{first:g} (at {int(bad.sum())} of {bad.size} points)"
            else:
                got = f"{float(array):g}"
            raise ValueError(f"{self.key}: {what} must be {domain.describe()}; got {got}")

    @functools.lru_cache(maxsize=None)  # noqa: B019 (results are immutable module-level singletons)
    def _default_function(self, symbol):
        free = tuple(sorted(self.defaults[symbol].free_symbols, key=lambda x: x.name))
        return free, sp.lambdify(free, self.defaults[symbol], modules=MODULES)

    def _default_values(self, given: dict) -> dict:
        """The defaults that can be computed from ``given`` (symbol -> value), for those not given."""
        values = {}
        for symbol, default in self.defaults.items():
            if symbol not in given and default.free_symbols <= set(given):
                free, compute = self._default_function(symbol)
                with np.errstate(all="ignore"):  # the domain check reports a bad default by name
                    values[symbol] = compute(*[np.asarray(given[x], float) for x in free])
        return values

    def _check_defaults(self, given: dict) -> None:
        """A default computed from given values (``zeta0 = 2 sqrt(beta)`` at ``beta = 0``) must be in its domain."""
        if any(isinstance(v, sp.Basic) and not v.is_number for v in given.values()):
            return
        for symbol, value in self._default_values(given).items():
            default = self.defaults[symbol]
            names = ", ".join(x.name for x in sorted(default.free_symbols, key=lambda x: x.name))
            self._check_value(symbol, value, f"{symbol.name!r} (by default {sp.sstr(default)}, from the given "
                                             f"{names}; give {symbol.name} or another {names})")

    def check_domain(self, **values) -> None:
        """Raise ``ValueError`` if a value (or a default computed from them) is outside its symbol's domain."""
        self._parse(values)

    @functools.lru_cache(maxsize=None)  # noqa: B019 (results are immutable module-level singletons)
    def _compiled(self, which: str, defaulted: frozenset):
        expr = getattr(self, which).subs({k: v for k, v in self.defaults.items() if k in defaulted})
        args = tuple(sorted(expr.free_symbols, key=lambda x: x.name))
        return args, sp.lambdify(args, expr, modules=MODULES)

    def evaluate(self, **values):
        """Evaluate the statement, vectorised over numpy arrays (lambdify, compiled once per set of defaults)."""
        return self._evaluate("statement", values)

    def evaluate_rate(self, **values):
        """Evaluate the exponent ``rate`` (for a bound ``1 - N^2 exp(-rate) - ...``), vectorised."""
        if self.rate is None:
            raise ValueError(f"{self.key} has no exponential rate")
        return self._evaluate("rate", values)

    def _evaluate(self, which: str, values: dict):
        given = self._parse(values)
        defaulted = frozenset(k for k in self.defaults if k not in given)
        args, function = self._compiled(which, defaulted)
        missing = [x.name for x in args if x not in given]
        if missing:
            raise ValueError(f"{self.key}: evaluate needs values for {', '.join(missing)}")
        arrays = [np.asarray(given[x], dtype=float) for x in args]
        with np.errstate(over="ignore"):  # exp overflowing to inf is the right value of a vacuous bound
            out = function(*arrays)
        shape = np.broadcast(*arrays).shape if arrays else ()
        return np.broadcast_to(np.asarray(out), shape).copy() if shape else np.asarray(out)[()]

    def evaluate_exact(self, precision: int = 30, **values):
        """The statement at scalar values with sympy's ``evalf`` (the reference for ``evaluate``)."""
        given = self._parse(values)
        expr = self.statement.subs({k: v for k, v in self.defaults.items() if k not in given})
        # A Python float converts exactly to a sympy Float carrying its binary value.
        exact = {k: sp.Float(v, precision) if isinstance(v, float) else v for k, v in given.items()}
        return expr.subs(exact).evalf(precision)

    def _hypothesis_report(self, given: dict) -> tuple[list, list]:
        """Failing and unchecked hypotheses at ``given`` (defaults filled in where they can be computed)."""
        values = {symbol.name: value for symbol, value in given.items()}
        values.update({symbol.name: value for symbol, value in self._default_values(given).items()})
        failures, unchecked = [], []
        # Counts (N, T, beta, width, d) evaluate at any real in their domain; a non-integer one is flagged here.
        # (hypotheses use the assumption-free twins of the symbols, so symbols are matched by name)
        used = {x.name for x in self.resolved.free_symbols} | {x.name for h in self.hypotheses for x in h._symbols}
        for symbol in sorted((x for x in given if x.name in used), key=lambda x: x.name):
            array = np.asarray(given[symbol], dtype=float)
            fractional = self.domain(symbol).non_integer(array)
            if np.any(fractional):
                first = array[tuple(np.argwhere(fractional)[0])] if array.ndim else array[()]
                count = f"{int(fractional.sum())} of {fractional.size} points" if array.ndim else "this point"
                failures.append(f"{symbol.name} is an integer ({self.domain(symbol).meaning}) "
                                f"[{symbol.name} integer]: fails at {count} ({symbol.name}={first:.6g})")
        for hypothesis in self.hypotheses:
            status, detail = hypothesis.check(values)
            relation = "" if hypothesis.relation is None else f" [{sp.sstr(hypothesis.relation)}]"
            line = f"{hypothesis.text}{relation}: {detail}"
            if status == "fails":
                failures.append(line)
            elif status == "unchecked":
                unchecked.append(line)
        return failures, unchecked

    def failing_points(self, **values) -> dict[str, np.ndarray]:
        """Where each checkable hypothesis fails at ``values`` (arrays broadcast together): ``{label: mask}``.

        One boolean mask (True = fails) per hypothesis whose symbols are all
        given (defaults filled in), keyed by ``Hypothesis.label``, plus one per
        count that is given a non-integer value (``"beta is an integer"``).
        Unchecked hypotheses are absent.  The per-point form of
        ``check_hypotheses``, for a fit over a grid (``fit_constant``).
        """
        given = self._parse(values)
        named = {symbol.name: value for symbol, value in given.items()}
        named.update({symbol.name: value for symbol, value in self._default_values(given).items()})
        arrays = [np.asarray(v, dtype=float) for v in named.values()]
        shape = np.broadcast(*arrays).shape if arrays else ()
        masks = {}
        used = {x.name for x in self.resolved.free_symbols} | {x.name for h in self.hypotheses for x in h._symbols}
        for symbol in sorted((x for x in given if x.name in used and self.domain(x).integer), key=lambda x: x.name):
            fractional = self.domain(symbol).non_integer(np.asarray(given[symbol], dtype=float))
            masks[f"{symbol.name} is an integer ({self.domain(symbol).meaning})"] = np.broadcast_to(fractional, shape)
        for hypothesis in self.hypotheses:
            ok = hypothesis.holds(named)
            if ok is not None:
                masks[hypothesis.label] = np.broadcast_to(~ok, shape)
        return masks

    def check_hypotheses(self, **values) -> list[str]:
        """One line per hypothesis that fails at ``values``: the assumption, its relation and where it fails.

        Hypotheses whose symbols are not all given are not reported here; see
        ``result(**values).unchecked``.
        """
        return self._hypothesis_report(self._parse(values))[0]

    def __call__(self, **values) -> Prediction:
        """What the result predicts at ``values`` and which hypotheses fail there, in one call."""
        failures, unchecked = self._hypothesis_report(self._parse(values))
        return Prediction(value=self.evaluate(**values), failures=failures, unchecked=unchecked)

    # -- probability bounds -------------------------------------------------
    def failure_bound(self, **values):
        """For a probability lower bound ``Pr[(3) holds] >= B``: the failure bound ``1 - B`` (vectorised).

        Evaluated from ``failure_expression`` (``N^2 exp(-rate) + ...``), not as
        ``1 - evaluate(...)``: the difference of two numbers near 1 loses every
        failure bound below about 1e-16 (it returned 0 for ``N^2 e^{-73}``), and a
        fit to small probabilities needs them.
        """
        if self.kind != "probability_lower_bound":
            raise ValueError(f"{self.key} is a {self.kind}, not a probability lower bound")
        return self._evaluate("failure_expression", values)

    @property
    def failure_expression(self) -> sp.Basic:
        """``1 - statement`` for a probability lower bound, as a sum of its failure terms: the bound on ``Pr[eta* > eta]``.

        Expanded only at the top level (and inside each branch of a
        ``Piecewise``), so that ``1 - (1 - N^2 e^{-a} - b)`` becomes
        ``N^2 e^{-a} + b`` while each exponent stays whole (``exp(a + b)`` is not
        split into ``exp(a) exp(b)``, which would overflow to ``inf * 0``).
        """
        if self.kind != "probability_lower_bound":
            raise ValueError(f"{self.key} is a {self.kind}, not a probability lower bound")
        return _failure_terms(self.statement)
