"""Run a script as if some packages were not installed: ``python tests/without_packages.py
NAME[,NAME...] SCRIPT ARGS...``. Importing a hidden module (or anything under it) fails as it would
without the package, and Hydra's plugin scan, which walks the ``hydra_plugins`` folders itself,
does not see hidden plugins either."""

import os
import pkgutil
import runpy
import sys

HIDDEN = tuple(sys.argv[1].split(","))


def hidden(name: str) -> bool:
    return any(name == module or name.startswith(module + ".") for module in HIDDEN)


class HideModules:
    def find_spec(self, name, path=None, target=None):
        if hidden(name):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, HideModules())
    walk = pkgutil.walk_packages
    pkgutil.walk_packages = lambda *args, **kwargs: (m for m in walk(*args, **kwargs) if not hidden(m.name))
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python SCRIPT` would have it
    runpy.run_path(sys.argv[0], run_name="__main__")
