"""Tampering does not pay: integrity checks and a static scan around nbgrader's autograde.

nbgrader runs the hidden tests in the student's own kernel, after the student's code. A
submission can therefore rebind what the tests rely on (``np.testing.assert_allclose``,
``np.allclose``, a builtin such as ``len``, the course library's reference functions, IPython's
error reporting) and pass every test without computing anything. This module adds three
layers to nbgrader's ``Autograde`` (:func:`configure_nbgrader` puts them in a traitlets
config, so ``mlpp grade`` and the formgrader on a hub both use them):

1. **Capture** (:class:`GuardInject`, before ``Execute``): a cell injected at the top of the
   notebook, before any student code, imports numpy and the course modules the locked cells
   import and keeps references to every attribute of the ``builtins``, ``numpy*`` and
   ``mlpp*`` modules, the code objects of their Python functions, the dictionaries of their
   classes, and IPython's hooks (input and AST transformers, event callbacks, the methods that
   run cells and show tracebacks).
2. **Integrity checks** (also injected): one cell right before and one right after each
   autograded test cell compares the live objects with the captured originals, including the
   names the test cell reads from the notebook's namespace (``np``, ``len``, ...), and looks
   for classes defined in the notebook that can answer numpy's comparisons themselves
   (``ndarray`` subclasses, ``__array_function__``, ``__array_ufunc__``...) and for threads
   still running the notebook's code (they could patch between a check and a test). Each check prints
   one report line carrying a fresh random nonce, signed (HMAC) with a key that the first cell
   drew and printed before any student code ran and that otherwise lives only in the checker's
   closure; the checker also refuses to be called through a wrapper (its caller must be the
   check cell itself). :class:`GuardVerdict` (after ``Execute``, outside the kernel) verifies
   the reports; a test cell whose check found tampering, or whose check gave no valid signed
   report, gets an error output, so nbgrader gives it 0 points, and the student's feedback
   says why. The injected cells are removed before the notebook is saved. The checks fail
   closed: deleting or replacing the checker, forging its output, blanking cells with an
   input transformer or swallowing output all leave a test without a valid report.
   Tampering zeroes every test that runs while it is in place, not only the one it aimed at.
3. **Static scan** (:func:`scan_notebook`): the AST of every code cell is searched for
   rebinding module attributes or builtins, ``setattr``/``delattr``, ``sys.modules``,
   ``importlib``/``gc``/``ctypes``/``inspect``, frame and closure access, ``exec``/``eval``/
   ``compile`` of strings, IPython internals, lying array types (``__array_function__``, ...),
   rebinding names the tests read. A hit does not cost points by itself; it flags the
   submission "needs review" with the cell and line.

The verdict is stored in the graded notebook's metadata (``metadata.mlpp_grading_guard``), read
back with :func:`review_reasons` (an empty list means nothing to review), and added to
``resources["mlpp"]["review_reasons"]``, which ``mlpp.sandbox_kernel.GradingReport`` hands to
``mlpp grade`` (``needs_review`` and ``review_reasons`` in the JSON form and ``grades.csv``).
``python -m mlpp.grading_guard`` runs the static scan on submissions, or prints the verdict of
graded notebooks (``--graded``), for an instructor.

**What an attacker in the same process can still do.** The checks run in the kernel the
student controls, so they raise the cost of cheating; they cannot make it impossible. A
determined attacker who reads this module can dig the signing key out of the checker's closure
(``__closure__``, ``gc``) and sign clean reports, or schedule code on the kernel's event loop
(``asyncio``) that patches between a check and a test, patch objects the guard does not watch
(torch, sklearn, keras, ``json``, ``hmac``; values the locked cells computed, such as the
dataset ``jets``), patch C-level state with ``ctypes``, hand the tests objects whose
``__eq__``/``__sub__``/``__abs__`` lie inside object arrays, start a thread that runs only
library code (``threading.Timer`` calling ``setattr``) to patch between a check and a test, or
lie at the kernel's message level. Every one of these needs code that the static scan flags
(``gc``, ``ctypes``, ``inspect``, ``globals()``, ``get_ipython``, ``threading``, ``asyncio``,
``sys._getframe``, ``__closure__``/``__code__``, comparison dunders, ``exec``/``eval``/
``compile``/``__import__`` of strings, ``setattr``...), so
it reaches the instructor as "needs review" with the cell and the line; hiding it in strings
needs one of those calls too. What such code can reach outside the kernel (the checkout, the
gradebook, other submissions, the network) is the sandbox's job (``mlpp.sandbox``): the guard
only protects the points, and a person reviews what it flags.
"""
from __future__ import annotations

import ast
import hashlib
import hmac
import inspect
import json
import re
import secrets
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

METADATA_KEY = "mlpp_grading_guard"
REPORT_PREFIX = "MLPP-GUARD"
# Modules whose attributes the tests rely on; a module under these names is captured when the
# guard first sees it (before student code for those the locked cells import).
WATCHED = ("builtins", "numpy", "mlpp")


# --- the code that runs in the student's kernel ---------------------------------------
# Injected as source text (inspect.getsource), never imported there: a student who patches
# mlpp.grading_guard in the kernel changes nothing the checks run.

def _mlpp_guard_install(token, preload, watched):  # noqa: C901 (one self-contained closure)
    """First cell of the graded notebook: capture originals, store the checker as ``_mlpp_guard_<token>``."""
    import builtins
    import hashlib
    import hmac
    import importlib
    import json
    import os
    import sys
    import threading

    # References taken before any student code ran; the checker uses only these.
    _id, _type, _vars, _isinstance, _getattr = id, type, vars, isinstance, getattr
    _dict, _tuple, _list, _sorted, _len, _str, _any, _zip = dict, tuple, list, sorted, len, str, any, zip
    issubclass = builtins.issubclass  # noqa: A001 (the original, bound before student code)
    _dumps, _modules, _stdout, _frame = json.dumps, sys.modules, sys.stdout, sys._getframe
    _threads_frames, _this_thread = sys._current_frames, threading.get_ident
    # The reports are signed with a key that exists only here and in the first cell's output
    # (read by the grader before student code runs): a replaced checker cannot sign.
    _key, _mac, _sha = os.urandom(16), hmac.new, hashlib.sha256
    _function, _missing = type(_mlpp_guard_install), object()
    # ipykernel swaps builtins.input (and getpass) for every request; warnings add registries.
    _ignored = {"__warningregistry__", "__loader__", "__spec__", "__cached__", "input", "raw_input", "getpass"}
    shell = get_ipython()  # noqa: F821 (IPython's global in a kernel)
    kernel = _getattr(shell, "kernel", None)
    _trusted_roots = _tuple(str(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})

    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional module is the notebook's problem, not the guard's
            pass
    mlpp = _modules.get("mlpp")
    if mlpp is not None and _getattr(mlpp, "__file__", None):
        _trusted_roots += (str(mlpp.__file__).rsplit("/", 2)[0],)

    modules, functions, classes = {}, {}, {}

    def _keep_function(f, label):
        if _type(f) is _function and _id(f) not in functions:
            functions[_id(f)] = (f, f.__code__, f.__defaults__, f.__kwdefaults__, label)

    def _capture(name, mod):
        attrs = _dict(_vars(mod))
        modules[name] = (mod, attrs)
        for key, value in attrs.items():
            label = f"{name}.{key}"
            _keep_function(value, label)
            if _type(value).__name__ == "_ArrayFunctionDispatcher":  # numpy wraps a Python function
                _keep_function(_getattr(value, "_implementation", None), label)
            if _isinstance(value, _type) and _getattr(value, "__module__", None) == name and _id(value) not in classes:
                members = _dict(_vars(value))
                classes[_id(value)] = (value, members, label)
                for member, obj in members.items():
                    _keep_function(obj, f"{label}.{member}")

    def _watched(name):
        return name.split(".")[0] in watched

    def _capture_new():
        for name, mod in _list(_modules.items()):
            if mod is not None and name not in modules and _watched(name):
                _capture(name, mod)

    def _code_of(obj):
        for candidate in (obj, _getattr(obj, "__func__", None), _getattr(_type(obj), "__call__", None)):
            code = _getattr(candidate, "__code__", None)
            if code is not None:
                return code
        return None

    def _foreign(obj):
        code = _code_of(obj)
        return code is None or not _str(code.co_filename).startswith(_trusted_roots)

    def _hooks():
        found = {}
        for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            found[attr] = _list(_getattr(shell, attr, ()))
        for event, callbacks in _sorted(shell.events.callbacks.items()):
            found[f"events.{event}"] = _list(callbacks)
        found["custom_exceptions"] = _list(shell.custom_exceptions)
        owners = [("shell", shell, ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell",
                                    "transform_ast", "showtraceback", "_showtraceback", "showsyntaxerror",
                                    "should_run_async", "CustomTB", "get_exception_only"))]
        if kernel is not None:
            owners.append(("kernel", kernel, ("do_execute", "execute_request", "send_response")))
            owners.append(("kernel.session", kernel.session, ("send", "serialize")))
        for label, owner, methods in owners:
            for method in methods:
                value = _getattr(owner, method, None)
                found[f"{label}.{method}"] = [_getattr(value, "__func__", value)]
        found["compile"] = [shell.compile]
        found["displayhook"] = [shell.displayhook]
        found["display_pub"] = [shell.display_pub]
        return found

    _ndarray = _getattr(_modules.get("numpy"), "ndarray", None)
    _protocol = ("__array_function__", "__array_ufunc__", "__array_wrap__", "__array_finalize__",
                 "__array_priority__", "__array_interface__", "__array_struct__")

    def _lying_classes():
        """Classes defined in the notebook that can answer numpy's comparisons for the tests."""
        seen, stack, found = set(), [object], []
        while stack:
            for sub in _type.__subclasses__(stack.pop()):
                if _id(sub) in seen:
                    continue
                seen.add(_id(sub))
                stack.append(sub)
                try:  # a library class with an odd metaclass must not break the check
                    if _getattr(sub, "__module__", None) != "__main__":
                        continue
                    own = [k for k in sub.__mro__ if _getattr(k, "__module__", None) == "__main__"]
                    if (_ndarray is not None and issubclass(sub, _ndarray)) or _any(
                            name in _vars(k) for k in own for name in _protocol):
                        found.append(sub.__qualname__)
                except Exception:
                    continue
        return found

    def _notebook_threads():
        """Other threads that are running the notebook's own code (they could patch between cells)."""
        found = []
        for ident, frame in _threads_frames().items():
            if ident == _this_thread():  # the one running this check
                continue
            while frame is not None:
                filename = _str(frame.f_code.co_filename)
                # A cell's code, or a file outside the environment (not frozen or generated code).
                if filename in _cells or not filename.startswith(_trusted_roots + ("<",)):
                    found.append(f"{frame.f_code.co_name} (line {frame.f_lineno})")
                    break
                frame = frame.f_back
        return found

    _cells = _getattr(shell.compile, "_filename_map", {})  # IPython's file names of the cells it ran
    _capture_new()
    builtin_names = modules["builtins"][1]
    hooks = _hooks()

    def check(nonce, used, bindings):
        """Compare the live objects with the captured ones; print one report line."""
        problems = []
        caller = _frame(1)
        if caller.f_code.co_name != "<module>" or caller.f_globals is not shell.user_ns:
            problems.append("the grading guard's check was called through a wrapper")
        _capture_new()
        for name, (mod, attrs) in modules.items():
            if _modules.get(name, mod) is not mod:
                problems.append(f"sys.modules[{name!r}] was replaced")
            live = _vars(mod)
            for key, value in attrs.items():
                if key not in _ignored and live.get(key, _missing) is not value:
                    problems.append(f"{name}.{key} was {'deleted' if key not in live else 'rebound'}")
        for f, code, defaults, kwdefaults, label in functions.values():
            if f.__code__ is not code or f.__defaults__ is not defaults or f.__kwdefaults__ is not kwdefaults:
                problems.append(f"the code or defaults of {label} were replaced")
        for cls, members, label in classes.values():
            live = _vars(cls)
            for key, value in members.items():
                if key not in _ignored and live.get(key, _missing) is not value:
                    problems.append(f"{label}.{key} was {'deleted' if key not in live else 'rebound'}")
        now = _hooks()
        for key, before in hooks.items():
            after = now.get(key, [])
            if key.startswith(("input_", "ast_", "events.")):
                added = [x for x in after if not _any(x is y for y in before)]
                if _any(_foreign(x) for x in added):
                    problems.append(f"IPython's {key} got a hook from the notebook")
            elif _len(after) != _len(before) or _any(a is not b for a, b in _zip(after, before)):
                problems.append(f"IPython's {key} was replaced")
        for where in _notebook_threads():
            problems.append(f"a thread runs the notebook's code between cells: {where}")
        for name in _lying_classes():
            problems.append(f"the notebook defines {name}, an array type that can answer numpy's comparisons")
        namespace = shell.user_ns
        if namespace.get("__builtins__", builtins) is not builtins:
            problems.append("the notebook's __builtins__ was replaced")
        for name in used:
            if name in bindings:
                kind, module, attr = bindings[name]
                expected = _missing
                if kind == "module":
                    expected = modules[module][0] if module in modules else _modules.get(module, _missing)
                elif module in modules and attr in modules[module][1]:
                    expected = modules[module][1][attr]
                if expected is not _missing and namespace.get(name, _missing) is not expected:
                    problems.append(f"the name {name!r} the tests use no longer refers to "
                                    f"{module if kind == 'module' else module + '.' + attr}")
            elif name in builtin_names and name in namespace and namespace[name] is not builtin_names[name]:
                problems.append(f"the builtin {name!r} the tests use is shadowed in the notebook")
        body = f"{nonce} {_dumps(_list(_dict.fromkeys(problems))[:20])}"
        _stdout.write(f"MLPP-GUARD {body} {_mac(_key, body.encode(), _sha).hexdigest()}\n")
        _stdout.flush()

    shell.user_ns[f"_mlpp_guard_{token}"] = check
    _stdout.write(f"MLPP-GUARD {token} [] {_key.hex()}\n")
    _stdout.flush()


# --- static scan ------------------------------------------------------------------------

# Modules whose import alone is worth a look: they reach objects, frames or memory directly.
SUSPICIOUS_MODULES = {
    "gc": "reaches every object in the process", "ctypes": "writes raw memory",
    "inspect": "reaches frames and closures", "importlib": "reloads or swaps modules",
    "builtins": "reaches the builtins", "__builtin__": "reaches the builtins",
    "IPython": "reaches the kernel's shell", "ipykernel": "reaches the kernel",
    "nbgrader": "reaches the grader", "mlpp.grading": "reaches the grader",
    "mlpp.grading_guard": "reaches the grading guard", "mlpp.nbgrader_bridge": "reaches the grader",
    "mlpp.sandbox": "reaches the grading sandbox", "unittest.mock": "patches objects",
    "threading": "runs code between cells", "_thread": "runs code between cells",
    "signal": "runs code between cells", "atexit": "runs code at exit", "marshal": "builds code objects",
    "asyncio": "runs code between cells", "tornado": "runs code between cells", "zmq": "reaches the kernel",
    "multiprocessing": "runs code beside the tests", "concurrent": "runs code between cells",
    "forbiddenfruit": "patches builtin types", "sys": None,  # only some attributes of sys (below)
}
SUSPICIOUS_SYS = {"modules", "_getframe", "settrace", "setprofile", "meta_path", "path_hooks",
                  "excepthook", "displayhook", "stdout", "stderr", "addaudithook", "__stdout__", "__stderr__"}
SUSPICIOUS_CALLS = {"setattr", "delattr", "exec", "eval", "compile", "__import__", "globals", "vars",
                    "locals", "get_ipython", "breakpoint"}
# Attributes that reach code, frames, closures or namespaces (read or written).
SUSPICIOUS_ATTRS = {"__globals__", "__closure__", "__builtins__", "__subclasses__", "f_globals", "f_locals",
                    "f_builtins", "f_back", "tb_frame", "gi_frame", "cr_frame", "__setattr__", "__delattr__",
                    "CodeType", "FunctionType", "user_ns", "user_global_ns"}
# Attributes whose assignment replaces behaviour (reading __code__ is what some hidden tests do).
REBINDING_ATTRS = {"__code__", "__defaults__", "__kwdefaults__", "__class__", "__dict__", "__bases__",
                   "__call__", "__getattr__", "__getattribute__"}
# Methods that let an object lie to numpy's comparisons.
LYING_METHODS = {"__array_function__", "__array_ufunc__", "__array_wrap__", "__array_finalize__",
                 "__array_priority__", "__array_interface__", "__array__", "__eq__", "__ne__", "__bool__",
                 "__lt__", "__le__", "__gt__", "__ge__", "__abs__", "__sub__"}
# IPython magics that change nothing the tests rely on.
HARMLESS_MAGICS = {"time", "timeit", "matplotlib", "load_ext autoreload", "autoreload", "prun", "who", "whos"}


# What `!cmd` and `%magic` lines become, and how a hit describes them.
_IPYTHON_CALLS = {"system": "runs a shell command ({})", "getoutput": "runs a shell command ({})",
                  "run_line_magic": "runs the magic %{}", "run_cell_magic": "runs the cell magic %%{}"}


@dataclass(frozen=True)
class ScanHit:
    """One suspicious construct: the cell's id, the line in the cell, what it does."""

    cell: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell} line {self.line}: {self.what}"


def _python_source(source: str) -> str:
    """The cell as Python: IPython magics and ``!shell`` lines become ``get_ipython()`` calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # plain Python: magics then fail to parse and are reported as such
        return source
    return TransformerManager().transform_cell(source)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _harmless_magic(call: ast.Call) -> bool:
    """``get_ipython().run_line_magic('time', ...)`` and friends."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic")
            and isinstance(func.value, ast.Call) and _dotted(func.value.func) == "get_ipython"):
        return False
    args = [a.value for a in call.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return bool(args) and (args[0] in HARMLESS_MAGICS or " ".join(args[:2]).strip() in HARMLESS_MAGICS)


class _Scanner(ast.NodeVisitor):
    """Collect suspicious constructs of one cell (see :func:`scan_source`)."""

    def __init__(self, module_names: set[str], protected: set[str]) -> None:
        self.module_names = module_names  # names bound to modules anywhere in the notebook
        self.protected = protected        # names the locked cells bind or the tests read as builtins
        self.hits: list[tuple[int, str]] = []
        self.harmless_calls: set[int] = set()
        self.depth = 0  # > 0 inside a function or class body, where names are local

    def hit(self, node: ast.AST, what: str) -> None:
        self.hits.append((getattr(node, "lineno", 0), what))

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._import(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self._import(node, module)
        for alias in node.names:
            self._import(node, f"{module}.{alias.name}", exact=True)
            if module == "sys" and alias.name in SUSPICIOUS_SYS:
                self.hit(node, f"imports sys.{alias.name}")
        self.generic_visit(node)

    def _import(self, node: ast.AST, name: str, exact: bool = False) -> None:
        for bad, why in SUSPICIOUS_MODULES.items():
            if why and (name == bad or (not exact and name.startswith(bad + "."))):
                self.hit(node, f"imports {name} ({why})")
                return

    # rebinding
    def _target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._target(elt, node)
        elif isinstance(target, ast.Starred):
            self._target(target.value, node)
        elif isinstance(target, ast.Attribute):
            dotted = _dotted(target)
            root = _root_name(target)
            if target.attr in REBINDING_ATTRS:
                self.hit(node, f"assigns {dotted or target.attr} (replaces an object's behaviour)")
            elif root in self.module_names or root in ("builtins", "__builtins__"):
                self.hit(node, f"rebinds the module attribute {dotted or target.attr}")
            elif root in self.protected and root != "self":
                self.hit(node, f"changes {dotted or target.attr}, which the locked cells set up")
        elif isinstance(target, ast.Subscript):
            base = _dotted(target.value) or ""
            root = _root_name(target)
            if base in ("sys.modules", "__builtins__") or base.endswith("__dict__") or (
                    isinstance(target.value, ast.Call) and _dotted(target.value.func) in ("globals", "vars")):
                self.hit(node, f"writes into {base or 'a namespace'}")
            elif root in self.module_names and "." in base:
                self.hit(node, f"writes into the module attribute {base}")
        elif isinstance(target, ast.Name) and self.depth == 0:
            if target.id in self.protected:
                self.hit(node, f"rebinds {target.id!r}, which the tests use")
            elif target.id == "__builtins__":
                self.hit(node, "rebinds __builtins__")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.protected or name == "__builtins__":
                self.hit(node, f"declares global {name!r}, which the tests use")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in LYING_METHODS:
            self.hit(node, f"defines {node.name} (an object that can lie to comparisons)")
        if self.depth == 0 and node.name in self.protected:
            self.hit(node, f"redefines {node.name!r}, which the tests use")
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(k.arg == "metaclass" for k in node.keywords):
            self.hit(node, f"gives class {node.name} a metaclass")
        for base in node.bases:
            if (_dotted(base) or "").endswith("ndarray"):
                self.hit(node, f"subclasses {_dotted(base)} (an array that can lie to comparisons)")
        if self.depth == 0 and node.name in self.protected:
            self.hit(node, f"redefines {node.name!r}, which the tests use")
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id in LYING_METHODS for t in stmt.targets):
                self.hit(stmt, "sets " + ", ".join(t.id for t in stmt.targets if isinstance(t, ast.Name)))
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    # calls and attribute reads
    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if _harmless_magic(node):
            self.harmless_calls.add(id(node.func.value))
            self.generic_visit(node)
            return
        func = node.func
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and _dotted(func.value.func) == "get_ipython" and func.attr in _IPYTHON_CALLS):
            self.harmless_calls.add(id(func.value))  # described here instead of as get_ipython()
            first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
            self.hit(node, _IPYTHON_CALLS[func.attr].format(first))
            self.generic_visit(node)
            return
        if name in SUSPICIOUS_CALLS and id(node) not in self.harmless_calls:
            first = node.args[0] if node.args else None
            if not (name in ("setattr", "delattr") and isinstance(first, ast.Name) and first.id == "self"):
                self.hit(node, f"calls {name}()")
        elif name in ("importlib.reload", "importlib.import_module", "types.FunctionType", "types.CodeType"):
            self.hit(node, f"calls {name}()")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = _dotted(node)
        if node.attr in SUSPICIOUS_ATTRS:
            self.hit(node, f"uses {dotted or node.attr}")
        elif node.attr == "__dict__" and _root_name(node) in self.module_names:
            self.hit(node, f"uses {dotted or node.attr} (a module's namespace)")
        elif dotted and dotted.startswith("sys.") and dotted.split(".")[1] in SUSPICIOUS_SYS:
            self.hit(node, f"uses {'.'.join(dotted.split('.')[:2])}")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__" and isinstance(node.ctx, ast.Load):
            self.hit(node, "uses __builtins__")


# Packages whose attributes the tests always rely on; the notebook's locked cells add theirs.
RELIED_ON = {"numpy", "mlpp", "builtins", "sys"}


def _module_names(trees: list[ast.AST], packages: set[str] | None = None) -> set[str]:
    """Names bound to modules (by ``import``, ``from pkg import mod`` or ``t = np.testing``)
    of the given top-level ``packages`` (None: any package)."""
    top: dict[str, str] = {"np": "numpy", "numpy": "numpy", "mlpp": "mlpp", "sys": "sys", "builtins": "builtins"}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                top.update({(a.asname or a.name.split(".")[0]): a.name.split(".")[0] for a in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from mlpp import kinematics`: a module or a function; writes on either count
                top.update({(a.asname or a.name): node.module.split(".")[0] for a in node.names if a.name != "*"})
    for _ in range(2):  # aliases: `t = np.testing` makes `t.assert_allclose = ...` a module write too
        for tree in trees:
            for node in ast.walk(tree):
                root = _root_name(node.value) if isinstance(node, ast.Assign) else None
                if root in top and isinstance(node.value, (ast.Name, ast.Attribute)):
                    top.update({t.id: top[root] for t in node.targets if isinstance(t, ast.Name)})
    return {name for name, package in top.items() if packages is None or package in packages}


def _imported_packages(trees: list[ast.AST]) -> set[str]:
    """Top-level packages the given cells import."""
    found = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _bound_names(tree: ast.AST) -> set[str]:
    """Top-level names a cell binds: assignments, imports, definitions (not inside functions)."""
    bound: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            return  # their bodies bind locals
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return bound


def _used_names(tree: ast.AST) -> set[str]:
    """Names a cell reads that it does not bind itself at top level (they come from the namespace)."""
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loaded - _bound_names(tree)


def _parse(source: str) -> ast.AST | None:
    """The cell's AST as IPython compiles it (top-level ``await`` allowed), or None."""
    try:
        return compile(_python_source(source), "<cell>", "exec",
                       flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except (SyntaxError, ValueError):
        return None


def _nbgrader(cell: dict[str, Any]) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _is_test(cell: dict[str, Any]) -> bool:
    meta = _nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _is_locked(cell: dict[str, Any]) -> bool:
    """An instructor's cell: locked, with a grade id (nbgrader drops unknown ids and restores
    the source of known locked cells before autograde, so a student cannot fake one)."""
    meta = _nbgrader(cell)
    return (cell.get("cell_type") == "code" and bool(meta.get("locked")) and not meta.get("solution")
            and bool(meta.get("grade_id")))


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def scan_source(source: str, cell: str = "?", *, module_names: set[str] | None = None,
                protected: set[str] | None = None) -> list[ScanHit]:
    """Suspicious constructs in one cell's source (empty if it does not parse: it then fails anyway)."""
    tree = _parse(source)
    if tree is None:
        return []
    scanner = _Scanner(module_names if module_names is not None else _module_names([tree]), protected or set())
    scanner.visit(tree)
    return [ScanHit(cell, line, what) for line, what in dict.fromkeys(scanner.hits)]


def scan_notebook(nb: dict[str, Any]) -> list[ScanHit]:
    """Static scan of a submission: the suspicious constructs in its unlocked code cells.

    Locked cells are not scanned only when their source is the instructor's (nbgrader's
    ``OverwriteCells`` restores it before autograde; :class:`GuardInject` runs after it).
    Protected names: what the locked cells bind (``np``, ``jets``, ...) and the builtins the
    test cells read.
    """
    import builtins

    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    trees = {id(c): _parse(_source(c)) for c in cells}
    locked = [c for c in cells if _is_locked(c) and trees[id(c)] is not None]
    # Protected: names the test cells read from the namespace that a locked setup cell or the
    # builtins provide (a test cell's own names are rebound by the test itself).
    provided, read_by_tests = set(dir(builtins)), set()
    for cell in locked:
        if _is_test(cell):
            read_by_tests |= _used_names(trees[id(cell)])
        else:
            provided |= _bound_names(trees[id(cell)])
    protected = read_by_tests & provided
    # Writes on modules count where the tests rely on them: numpy, mlpp, builtins, sys and what
    # the locked cells import (not matplotlib's rcParams or os.environ in a student's cell).
    relied_on = RELIED_ON | _imported_packages([trees[id(c)] for c in locked])
    module_names = _module_names([t for t in trees.values() if t is not None], relied_on)
    hits = []
    locked_ids = {id(c) for c in locked}
    for i, cell in enumerate(cells):
        if id(cell) in locked_ids:
            continue
        name = str(_nbgrader(cell).get("grade_id") or cell.get("id") or f"#{i}")
        hits += scan_source(_source(cell), name, module_names=module_names, protected=protected)
    return hits


# --- nbgrader preprocessors ------------------------------------------------------------

def _import_bindings(nb: dict[str, Any]) -> dict[str, list[str]]:
    """``{name: [kind, module, attr]}`` for the names the locked cells bind with ``import``."""
    import importlib.util

    bindings: dict[str, list[str]] = {}
    for cell in nb.get("cells", []):
        if not _is_locked(cell) or (tree := _parse(_source(cell))) is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bindings[alias.asname] = ["module", alias.name, ""]
                    else:
                        top = alias.name.split(".")[0]
                        bindings[top] = ["module", top, ""]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    full = f"{node.module}.{alias.name}"
                    try:
                        is_module = importlib.util.find_spec(full) is not None
                    except (ImportError, ValueError, AttributeError):
                        is_module = False
                    bindings[alias.asname or alias.name] = (
                        ["module", full, ""] if is_module else ["attr", node.module, alias.name])
    return bindings


def _preload(bindings: dict[str, list[str]]) -> list[str]:
    """Modules the capture cell imports: numpy's and the course library's that the locked cells use."""
    names = {"numpy", "numpy.testing"}
    for _, module, _ in bindings.values():
        if module.split(".")[0] in ("numpy", "mlpp"):
            names.add(module)
    return sorted(names)


def _runtime_source() -> str:
    return textwrap.dedent(inspect.getsource(_mlpp_guard_install))


def _guard_cell(source: str, role: str, nonce: str, test: str, index: int) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "id": f"mlpp-guard-{index:03d}-{nonce[:8]}",
            "metadata": {METADATA_KEY: {"role": role, "nonce": nonce, "test": test}},
            "outputs": [], "source": source}


class GuardInject(Preprocessor):
    """Before ``Execute``: scan the submission, inject the capture cell and the checks around each test cell."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        from nbformat import from_dict

        hits = scan_notebook(nb)
        bindings = _import_bindings(nb)
        token = secrets.token_hex(8)
        install = (_runtime_source() + f"\n_mlpp_guard_install({token!r}, {_preload(bindings)!r}, {WATCHED!r})\n"
                   "del _mlpp_guard_install\n")
        cells = [from_dict(_guard_cell(install, "capture", token, "", 0))]
        for cell in nb.cells:
            if _is_test(cell):
                grade_id = str(_nbgrader(cell).get("grade_id", ""))
                tree = _parse(_source(cell))
                used = sorted(_used_names(tree)) if tree is not None else []
                for role in ("before", "after"):
                    nonce = secrets.token_hex(16)
                    call = f"_mlpp_guard_{token}({nonce!r}, {used!r}, {bindings!r})\n"
                    guard = from_dict(_guard_cell(call, role, nonce, grade_id, len(cells)))
                    if role == "after":
                        cells.append(cell)
                    cells.append(guard)
            else:
                cells.append(cell)
        nb.cells = cells
        nb.metadata[METADATA_KEY] = {"static": [str(h) for h in hits], "tampering": {}, "reasons": []}
        return nb, resources


_REPORT = re.compile(rf"^{REPORT_PREFIX} ([0-9a-f]+) (\[.*\]) ([0-9a-f]+)$", re.M)


def _reports(cell: Any) -> list[tuple[str, str, str]]:
    """``(nonce, json, signature)`` of every report line in a cell's stdout."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return _REPORT.findall(text)


def _capture_key(cell: Any) -> bytes | None:
    """The signing key the first cell printed, or None if it did not start."""
    found = [key for nonce, problems, key in _reports(cell)
             if nonce == cell.metadata[METADATA_KEY]["nonce"] and problems == "[]"]
    return bytes.fromhex(found[0]) if len(found) == 1 and len(found[0]) == 32 else None


def _report(cell: Any, key: bytes) -> list[str] | None:
    """The problems a check cell reported, or None without exactly one valid signed report."""
    nonce = cell.metadata[METADATA_KEY]["nonce"]
    found = [(p, sig) for n, p, sig in _reports(cell) if n == nonce]
    if len(found) != 1:
        return None
    problems, signature = found[0]
    expected = hmac.new(key, f"{nonce} {problems}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        parsed = json.loads(problems)
    except json.JSONDecodeError:
        return None
    return [str(p) for p in parsed] if isinstance(parsed, list) else None


# Error outputs the sandboxed Execute step gives cells it did not run (dead kernel, limits).
NOT_RUN = ("NotRun", "KernelStopped")


def _not_run(cell: Any) -> bool:
    """Whether a guard cell never ran because the kernel stopped (not a sign of tampering)."""
    outputs = cell.get("outputs", [])
    if not outputs:
        return cell.get("execution_count") is None
    return all(o.get("output_type") == "error" and o.get("ename") in NOT_RUN for o in outputs)


def _why_silent(cell: Any | None) -> str:
    if cell is None:
        return "no first cell"
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    detail = f" ({errors[0][:200]})" if errors else ""
    return (f"the grading guard's check gave no valid report{detail}: "
            "the guard or the kernel's output was tampered with")


class GuardVerdict(Preprocessor):
    """After ``Execute``: read the checks, give 0 to the tests they found tampered with, drop the injected cells."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        verdict = nb.metadata.get(METADATA_KEY) or {"static": [], "tampering": {}, "reasons": []}
        guards = [c for c in nb.cells if METADATA_KEY in c.get("metadata", {})]
        if not guards:
            return nb, resources  # GuardInject did not run: nothing to judge
        capture = next((g for g in guards if g.metadata[METADATA_KEY]["role"] == "capture"), None)
        key = _capture_key(capture) if capture is not None else None
        capture_ok = key is not None
        tampering: dict[str, list[str]] = {}
        for guard in guards:
            meta = guard.metadata[METADATA_KEY]
            if meta["role"] == "capture":
                continue
            problems = _report(guard, key) if key is not None else None
            if problems is None and _not_run(guard):
                continue  # the kernel stopped before it: the sandbox's report says why
            if problems is None:
                problems = [_why_silent(guard) if capture_ok else
                            "the grading guard could not start (its first cell failed): " + _why_silent(capture)]
            for problem in problems:
                tests = tampering.setdefault(problem, [])
                if meta["test"] not in tests:
                    tests.append(meta["test"])
        failed = {test for tests in tampering.values() for test in tests}
        for cell in nb.cells:
            grade_id = str(_nbgrader(cell).get("grade_id", ""))
            if _is_test(cell) and grade_id in failed:
                found = [p for p, tests in tampering.items() if grade_id in tests]
                cell.outputs.append(_error_output(found))
        nb.cells = [c for c in nb.cells if METADATA_KEY not in c.get("metadata", {})]
        verdict["tampering"] = tampering
        verdict["reasons"] = (
            [f"tampering: {p} (0 points for {', '.join(t)})" for p, t in tampering.items()]
            + [f"static scan: {hit}" for hit in verdict.get("static", [])])
        nb.metadata[METADATA_KEY] = verdict
        # The grading report of mlpp.sandbox_kernel (read by `mlpp grade`) takes the same reasons.
        if resources is not None:
            resources.setdefault("mlpp", {}).setdefault("review_reasons", []).extend(verdict["reasons"])
        return nb, resources


def _error_output(problems: list[str]) -> Any:
    from nbformat import from_dict

    evalue = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return from_dict({"output_type": "error", "ename": "GradingGuardError",
                      "evalue": f"this test does not count: {evalue}",
                      "traceback": [f"GradingGuardError: this test does not count, because {evalue}"]})


# --- wiring and reading back --------------------------------------------------------------

INJECT_STEP = "mlpp.grading_guard.GuardInject"
VERDICT_STEP = "mlpp.grading_guard.GuardVerdict"


def _step_name(step: Any) -> str:
    return step if isinstance(step, str) else f"{step.__module__}.{step.__qualname__}"


def configure_nbgrader(c: Any) -> Any:
    """Put :class:`GuardInject` just before and :class:`GuardVerdict` just after the ``Execute``
    step of ``c.Autograde.autograde_preprocessors`` (nbgrader's default list unless the config
    sets one; ``mlpp.sandbox``'s ``SandboxedExecute`` counts as Execute, before or after
    ``mlpp.sandbox.configure_nbgrader``).

    Idempotent; returns ``c``. Raises ValueError if the list has no Execute step.
    """
    from nbgrader.converters.autograde import Autograde

    if "Autograde" in c and "autograde_preprocessors" in c.Autograde:
        steps = list(c.Autograde.autograde_preprocessors)
    else:
        steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
    steps = [s for s in steps if _step_name(s) not in (INJECT_STEP, VERDICT_STEP)]
    position = next((i for i, s in enumerate(steps) if _step_name(s).rsplit(".", 1)[-1].endswith("Execute")), None)
    if position is None:
        raise ValueError("c.Autograde.autograde_preprocessors has no Execute step to guard")
    steps[position:position + 1] = [INJECT_STEP, steps[position], VERDICT_STEP]
    c.Autograde.autograde_preprocessors = steps
    return c


def review_reasons(notebook: dict[str, Any] | Path | str) -> list[str]:
    """Why a graded notebook needs review (empty: nothing found); ``notebook`` is a dict or a path.

    Reads ``metadata.mlpp_grading_guard`` written by :class:`GuardVerdict`. A notebook graded
    without the guard gives ``[]``.
    """
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text(encoding="utf-8"))
    verdict = notebook.get("metadata", {}).get(METADATA_KEY) or {}
    return [str(r) for r in verdict.get("reasons", [])]


def guarded(notebook: dict[str, Any] | Path | str) -> bool:
    """Whether the guard ran on this graded notebook (its verdict is in the metadata)."""
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return METADATA_KEY in notebook.get("metadata", {})


def main(argv: list[str] | None = None) -> int:
    """``python -m mlpp.grading_guard NOTEBOOK...``: the static scan, or a graded notebook's verdict."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m mlpp.grading_guard",
        description="Scan submitted notebooks for tampering with what the tests rely on (the static\n"
                    "layer of the grading guard), or print why a graded notebook needs review.\n"
                    "Locked cells are skipped: nbgrader restores them before grading.",
        epilog="exit status 1 when something needs review.\nexample: python -m mlpp.grading_guard "
               "submissions/*.ipynb",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK", help="submitted or graded .ipynb")
    parser.add_argument("--graded", action="store_true",
                        help="read the verdict the guard wrote into autograded notebooks instead of scanning")
    args = parser.parse_args(argv)
    flagged = False
    for path in args.notebooks:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            print(f"{path}: cannot read it as a notebook ({err.__class__.__name__}): give an .ipynb file",
                  file=sys.stderr)
            flagged = True
            continue
        found = review_reasons(nb) if args.graded else [str(h) for h in scan_notebook(nb)]
        flagged |= bool(found)
        print(f"{path}: " + ("needs review" if found else "nothing found"))
        for line in found:
            print(f"  {line}")
    return 1 if flagged else 0


if __name__ == "__main__":
    raise SystemExit(main())
