"""The layers of ARCHITECTURE.md, enforced: a module imports its own layer or lower ones, never a
higher one (also inside functions), and the bottom layer imports nothing of the project."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
# Bottom to top; the first matching prefix names a module's layer.
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("core", ("hotline.core",)),
    ("rasa", ("actions", "hotline.nlu", "hotline.plugins")),
    ("trainer", ("hotline.trainer",)),
    ("gateway", ("voice_gateway",)),
    ("app", ("hotline",)),
    ("bench", ("bench",)),
    ("tests", ("tests",)),
]
PROJECT = ("hotline", "actions", "voice_gateway", "bench", "tests")


def layer_of(module: str) -> Optional[int]:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[Tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join(base + ([node.module] if node.module else []))
            elif node.module:
                yield node.lineno, node.module


def sources() -> Iterator[Path]:
    for top in ("hotline", "actions", "voice_gateway", "bench"):
        yield from sorted((ROOT / top).rglob("*.py"))


def crossings() -> List[str]:
    found = []
    for path in sources():
        own = layer_of(module_name(path))
        for line, imported in imports(path):
            if not imported.startswith(PROJECT):
                continue
            target = layer_of(imported)
            if target is not None and own is not None and target > own:
                found.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[own][0]}) imports {imported} ({LAYERS[target][0]})")
    return found


def test_no_import_crosses_a_layer_upward():
    assert crossings() == []


def test_the_bottom_layer_imports_nothing_of_the_project():
    for path in sorted((ROOT / "hotline" / "core").rglob("*.py")):
        outside = [m for _, m in imports(path) if m.startswith(PROJECT) and layer_of(m) != 0]
        assert outside == [], f"{path.relative_to(ROOT)}: {outside}"


def test_the_check_itself_sees_an_upward_import(tmp_path, monkeypatch):
    """A crossing planted in a copy of a real module is reported (the check cannot pass vacuously)."""
    import tests.test_layers as layers

    fake_root = tmp_path / "project"
    target = fake_root / "hotline" / "core" / "settings.py"
    target.parent.mkdir(parents=True)
    target.write_text((ROOT / "hotline" / "core" / "settings.py").read_text(encoding="utf-8")
                      + "\n\ndef later():\n    from voice_gateway.app import create_app\n")
    monkeypatch.setattr(layers, "ROOT", fake_root)
    assert [c.split(" imports ")[1] for c in layers.crossings()] == ["voice_gateway.app (gateway)"]
