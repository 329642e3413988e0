"""Every public parameter has a numpydoc entry.

For each public class and function (``mlp.__all__``, ``mlp.callbacks.__all__``) the parameters
of its signature must each have an entry in the ``Parameters`` section of its docstring: a class's
``__init__`` parameters in the class docstring, and a method's (``fit``, ``partial_fit``,
``compile``, ``predict``, ``evaluate``, where the class has them) in the method's docstring.
``self``/``cls``, ``*args`` and ``**kwargs`` are exempt.

An entry is a line of the section that starts at the section's indentation with ``name :`` or,
for grouped names, ``name1, name2 :``.
"""
from __future__ import annotations

import inspect
import re

import pytest

import mlp
import mlp.callbacks

# The public methods checked on a class that has them.
_METHODS = ("fit", "partial_fit", "compile", "predict", "evaluate")

_HEADER_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
# "name :", "name1, name2 :", "*args :" -- then a type, or nothing.
_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s+:(?:\s|$)")


def documented_parameters(doc: str | None) -> set[str] | None:
    """The names the numpydoc ``Parameters`` section of `doc` has entries for; None when the
    docstring has no such section."""
    lines = inspect.cleandoc(doc or "").splitlines()
    start = None
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and _HEADER_UNDERLINE.match(lines[i + 1]):
            start = i
            break
    if start is None:
        return None
    indent = len(lines[start]) - len(lines[start].lstrip())
    names: set[str] = set()
    i = start + 2
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and _HEADER_UNDERLINE.match(lines[i + 1]):
            break  # the next section
        if line.strip() and len(line) - len(line.lstrip()) == indent:
            match = _ENTRY.match(line[indent:])
            if match:
                names.update(n.strip().lstrip("*") for n in match.group(1).split(","))
        i += 1
    return names


def signature_parameters(func) -> list[str]:
    """The parameters of `func` that need an entry: not self/cls, not *args/**kwargs."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return []
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in sig.parameters.values()
            if p.kind not in skip and p.name not in ("self", "cls")]


def missing_entries(func, doc: str | None) -> list[str]:
    """The parameters of `func` that `doc`'s ``Parameters`` section has no entry for."""
    documented = documented_parameters(doc) or set()
    return [name for name in signature_parameters(func) if name not in documented]


def _public_objects():
    """(display name, callable whose signature counts, docstring) for everything checked."""
    found = []
    for module in (mlp, mlp.callbacks):
        for name in module.__all__:
            obj = getattr(module, name)
            qualname = f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                # inspect.signature(cls) is __init__'s without self, wherever it is defined.
                found.append((qualname, obj, obj.__doc__))
                for method in _METHODS:
                    attr = getattr(obj, method, None)
                    if callable(attr):
                        found.append((f"{qualname}.{method}", attr, attr.__doc__))
            elif callable(obj):
                found.append((qualname, obj, obj.__doc__))
    return found


_OBJECTS = _public_objects()


def check_entries(qualname: str, func, doc: str | None) -> None:
    """Fail, naming `qualname` and the parameters, when `doc` lacks entries."""
    missing = missing_entries(func, doc)
    assert not missing, (
        f"{qualname}: no numpydoc entry in its Parameters section for "
        f"{', '.join(repr(m) for m in missing)}")


@pytest.mark.parametrize("qualname, func, doc", _OBJECTS, ids=[o[0] for o in _OBJECTS])
def test_every_parameter_has_an_entry(qualname, func, doc):
    check_entries(qualname, func, doc)


# ---- the checker itself ---------------------------------------------------------------------
def _fake(alpha, beta, gamma=1, *args, delta=None, **kwargs):
    """A function whose docstring forgets `gamma`.

    Parameters
    ----------
    alpha, beta : int
        Grouped names.
    delta : object, default=None
        Keyword-only.
    *args, **kwargs
        Exempt anyway.

    Returns
    -------
    gamma : int
        Not a parameter entry: it is in another section.
    """


def test_checker_catches_a_missing_entry():
    assert documented_parameters(_fake.__doc__) == {"alpha", "beta", "delta"}
    assert missing_entries(_fake, _fake.__doc__) == ["gamma"]


def test_checker_reads_only_entries_at_the_section_indentation():
    def fake(x, y):
        """Parameters
        ----------
        x : int
            Mentions y : float in an explanation, which is no entry.
        """

    assert missing_entries(fake, fake.__doc__) == ["y"]


def test_checker_without_a_parameters_section():
    def fake(x):
        """Only a summary."""

    assert documented_parameters(fake.__doc__) is None
    assert missing_entries(fake, fake.__doc__) == ["x"]
    assert missing_entries(lambda: None, None) == []


def test_a_failure_names_the_object_and_the_parameter():
    with pytest.raises(AssertionError, match=r"^tests\.fake: .* for 'gamma'(\n|$)"):
        check_entries("tests.fake", _fake, _fake.__doc__)
