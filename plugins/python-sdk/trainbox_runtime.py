"""What every trainbox Python plugin runs inside its component.

`trainbox_build.py` makes a small entry module that calls `load`, which
componentize-py runs once, at BUILD time (its pre-initialisation), and
snapshots. componentize-py puts no file system into the component: a module
not imported by then cannot be imported at run time (`import json` inside a
function fails, and so does `"x".encode("idna")`, whose codec the standard
library loads lazily). So `load`:

- imports the plugin (`app`) and every module its source imports anywhere,
  in functions too (the list `trainbox_build.py` found with `ast`), and the
  modules those standard-library modules import lazily, one level down; an
  import that fails and is not guarded by `try: ... except ImportError` is a
  build error that names the file, the line and the fix;
- keeps the plugin's source lines, so that a traceback at run time shows them;
- installs `trainbox_http`'s `urllib` handler (HTTP over wasi:http);
- wraps the plugin's exports: an exception prints its traceback (file, line,
  source, exception) on the plugin's stderr, which the host shows as
  `[name] ...` lines, then the call faults (a trap, in the end-of-run report);
  in `configure` and `load_state` it is returned as their error instead.
"""

import ast
import importlib
import linecache
import os
import sys
import traceback

# Modules a lazy import must never pull in: they need a display, start
# programs, or print at import.
_NEVER = {"antigravity", "this", "tkinter", "turtle", "idlelib", "turtledemo", "webbrowser"}

# Codecs the standard library looks up by name at run time (`str.encode("idna")`
# in urllib and http.client, the UTF-16/32 ones in json): loaded up front.
_CODECS = ["encodings.idna", "encodings.ascii", "encodings.latin_1", "encodings.utf_16",
           "encodings.utf_32", "encodings.cp1252", "encodings.punycode", "stringprep", "unicodedata"]

# The exports of `trainbox:callback/plugin` and whether they return a result.
_EXPORTS = {"describe": False, "configure": True, "on_event": False,
            "save_state": False, "load_state": True, "finish": False}

BUILD_ERROR = "trainbox-build-error: "


def _short(path):
    """A file name as the user knows it: componentize-py mounts each folder of
    the Python path as `/0`, `/1`, ...; the standard library is `/python`."""
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "" and parts[1].isdigit():
        return "/".join(parts[2:])
    return path


def _alias_types():
    """`from wit_world.imports import types` keeps naming trainbox's types:
    with wasi:http in the world, componentize-py names the two `types`
    interfaces `trainbox_callback_types` and `wasi_http_types`."""
    import wit_world.imports as imports
    ours = importlib.import_module("wit_world.imports.trainbox_callback_types")
    imports.types = ours
    sys.modules["wit_world.imports.types"] = ours


def _lazy_imports(module):
    """The modules a standard-library module imports inside its functions."""
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
    return names


def _try_import(name):
    if name.split(".")[0] in _NEVER:
        return None
    try:
        return importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - best effort: a lazy import may be for another platform
        return None


def _fail(lines):
    for line in lines:
        sys.stderr.write(BUILD_ERROR + line + "\n")
    sys.stderr.flush()
    raise ImportError("; ".join(lines))


def _import_plugin(app, imports):
    """Imports the plugin and what it imports; fails the build on a missing
    module that is not guarded."""
    errors = []
    try:
        module = importlib.import_module(app)
    except ImportError as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = next((f"{_short(f.filename)}:{f.lineno}" for f in reversed(tb)
                      if not f.filename.startswith(("/python", "<"))), f"{app}.py")
        _fail([f"{where}: {e}: the module is not in the plugin's bundle. "
               f"componentize-py puts into the .wasm the standard library and the folders "
               f"given with -p only; install it there (`pip install --target deps NAME`, "
               f"then build with PYTHONPATH=deps) or remove the import"])
    loaded = []
    for name, where, guarded in imports:
        mod = _try_import(name)
        if mod is not None:
            loaded.append(mod)
            continue
        # `from pkg import name`: `pkg.name` may be an attribute, not a module.
        parent, _, attr = name.rpartition(".")
        if guarded or (parent and parent in sys.modules and hasattr(sys.modules[parent], attr)):
            continue
        try:
            importlib.import_module(name)
        except BaseException as e:  # noqa: BLE001 - reported to the user, with the fix
            errors.append(f"{where}: `import {name}`: {type(e).__name__}: {e}. A trainbox "
                          f"plugin can import at run time only what its build bundled: "
                          f"install the module where the build finds it (`pip install "
                          f"--target deps {name.split('.')[0]}`, then build with "
                          f"PYTHONPATH=deps), or guard the import with "
                          f"`try: ... except ImportError:` if it is optional")
    if errors:
        _fail(errors)
    return module, loaded


def _keep_sources():
    """Reads the source of every module outside the standard library into
    `linecache`, which the snapshot keeps for tracebacks at run time."""
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.endswith(".py") and not path.startswith(("/python", "/bundled")):
            lines = linecache.getlines(path)
            # No modification time: `linecache.checkcache`, which tracebacks
            # call, then keeps the entry although the file is gone at run time.
            if lines:
                linecache.cache[path] = (sum(map(len, lines)), None, lines, path)


def _report(export, exc):
    """The traceback of an exception raised by the plugin, as lines."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # without the wrapper's frame
    lines = ["Traceback (most recent call last):"]
    for f in frames:
        lines.append(f'  File "{_short(f.filename)}", line {f.lineno}, in {f.name}')
        if f.line:
            lines.append(f"    {f.line.strip()}")
    lines.extend(traceback.format_exception_only(type(exc), exc)[-1].rstrip("\n").split("\n"))
    last = frames[-1] if frames else None
    at = f" ({_short(last.filename)}, line {last.lineno}, in {last.name})" if last else ""
    summary = f"{export} raised {type(exc).__name__}: {exc}{at}"
    return lines, summary


def _print(lines):
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _guard(export, method, returns_result):
    from componentize_py_types import Err

    def guarded(self, *args):
        try:
            return method(self, *args)
        except Err:
            if returns_result:
                raise  # the export's own error (`raise Err("why")`)
            lines, summary = _report(export, sys.exc_info()[1])
            _print(lines)
            os.abort()
        except BaseException as exc:  # noqa: BLE001 - every exception is shown, then faults
            lines, summary = _report(export, exc)
            _print(lines)
            if returns_result:
                raise Err(summary) from None
            # A trap, which the host counts as this call's fault (abort is
            # wasm `unreachable`), without componentize-py printing it again.
            os.abort()

    guarded.__name__ = method.__name__
    return guarded


def load(app, imports):
    """The plugin's `Plugin` class, wrapped, with everything it imports
    loaded. `imports`: (module, "file:line", guarded) for each import
    statement in the plugin's sources."""
    _alias_types()
    import trainbox_http

    module, loaded = _import_plugin(app, imports)
    for name in _CODECS:
        _try_import(name)
    # One level of lazy imports of what the plugin imports from the
    # standard library (urllib.request's, json's, ...).
    for mod in loaded + [sys.modules[n] for n in list(sys.modules) if n.startswith(("urllib", "http", "json"))]:
        if (getattr(mod, "__file__", None) or "").startswith("/python"):
            for name in _lazy_imports(mod):
                _try_import(name)
    trainbox_http.install()
    _keep_sources()
    plugin = getattr(module, "Plugin", None)
    if plugin is None:
        _fail([f"{app}.py defines no class `Plugin` (class Plugin(exports.Plugin): ...)"])
    methods = {name: _guard(name, getattr(plugin, name), result)
               for name, result in _EXPORTS.items() if hasattr(plugin, name)}
    return type("Plugin", (plugin,), methods)
