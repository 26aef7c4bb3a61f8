"""Python functions for SQL in the notebook: register once, use on every connection.

A function (or aggregate, window function, collation) registered here is created on every
connection the ``%sql`` magic has open, and on every connection it opens (or adopts) later;
its name is offered by Tab completion in ``%%sql`` cells. Two spellings (docs/functions.md):

.. code-block:: python

    from sqlnb.notebook import function

    @function                        # SQL name: the Python name; arguments: from the signature
    def slug(s):
        return re.sub(r"\\W+", "-", s.lower())

    @function(name="dist", deterministic=True)
    def distance(x1, y1, x2, y2): ...

    @aggregate                       # a class with step() and finalize()
    class Median: ...                # (with inverse() and value() too: a window function)

and ``%sql --function NAME``, which registers the Python object ``NAME`` of the notebook's
namespace the same way (a class with ``step``/``finalize`` is an aggregate, with
``inverse``/``value`` too a window function; anything else callable a scalar function).

A registration an engine cannot take (a window function on ``bdb``) is skipped on that
connection with a warning naming it; the other connections get it.
"""
from __future__ import annotations

import inspect
import warnings
import weakref
from dataclasses import dataclass

from sqlnb import errors as _errors

KINDS = ("function", "aggregate", "window function", "collation")


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    narg: int
    obj: object
    deterministic: bool = False

    def apply(self, con) -> None:
        """Create it on ``con`` (an ``sqlnb.Connection``)."""
        if self.kind == "function":
            con.create_function(self.name, self.narg, self.obj, deterministic=self.deterministic)
        elif self.kind == "aggregate":
            con.create_aggregate(self.name, self.narg, self.obj)
        elif self.kind == "window function":
            con.create_window_function(self.name, self.narg, self.obj)
        else:
            con.create_collation(self.name, self.obj)


_REGISTRY: dict = {}                  # lower-case SQL name -> Registration (the latest wins)
_SESSIONS = weakref.WeakSet()         # the magic's sessions (sqlnb.notebook.session.Session)


def track(session) -> None:
    """A session whose connections get every registration (Session.__init__ calls this)."""
    _SESSIONS.add(session)


def registered() -> list:
    """The registrations, in the order they were made."""
    return list(_REGISTRY.values())


def names() -> list:
    """The SQL names of the registered functions (for completion; collations are not functions)."""
    return [r.name for r in _REGISTRY.values() if r.kind != "collation"]


def _apply(reg: Registration, con, where: str) -> bool:
    try:
        reg.apply(con)
        return True
    except _errors.NotSupportedError as exc:
        warnings.warn(f"{reg.kind} {reg.name!r} is not available on {where}: {exc}", stacklevel=3)
        return False


def apply_all(con, where: str = "this connection") -> None:
    """Create every registration on ``con`` (a connection the magic just opened or adopted)."""
    for reg in registered():
        _apply(reg, con, where)


def kind_of(obj) -> str:
    """What ``obj`` registers as: a class with ``step`` and ``finalize`` is an aggregate (with
    ``inverse`` and ``value`` too, a window function); anything else callable, a function."""
    if inspect.isclass(obj) and hasattr(obj, "step") and hasattr(obj, "finalize"):
        return "window function" if hasattr(obj, "inverse") and hasattr(obj, "value") else "aggregate"
    if callable(obj):
        return "function"
    raise TypeError(f"{type(obj).__name__} object is not callable: register a function, or a class with "
                    "step() and finalize()")


def arity(obj, kind: str) -> int:
    """The number of SQL arguments from the signature (``*args``: -1, any number)."""
    target = obj.step if kind in ("aggregate", "window function") else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return -1
    params = list(sig.parameters.values())
    if kind != "function" and params and params[0].name == "self":
        params = params[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return -1
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


def register(obj, *, name: str | None = None, narg: int | None = None, deterministic: bool = False,
             kind: str | None = None) -> Registration:
    """Register ``obj`` under ``name`` (default: its ``__name__``) on every open connection of the
    magic and on those it opens later."""
    kind = kind or kind_of(obj)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    name = name or getattr(obj, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a function registered for SQL needs a name that is an identifier, not {name!r}")
    if narg is None:
        narg = 2 if kind == "collation" else arity(obj, kind)
    reg = Registration(kind, name, narg, obj, bool(deterministic))
    for session in list(_SESSIONS):
        for alias, con in list(session.connections.items()):
            if not con.closed:
                _apply(reg, con, f"connection {alias!r}")
    _REGISTRY[name.lower()] = reg
    return reg


def unregister(name: str) -> None:
    """Forget ``name`` (connections that have it keep it until they close)."""
    _REGISTRY.pop(name.lower(), None)


def _decorator(kind, obj, **options):
    if obj is None:
        return lambda o: _decorator(kind, o, **options)
    register(obj, kind=kind or kind_of(obj), **options)
    return obj


def function(func=None, *, name=None, narg=None, deterministic=False):
    """Decorator: a scalar SQL function on every connection of the magic (``@function`` or
    ``@function(name=..., narg=..., deterministic=True)``). Returns the function unchanged."""
    return _decorator("function", func, name=name, narg=narg, deterministic=deterministic)


def aggregate(cls=None, *, name=None, narg=None):
    """Decorator: an aggregate class (``step``, ``finalize``; with ``inverse`` and ``value`` it is
    registered as a window function)."""
    return _decorator(None, cls, name=name, narg=narg)


def window_function(cls=None, *, name=None, narg=None):
    """Decorator: an aggregate window function class (``step``, ``inverse``, ``value``, ``finalize``)."""
    return _decorator("window function", cls, name=name, narg=narg)


def collation(func=None, *, name=None):
    """Decorator: a collation ``func(a, b) -> int`` on every connection of the magic."""
    return _decorator("collation", func, name=name)


def register_from_namespace(spec: str, ns) -> str:
    """``%sql --function NAME``: register the object ``NAME`` of the notebook's namespace; the
    line it prints."""
    try:
        obj = ns[spec]
    except KeyError:
        raise _errors.InterfaceError(f"--function {spec}: no Python object named {spec!r}") from None
    reg = register(obj, name=spec)
    args = "any number of arguments" if reg.narg < 0 else f"{reg.narg} argument{'s' * (reg.narg != 1)}"
    return f"registered {reg.kind} {reg.name} ({args}) on every connection"
