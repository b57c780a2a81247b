"""Builds a trainbox plugin written in Python into a .wasm component.

    python3 trainbox_build.py --componentize-py PATH --wit DIR [--build DIR] APP -o OUT.wasm

APP is the plugin's module (`app` for app.py, in the current folder); DIR
holds trainbox's `callback.wit`. componentize-py bundles only what the
plugin has imported when its build ends (it snapshots CPython then; the
component has no file system), so this script:

1. reads every `import` of the plugin's own sources with `ast`, those inside
   functions too, and notes which are guarded by `try: ... except ImportError`;
2. writes an entry module, `trainbox_entry.py`, that calls
   `trainbox_runtime.load` with that list (see trainbox_runtime.py), and the
   world `python-plugin` (the plugin contract and wasi:http);
3. runs componentize-py on it. An import that cannot be bundled fails here,
   with the file, the line and the fix, not in the middle of a training run.

The folders searched for modules: the plugin's folder, then each entry of
PYTHONPATH (e.g. `pip install --target deps NAME`, then PYTHONPATH=deps).
"""

import argparse
import ast
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_ERROR = "trainbox-build-error: "
# Exceptions whose handler makes an import optional.
_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _guarded(try_node):
    for handler in try_node.handlers:
        if handler.type is None:
            return True
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in _GUARDS for n in names):
            return True
    return False


def imports_of(path, shown):
    """(module, "file:line", guarded) for every import statement in `path`."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found = []

    def visit(node, guarded):
        for child in ast.iter_child_nodes(node):
            g = guarded
            if isinstance(node, ast.Try) and child in node.body and _guarded(node):
                g = True
            where = f"{shown}:{getattr(child, 'lineno', 0)}"
            if isinstance(child, ast.Import):
                found.extend((a.name, where, g) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module, where, g))
                found.extend((f"{child.module}.{a.name}", where, True)
                             for a in child.names if a.name != "*")
            visit(child, g)

    visit(tree, False)
    return found


def local_sources(app, folders):
    """The plugin's own modules: APP and the .py files next to it that it
    imports (by name), transitively."""
    seen, todo, out = set(), [app], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for folder in folders:
            path = os.path.join(folder, *name.split(".")) + ".py"
            if not os.path.isfile(path):
                path = os.path.join(folder, *name.split("."), "__init__.py")
            if os.path.isfile(path):
                shown = os.path.relpath(path, folders[0]) if folder == folders[0] else path
                found = imports_of(path, shown)
                out.extend(found)
                todo.extend(m for m, _, _ in found)
                break
    return out


# The file that marks a build folder as this script's.
MARKER = ".made-by-trainbox-build"


def stage(args, imports):
    """The build folder: the entry module, the SDK's modules and the world."""
    build = os.path.abspath(args.build)
    # Only a folder this script made (it holds the marker) is ever deleted.
    marker = os.path.join(build, MARKER)
    if os.path.exists(build):
        if not os.path.isfile(marker):
            sys.exit(f"trainbox_build: {build} exists and was not made by trainbox_build.py; "
                     "pass another --build folder (it is deleted and made afresh each build)")
        shutil.rmtree(build)
    os.makedirs(os.path.join(build, "py"))
    with open(marker, "w", encoding="utf-8") as f:
        f.write("made by trainbox_build.py: deleted and made afresh at each build\n")
    for module in ("trainbox_runtime.py", "trainbox_http.py"):
        shutil.copy(os.path.join(HERE, module), os.path.join(build, "py", module))
    with open(os.path.join(build, "py", "trainbox_entry.py"), "w", encoding="utf-8") as f:
        f.write("# Written by trainbox_build.py: loads the plugin and what it imports.\n")
        f.write("import trainbox_runtime\n\n")
        f.write(f"Plugin = trainbox_runtime.load({args.app!r}, {sorted(set(imports))!r})\n")
    wit = os.path.join(build, "wit")
    shutil.copytree(os.path.join(HERE, "wit"), wit, ignore=shutil.ignore_patterns("*.md"))
    os.makedirs(os.path.join(wit, "deps", "callback"))
    shutil.copy(os.path.join(args.wit, "callback.wit"), os.path.join(wit, "deps", "callback"))
    return build


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("app", help="the plugin's module, e.g. app for app.py")
    p.add_argument("-o", "--output", required=True, help="the .wasm to write")
    p.add_argument("--componentize-py", required=True, dest="componentize")
    p.add_argument("--wit", required=True, help="the folder of trainbox's callback.wit")
    p.add_argument("--build", default=".trainbox-build",
                   help="scratch folder, deleted and made afresh (default: .trainbox-build)")
    args = p.parse_args()
    extra = [d for d in os.environ.get("PYTHONPATH", "").split(os.pathsep) if d]
    folders = [os.getcwd()] + [os.path.abspath(d) for d in extra]
    if not os.path.isfile(os.path.join(folders[0], *args.app.split(".")) + ".py"):
        sys.exit(f"trainbox_build: {args.app}.py not found in {folders[0]}")
    build = stage(args, local_sources(args.app, folders))
    cmd = [args.componentize, "-d", os.path.join(build, "wit"), "-w", "python-plugin",
           "componentize", "trainbox_entry", "-p", os.path.join(build, "py")]
    for folder in folders:
        cmd += ["-p", folder]
    cmd += ["-o", os.path.abspath(args.output)]
    # componentize-py also reads VIRTUAL_ENV's site-packages: only the
    # folders above are the plugin's.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        ours = [line.split(BUILD_ERROR, 1)[1] for line in output.splitlines() if BUILD_ERROR in line]
        if ours:
            for line in dict.fromkeys(ours):
                print(f"trainbox_build: {args.app}: {line}", file=sys.stderr)
        else:
            sys.stderr.write(output)
        sys.exit(f"trainbox_build: building {args.output} failed")
    print(f"trainbox_build: {args.output} built (the plugin and {len(set(m for m, _, _ in local_sources(args.app, folders)))} imported modules bundled)")


if __name__ == "__main__":
    main()
