"""Rego safety check: every variable must be bound by a positive expression (OPA's safety rule).

OPA refuses a module in which a variable of a rule's head, or of any expression of its body,
is not bound by some positive (non-negated) expression of that body: an assignment (``:=``),
a unification (``=``) with a bound side, ``some … in …``, or iteration over a reference
(``xs[i]``). rego-cpp (regopy 1.5.2) has no such check: it evaluates an unsafe rule to garbage
or to ``true`` without a word, so a policy our embedded engine accepts could be one OPA refuses
(or, worse, one that means something else). See docs/dependencies.md.

This is a lint for the subset of Rego v1 our policies are written in (opa fmt layout: each
top-level statement starts at column 0), not a Rego parser: rules with ``if`` bodies (braced
or one expression), ``else`` chains, ``contains``, functions, comprehensions, ``some``,
``every``, ``not``, ``with``. Names of the same package's rules, imports, ``input``, ``data``
and called functions are global; any other name is a variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UnsafeVariable", "check_files", "check_sources"]

_TOKEN = re.compile(
    r"""(?P<comment>\#[^\n]*)
      | (?P<string>"(?:\\.|[^"\\\n])*"|`[^`]*`)
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>:=|==|!=|<=|>=|[-+*/%<>=|&.,;:()\[\]{}!])
      | (?P<newline>\n)
      | (?P<space>[ \t\r]+)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"if", "else", "some", "in", "every", "not", "with", "as", "contains", "default"}
    | {"true", "false", "null", "package", "import"}
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(_OPEN.values())


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    line: int
    first: bool  # the first token of its line


@dataclass(frozen=True)
class UnsafeVariable:
    file: str
    line: int
    rule: str
    var: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: var {self.var} is unsafe (rule {self.rule})"


class _Malformed(ValueError):
    pass


def _tokens(source: str) -> list[Tok]:
    out: list[Tok] = []
    line, pos, first = 1, 0, True
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise _Malformed(f"line {line}: unexpected character {source[pos]!r}")
        kind = match.lastgroup or ""
        text = match.group()
        pos = match.end()
        if kind == "newline":
            out.append(Tok("newline", text, line, first))
            line, first = line + 1, True
        elif kind == "string":
            out.append(Tok(kind, text, line, first))
            line += text.count("\n")
            first = False
        elif kind not in {"comment", "space"}:
            out.append(Tok(kind, text, line, first))
            first = False
    return out


def _statements(tokens: list[Tok]) -> list[list[Tok]]:
    """Top-level statements: each starts at column 0 outside any bracket."""
    statements: list[list[Tok]] = []
    depth = 0
    for tok in tokens:
        starts = tok.first and depth == 0 and tok.kind != "newline"
        if starts and tok.text not in _CLOSE and tok.text != "else":
            statements.append([])
        if statements:
            statements[-1].append(tok)
        if tok.text in _OPEN:
            depth += 1
        elif tok.text in _CLOSE:
            depth -= 1
    return statements


def _strip(tokens: Sequence[Tok]) -> list[Tok]:
    return [t for t in tokens if t.kind != "newline"]


def _group(tokens: Sequence[Tok], start: int) -> int:
    """Index just past the bracket group opening at ``start``."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].text in _OPEN:
            depth += 1
        elif tokens[i].text in _CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
    raise _Malformed(f"line {tokens[start].line}: unbalanced {tokens[start].text}")


def _split(tokens: Sequence[Tok], separators: set[str]) -> list[list[Tok]]:
    """``tokens`` cut at top-level separators (newline tokens included by name)."""
    parts: list[list[Tok]] = [[]]
    depth = 0
    for tok in tokens:
        if depth == 0 and tok.text in separators:  # a newline token's text is "\n"
            parts.append([])
            continue
        if tok.text in _OPEN:
            depth += 1
        elif tok.text in _CLOSE:
            depth -= 1
        parts[-1].append(tok)
    return [p for p in (_strip(p) for p in parts) if p]


def _at_top(tokens: Sequence[Tok], text: str) -> int:
    depth = 0
    for i, tok in enumerate(tokens):
        if depth == 0 and tok.text == text:
            return i
        if tok.text in _OPEN:
            depth += 1
        elif tok.text in _CLOSE:
            depth -= 1
    return -1


class _Checker:
    def __init__(self, file: str, rule: str, globals_: frozenset[str]) -> None:
        self.file, self.rule, self.globals = file, rule, globals_
        self.unsafe: list[UnsafeVariable] = []

    # -- variables of a term ---------------------------------------------------------------
    def vars(self, tokens: Sequence[Tok], bound: set[str]) -> tuple[dict[str, int], set[str]]:
        """(free variables -> line, variables in ref brackets: those iteration may bind) of a
        term or expression; comprehensions are checked here, in their own scope."""
        free: dict[str, int] = {}
        iterated: set[str] = set()
        i = 0

        def text(k: int) -> str:
            return tokens[k].text if 0 <= k < len(tokens) else ""

        while i < len(tokens):
            tok = tokens[i]
            if tok.kind == "newline":
                i += 1
                continue
            if tok.text in ("[", "{"):
                end = _group(tokens, i)
                if _at_top(tokens[i + 1 : end - 1], "|") >= 0:
                    for name, line in self.comprehension(tokens[i + 1 : end - 1], bound).items():
                        free.setdefault(name, line)
                    i = end
                    continue
            if tok.kind == "name" and tok.text not in _KEYWORDS and tok.text != "_":
                after_dot = text(i - 1) == "."
                j = i
                while text(j + 1) == "." and j + 2 < len(tokens) and tokens[j + 2].kind == "name":
                    j += 2
                called = text(j + 1) == "("
                if not after_dot and not called and tok.text not in self.globals:
                    free.setdefault(tok.text, tok.line)
                    # xs[i] alone in its brackets, after a reference: iteration binds i.
                    after_ref = i > 1 and (
                        tokens[i - 2].kind in ("name", "string") or text(i - 2) in ("]", ")")
                    )
                    if text(i - 1) == "[" and text(i + 1) == "]" and after_ref:
                        iterated.add(tok.text)
                i = j + 1 if called or after_dot else i + 1
                continue
            i += 1
        return free, iterated

    def comprehension(self, inner: Sequence[Tok], outer: set[str]) -> dict[str, int]:
        """Free variables of a comprehension (those its body does not bind), after checking
        its head against what its body binds."""
        bar = _at_top(inner, "|")
        head, body = inner[:bar], inner[bar + 1 :]
        local, unbound = self.body(_split(body, {";", "\n"}), set(outer))
        free, _ = self.vars(head, local)
        return {**{n: ln for n, ln in free.items() if n not in local}, **unbound}

    # -- bodies -----------------------------------------------------------------------------
    def body(self, exprs: list[list[Tok]], outer: set[str]) -> tuple[set[str], dict[str, int]]:
        """(variables bound, variables needed but unbound -> line) of a body: what its
        positive expressions bind, to a fixpoint (Rego orders a body's expressions itself)."""
        bound = set(outer)
        plans = [self.plan(e, bound) for e in exprs]
        changed = True
        while changed:
            changed = False
            for needs, binds, _uses in plans:
                if binds - bound and all(n in bound for n in needs):
                    bound |= binds
                    changed = True
        unbound: dict[str, int] = {}
        for _needs, _binds, uses in plans:
            for name, line in uses.items():
                if name not in bound:
                    unbound.setdefault(name, line)
        return bound, unbound

    def plan(self, expr: list[Tok], bound: set[str]) -> tuple[set[str], set[str], dict[str, int]]:
        """(variables needed first, variables bound then, the needed ones with their line)
        of one expression of a body: a variable is unsafe where it is needed unbound."""
        first = expr[0].text
        if first == "not":
            _, _, uses = self.plan(expr[1:], bound)
            return set(uses), set(), uses
        if first == "some":
            at = _at_top(expr, "in")
            if at < 0:  # `some x, y`: a declaration; binding comes from elsewhere
                return set(), set(), {}
            targets, _ = self.vars(expr[1:at], bound)
            needs, _ = self.vars(expr[at + 1 :], bound)
            return set(needs), set(targets), dict(needs)
        if first == "every":
            brace = _at_top(expr, "{")
            at = _at_top(expr[:brace], "in")
            targets, _ = self.vars(expr[1:at], bound)
            needs, _ = self.vars(expr[at + 1 : brace], bound)
            inner = expr[brace + 1 : _group(expr, brace) - 1]
            _, unbound = self.body(_split(inner, {";", "\n"}), bound | set(targets))
            needs.update({n: ln for n, ln in unbound.items() if n not in targets})
            return set(needs), set(), needs
        with_at = _at_top(expr, "with")
        if with_at >= 0:
            _, _, uses = self.plan(expr[:with_at], bound)
            extra, _ = self.vars(expr[with_at:], bound)
            return set(uses) | set(extra), set(), {**uses, **extra}
        for op in (":=", "="):
            at = _at_top(expr, op)
            if at >= 0:
                left, _ = self.vars(expr[:at], bound)
                right, _ = self.vars(expr[at + 1 :], bound)
                # Unification (=) binds either side once the other is bound; approximated
                # as assignment, right to left (how our policies write it).
                return set(right), set(left), dict(right)
        uses, iterated = self.vars(expr, bound)
        needs = {n: line for n, line in uses.items() if n not in iterated}
        return set(needs), iterated, needs

    # -- rules ------------------------------------------------------------------------------
    def check_rule(self, tokens: list[Tok]) -> None:
        toks = _strip(tokens)
        if toks and toks[0].text == "default":
            toks = toks[1:]
        args: set[str] = set()
        head_end = 1
        if len(toks) > 1 and toks[1].text == "(":
            head_end = _group(toks, 1)
            found, _ = self.vars(toks[2 : head_end - 1], set())
            args = set(found)
        for clause in _clauses(tokens, head_end):
            value, body = clause
            bound = args
            if body is not None:
                bound, unbound = self.body(_split(body, {";", "\n"}), set(args))
                for name, line in unbound.items():
                    self.unsafe.append(UnsafeVariable(self.file, line, self.rule, name))
            free, _ = self.vars(value, bound)
            for name, line in free.items():
                if name not in bound:
                    self.unsafe.append(UnsafeVariable(self.file, line, self.rule, name))


def _clauses(tokens: list[Tok], head_end: int) -> list[tuple[list[Tok], list[Tok] | None]]:
    """(value or key term, body tokens or None) of a rule and of each of its ``else``."""
    # Skip the head (name and arguments), keeping newlines inside the rest for bodies.
    seen = 0
    start = 0
    for i, tok in enumerate(tokens):
        if tok.kind != "newline":
            seen += 1
        if seen == head_end:
            start = i + 1
            break
    rest = tokens[start:]
    clauses: list[tuple[list[Tok], list[Tok] | None]] = []
    while rest:
        rest = _drop_newlines(rest)
        if not rest:
            break
        if rest[0].text == "else":
            rest = rest[1:]
            continue
        value: list[Tok] = []
        if rest[0].text in (":=", "=", "contains"):
            stop = _first_top(rest[1:], {"if", "else"})
            value = rest[1 : 1 + stop]
            rest = rest[1 + stop :]
        elif rest[0].text == "[":  # a partial rule's key: name[key] (older syntax)
            end = _group(rest, 0)
            value = rest[1 : end - 1]
            rest = rest[end:]
            continue_value = _first_top(rest, {"if", "else"})
            value += rest[:continue_value]
            rest = rest[continue_value:]
        rest = _drop_newlines(rest)
        body: list[Tok] | None = None
        if rest and rest[0].text == "if":
            rest = _drop_newlines(rest[1:])
        if rest and rest[0].text == "{":
            end = _group(rest, 0)
            body = rest[1 : end - 1]
            rest = rest[end:]
        elif rest and rest[0].text != "else":  # a one-expression body
            stop = _first_top(rest, {"else"})
            body = rest[:stop]
            rest = rest[stop:]
        clauses.append((value, body))
    return clauses


def _drop_newlines(tokens: list[Tok]) -> list[Tok]:
    i = 0
    while i < len(tokens) and tokens[i].kind == "newline":
        i += 1
    return tokens[i:]


def _first_top(tokens: Sequence[Tok], texts: set[str]) -> int:
    depth = 0
    for i, tok in enumerate(tokens):
        if depth == 0 and tok.text in texts:
            return i
        if tok.text in _OPEN:
            depth += 1
        elif tok.text in _CLOSE:
            depth -= 1
    return len(tokens)


def check_sources(sources: Iterable[tuple[str, str]]) -> list[UnsafeVariable]:
    """Unsafe variables in the modules ``(name, source)``, checked together (a package's
    rules may span files); [] when every module is safe. Raises ``ValueError`` on a module
    this lint cannot read."""
    modules: list[tuple[str, str, list[list[Tok]]]] = []
    names: dict[str, set[str]] = {}
    for file, source in sources:
        try:
            statements = _statements(_tokens(source))
        except _Malformed as exc:
            raise ValueError(f"{file}: {exc}") from None
        package = ""
        for st in statements:
            toks = _strip(st)
            if toks[0].text == "package":
                package = "".join(t.text for t in toks[1:])
            elif toks[0].text == "import":
                alias = toks[-1].text  # the path's last name, or the name after `as`
                names.setdefault(f"{file}#imports", set()).add(alias)
            else:
                head = toks[1] if toks[0].text == "default" else toks[0]
                names.setdefault(package, set()).add(head.text)
        modules.append((file, package, statements))
    unsafe: dict[tuple[str, str, str], UnsafeVariable] = {}
    for file, package, statements in modules:
        globals_ = frozenset(
            names.get(package, set()) | names.get(f"{file}#imports", set()) | {"input", "data"}
        )
        for st in statements:
            toks = _strip(st)
            if toks[0].text in ("package", "import"):
                continue
            head = toks[1] if toks[0].text == "default" else toks[0]
            checker = _Checker(file, head.text, globals_)
            try:
                checker.check_rule(st)
            except (_Malformed, IndexError):
                raise ValueError(f"{file}:{head.line}: rule {head.text} is not readable") from None
            for problem in sorted(checker.unsafe, key=lambda u: u.line):
                # Once per variable and rule, where it is first needed.
                unsafe.setdefault((file, problem.rule, problem.var), problem)
    return sorted(unsafe.values(), key=lambda u: (u.file, u.line, u.var))


def check_files(paths: Iterable[Path]) -> list[UnsafeVariable]:
    """:func:`check_sources` over Rego files (tests included: OPA compiles them too)."""
    return check_sources((p.name, p.read_text(encoding="utf-8")) for p in sorted(paths))
