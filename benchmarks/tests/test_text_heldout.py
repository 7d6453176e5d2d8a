"""The held-out text stream is built as text.md describes, offline from the cached downloads."""

from __future__ import annotations

import pytest

from benchmarks import text_heldout

PACKAGES = """Package: a
Section: perl
Description-md5: 1

Package: b
Section: perl
Description-md5: 2

Package: c
Section: python
Description-md5: 3

Package: d
Section: mail
Description-md5: 2

Package: e
Section: mail
Description-md5: 4

Package: f
Section: mail
Description-md5: 5
"""

TRANSLATIONS = """Package: a
Description-md5: 1
Description-en: Perl module for X
 It parses things.
 .
 More  words.

Package: b
Description-md5: 2
Description-en: shared description
 in two sections.

Package: c
Description-md5: 3
Description-en: not a held-out section

Package: e
Description-md5: 4
Description-en: mail filter

Package: f
Description-md5: 5
Description-en: mail filter
"""


def test_rows_join_clean_dedupe_and_keep_only_the_held_out_sections(monkeypatch) -> None:
    files = dict(zip(text_heldout.FILES, (PACKAGES, TRANSLATIONS)))
    monkeypatch.setattr(text_heldout, "_download", lambda name: files[name].encode())
    rows = text_heldout.rows()
    assert sorted(rows) == [("Perl module for X It parses things. More words.", "perl"), ("mail filter", "mail")]
    assert text_heldout.rows() == rows  # seeded: the same order every build


def test_a_long_description_is_cut_at_the_last_space_before_the_limit() -> None:
    text = text_heldout.clean("word " * 400)
    assert len(text) < text_heldout.MAX_CHARS and not text.endswith(" ") and text.endswith("word")


def test_no_held_out_section_is_in_the_anchor_stream() -> None:
    anchor = {"admin", "devel", "games", "graphics", "libs", "net", "python", "science", "sound", "text", "web"}
    assert not anchor & set(text_heldout.SECTIONS)
