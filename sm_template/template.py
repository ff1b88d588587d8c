"""The template's own cookiecutter.json, read once: the single source of its choices, of the
slug's length cap, and of which answers are derived from which (the templated defaults).

This package sits beside cookiecutter.json (its parent folder is the template), in the
repository and in the copy cookiecutter runs the hooks from.
"""

import functools
import json
import re
from pathlib import Path

COOKIECUTTER_JSON = Path(__file__).resolve().parent.parent / "cookiecutter.json"
SLUG_CAP = re.compile(r"\bmax_length\s*=\s*([0-9]+)")


@functools.cache
def variables() -> dict[str, object]:
    """The template's variables with their defaults, in prompt order (no _private keys)."""
    loaded = json.loads(COOKIECUTTER_JSON.read_text(encoding="utf-8"))
    return {name: value for name, value in loaded.items() if not name.startswith("_")}


def choices() -> dict[str, tuple[str, ...]]:
    """Every choice variable (a list in cookiecutter.json) and its choices, first = default."""
    return {
        name: tuple(str(choice) for choice in value)
        for name, value in variables().items()
        if isinstance(value, list)
    }


def slug_max_length() -> int | None:
    """The cap the project_slug default puts on the slug (slugify's max_length), if any."""
    found = SLUG_CAP.search(str(variables().get("project_slug", "")))
    return int(found[1]) if found else None


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


@functools.cache
def references() -> dict[str, frozenset[str]]:
    """variable -> the variables its default refers to as cookiecutter.NAME (or ['NAME'])."""
    from jinja2 import Environment, nodes

    environment = Environment()
    found: dict[str, frozenset[str]] = {}
    for name, value in variables().items():
        names: set[str] = set()
        for text in _texts(value):
            tree = environment.parse(text)
            for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
                if isinstance(node.node, nodes.Name) and node.node.name == "cookiecutter":
                    if isinstance(node, nodes.Getattr):
                        names.add(node.attr)
                    elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                        names.add(node.arg.value)
        found[name] = frozenset(names)
    return found


def default_for(name: str, answers: dict) -> str | None:
    """The default cookiecutter derives for `name` from these answers (None: not a derived
    default, or it cannot be rendered here)."""
    default = variables().get(name)
    if not isinstance(default, str) or not references().get(name):
        return None
    try:
        from cookiecutter.environment import StrictEnvironment

        environment = StrictEnvironment(context={"cookiecutter": answers})
        return environment.from_string(default).render(cookiecutter=answers)
    except Exception:  # cookiecutter missing, or answers it cannot render: unknown
        return None


def derived_from(fields: list[str], answers: dict) -> dict[str, list[str]]:
    """The answers that follow from `fields`: each variable whose value is still its derived
    default and that refers to one of `fields` (or to one such variable, and so on), mapped
    to the variables it refers to among them. A value the user typed instead is not included.
    """
    affected = set(fields)
    derived: dict[str, list[str]] = {}
    order = list(variables())
    changed = True
    while changed:
        changed = False
        for name in order:
            parents = [
                ref for ref in order if ref in references().get(name, ()) and ref in affected
            ]
            if name in affected or not parents:
                continue
            default = default_for(name, answers)
            if default is not None and default == str(answers.get(name, "")):
                derived[name] = parents
                affected.add(name)
                changed = True
    return {name: derived[name] for name in order if name in derived}
