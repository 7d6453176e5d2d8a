"""The labeling config (Label Studio's XML): the one the bridge writes, and what it reads from any project's.

The bridge's own config shows, for one label request: each text feature
(``STREAMAL_TEXT_FEATURES``) as text to read (``$text_0``, ``$text_1``, … in
the task data), the other features as a table (``$features``), and asks for
the class:

- ``<Choices name="streamal_class">``, one choice per class the model knows
  (the keys of the requests' class probabilities, their predicted labels);
  Label Studio refuses a ``Choices`` without a choice, so it is left out until
  the first class is known;
- ``<TextArea name="streamal_other">``, a class that is not listed: a class
  nobody has seen yet is learned as a new class (DESIGN section 3). A class
  that shows up later in the requests is added to the choices by the bridge
  (adding a choice leaves every annotation valid). With ``STREAMAL_CLASSES``
  the choices are exactly those classes, never changed, and there is no free
  text (the service would dead-letter anything else);
- for regression, ``<Number name="streamal_target">`` instead.

An existing project (``--project-id``) keeps its own config: the bridge never
changes it, unless it has the bridge's own ``streamal_class`` control (it was
made by the bridge). It reads the first ``Choices``, ``TextArea`` and
``Number`` controls from it, and pre-annotates only with a class that is one
of its choices.

>>> cfg = LabelingConfig.parse(build_config(["body"], ["ham", "spam"], "classification"))
>>> cfg.choices_name, cfg.choices, cfg.other_name, cfg.to_name, cfg.managed
('streamal_class', ('ham', 'spam'), 'streamal_other', 'text_0', True)
>>> cfg.with_classes(["spam", "eggs"]).choices
('ham', 'spam', 'eggs')
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

#: The controls the bridge's own config has (and by which it knows a config it may extend).
CLASS_CONTROL: Final = "streamal_class"
OTHER_CONTROL: Final = "streamal_other"
TARGET_CONTROL: Final = "streamal_target"
#: The table of the features that are not text, in the task data.
FEATURES_KEY: Final = "features"
#: Object tags a control can label (``toName``).
_OBJECTS: Final = frozenset({"Text", "HyperText", "Table", "Paragraphs", "Image", "Audio", "Video"})


def text_key(index: int) -> str:
    """The task-data key of the ``index``-th text feature (Label Studio variables must be identifiers)."""
    return f"text_{index}"


def build_config(text_features: Sequence[str], classes: Iterable[str], task: str, *,
                 free_text: bool = True) -> str:
    """The bridge's labeling config (see the module docstring); ``free_text=False`` with ``STREAMAL_CLASSES``."""
    view = ET.Element("View")
    for i, name in enumerate(text_features):
        ET.SubElement(view, "Header", value=name, size="5")
        ET.SubElement(view, "Text", name=text_key(i), value=f"${text_key(i)}")
    ET.SubElement(view, "Header", value="Features" if not text_features else "Other features", size="5")
    ET.SubElement(view, "Table", name=FEATURES_KEY, value=f"${FEATURES_KEY}")
    target = text_key(0) if text_features else FEATURES_KEY
    if task == "regression":
        ET.SubElement(view, "Header", value="Target value", size="5")
        ET.SubElement(view, "Number", name=TARGET_CONTROL, toName=target, required="true")
        return ET.tostring(view, encoding="unicode")
    names = list(dict.fromkeys(str(c) for c in classes))
    if names:
        ET.SubElement(view, "Header", value="Class", size="5")
        _choices(view, target, names)
    if free_text:
        ET.SubElement(view, "Header", value="A class not listed (a new class): type it here", size="5")
        ET.SubElement(view, "TextArea", name=OTHER_CONTROL, toName=target, maxSubmissions="1", editable="true",
                      placeholder="only if no choice fits")
    return ET.tostring(view, encoding="unicode")


def _choices(view: ET.Element, target: str, names: Sequence[str]) -> ET.Element:
    element = ET.Element("Choices", name=CLASS_CONTROL, toName=target, choice="single", showInline="true")
    for name in names:
        ET.SubElement(element, "Choice", value=name)
    # Before the free-text control, so the choices come first on the page.
    other = next((i for i, child in enumerate(view) if child.get("name") == OTHER_CONTROL), None)
    if other is not None and other > 0 and view[other - 1].tag == "Header":
        other -= 1
    if other is None:
        view.append(element)
    else:
        view.insert(other, ET.Element("Header", value="Class", size="5"))
        view.insert(other + 1, element)
    return element


@dataclass(frozen=True)
class LabelingConfig:
    """What the bridge needs to know of a project's config."""

    xml: str
    #: The ``Choices`` control the classes are read from and predictions written to (``None``: none yet).
    choices_name: str | None
    choices: tuple[str, ...]
    #: The free-text control (a class typed in), if any.
    other_name: str | None
    #: The ``Number`` control (regression), if any.
    number_name: str | None
    #: The object tag the controls label (a prediction's ``to_name``).
    to_name: str | None
    #: The bridge's own config: it may add choices to it.
    managed: bool

    @classmethod
    def parse(cls, xml: str) -> LabelingConfig:
        """Read a config; ``ValueError`` if it is not XML."""
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise ValueError(f"the labeling config is not XML: {exc}") from None
        elements = list(root.iter())
        choices = _control(elements, "Choices", CLASS_CONTROL)
        other = _control(elements, "TextArea", OTHER_CONTROL)
        number = _control(elements, "Number", TARGET_CONTROL)
        managed = any(e.get("name") in (CLASS_CONTROL, OTHER_CONTROL, TARGET_CONTROL) for e in elements)
        to_name = next((c.get("toName") for c in (choices, other, number) if c is not None and c.get("toName")), None)
        if to_name is None:
            to_name = next((e.get("name") for e in elements if e.tag in _OBJECTS and e.get("name")), None)
        listed = choices.iter("Choice") if choices is not None else iter(())
        values = tuple(c.get("value") or c.get("alias") or "" for c in listed)
        return cls(xml, choices.get("name") if choices is not None else None, tuple(v for v in values if v),
                   other.get("name") if other is not None else None,
                   number.get("name") if number is not None else None, to_name, managed)

    def missing(self, classes: Iterable[str]) -> list[str]:
        """The classes of ``classes`` that are not choices yet, in order."""
        have = set(self.choices)
        return [c for c in dict.fromkeys(classes) if c not in have]

    def with_classes(self, classes: Iterable[str]) -> LabelingConfig:
        """This config with ``classes`` added to its choices (a ``Choices`` control made if there is none)."""
        new = self.missing(classes)
        if not new:
            return self
        root = ET.fromstring(self.xml)
        element = next((e for e in root.iter("Choices") if e.get("name") == self.choices_name), None)
        if element is None:
            element = _choices(root, self.to_name or FEATURES_KEY, [])
        for name in new:
            ET.SubElement(element, "Choice", value=name)
        return LabelingConfig.parse(ET.tostring(root, encoding="unicode"))


def _control(elements: list[ET.Element], tag: str, preferred: str) -> ET.Element | None:
    """The control named ``preferred``, else the first ``tag`` control."""
    of_tag = [e for e in elements if e.tag == tag]
    return next((e for e in of_tag if e.get("name") == preferred), of_tag[0] if of_tag else None)
