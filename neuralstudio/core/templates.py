"""The built-in templates: ready-made designs that each teach one idea.

A template is an ordinary design file in ``resources/templates`` (written by
``tools/make_templates.py``), so opening one is just loading a design; this
module only finds them, orders them and names them.  It is pure (no Keras), so
the CLI's ``templates`` listing and the GUI's start page stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neuralstudio.core.design import DEFAULT_NAME, Design, DesignError, load_design, new_design_id
from neuralstudio.core.errors import UserError
from neuralstudio.core.paths import templates_dir

DEFAULT_TEMPLATE = "mnist-cnn"
SUFFIX = ".nsd"
# The order a learner meets them in: the default first, then from simplest to most advanced.
_ORDER = ["mnist-cnn", "nielsen-784-30-10", "nielsen-deep-sigmoid", "nielsen-deep-relu", "mlp", "lenet5",
          "cnn-augmented", "lstm-rows", "transformer-patches", "resnet-mini"]


class TemplateError(UserError, ValueError):
    """An unknown or unreadable template name."""


@dataclass(frozen=True)
class TemplateInfo:
    """What a template list shows: ``name`` to ask for it, ``title`` and ``description`` to explain it."""

    name: str
    title: str
    description: str
    path: Path

    @property
    def summary(self) -> str:
        """The first sentence of the description, for one-line listings."""
        return first_sentence(self.description)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_TEMPLATE


def first_sentence(text: str) -> str:
    """Text up to the first full stop followed by a space (or all of it)."""
    text = " ".join(text.split())
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " "):
            return text[: i + 1]
    return text


def _sort_key(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


def template_names() -> list[str]:
    """Names of the templates on disk, in teaching order."""
    folder = templates_dir()
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob(f"*{SUFFIX}") if p.is_file()), key=_sort_key)


def template_path(name: str) -> Path:
    """The file of template ``name``; raises :class:`TemplateError` listing valid names."""
    names = template_names()
    key = name.strip().lower().removesuffix(SUFFIX)
    if key not in names:
        valid = ", ".join(names) if names else "none are installed (reinstall NeuralStudio)"
        raise TemplateError(f"There is no template called {name!r}. Templates: {valid}.")
    return templates_dir() / f"{key}{SUFFIX}"


def list_templates() -> list[TemplateInfo]:
    """Every installed template with its title and description, the default first."""
    infos = []
    for name in template_names():
        design = load_template(name)
        infos.append(TemplateInfo(name, design.name, design.description, templates_dir() / f"{name}{SUFFIX}"))
    return infos


def load_template(name: str = DEFAULT_TEMPLATE) -> Design:
    """A fresh :class:`Design` from template ``name`` (each call returns a new, independent copy)."""
    path = template_path(name)
    try:
        design = load_design(path)
    except DesignError as exc:
        raise TemplateError(f"The template {name!r} is damaged ({exc}): reinstall NeuralStudio.") from None
    design.id = new_design_id()  # a copy is a design of its own, with runs of its own
    return design


def is_template_title(name: str) -> bool:
    """Whether ``name`` is one a user did not choose: the default ("untitled") or a template's own title.

    Such a design is named after the file it is first saved as, and a template's copy whose layers are
    all deleted becomes "untitled": it is no longer that template.
    """
    if name == DEFAULT_NAME:
        return True
    try:
        return name in {t.title for t in list_templates()}
    except UserError:  # a damaged template: its title is not known, so it is not this one
        return False
