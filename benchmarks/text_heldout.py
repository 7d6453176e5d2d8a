"""A held-out real text stream: Debian package descriptions of *other* sections than the anchor's.

The text defaults of streamal are chosen on data that is not the Debian
stream of ``shared/anchors/text.md`` (admin, devel, games, graphics, libs,
net, python, science, sound, text, web): this module builds a stream of the
same kind from twelve sections that stream does not use, the way ``text.md``
describes its own: Debian bookworm ``main`` (amd64 ``Packages`` joined with
``Translation-en`` on ``Description-md5``), text = short description + long
description with the paragraph marks (lines of a lone ``.``) dropped,
whitespace collapsed, cut at the last space before 1,000 characters;
duplicate texts and texts that carried different sections removed; each
section sampled down to ``CAP`` rows (seed 42); shuffled with seed 42.

    python -m benchmarks.text_heldout          # build (downloads ~15 MB once) and print a summary
    python -m benchmarks.text --heldout        # streamal's default on it

The stream (about 1.5 MB gzipped, too large to commit) is written to
``$STREAMAL_CACHE/text_heldout.csv.gz`` (default ``~/.cache/streamal``);
the downloads are kept beside it, so a rebuild is offline and gives the
same file. Bookworm's point releases change the ``Packages`` file now and
then: the summary prints the SHA-256 of the rows, to compare with
:data:`EXPECTED_SHA256` (the stream every figure in ``benchmarks/text.py``
was measured on).
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import hashlib
import io
import lzma
import os
import random
import urllib.request
from pathlib import Path

MIRROR = "http://deb.debian.org/debian/dists/bookworm/main/"
FILES = ("binary-amd64/Packages.xz", "i18n/Translation-en.xz")
#: Sections none of which is in the anchor stream, picked before any run:
#: language ecosystems (as ``python`` is there), documentation, desktop,
#: topical sections of several sizes.
SECTIONS = ("doc", "perl", "utils", "haskell", "java", "javascript", "ruby", "x11", "misc", "fonts", "mail", "math")
#: Rows per section at most (the anchor stream caps at 1,500 for 13,027
#: rows; 1,000 keeps this one near 10,000 rows, a run under a minute).
CAP = 1000
SEED = 42
MAX_CHARS = 1000
CACHE = Path(os.environ.get("STREAMAL_CACHE", Path.home() / ".cache" / "streamal"))
PATH = CACHE / "text_heldout.csv.gz"
#: SHA-256 of the rows (``section\ttext\n`` each, in stream order) built from
#: bookworm 12.x as fetched on 2026-11-30.
EXPECTED_SHA256 = "6536079943dd2ce84e924f21a453e015fd99cdae69a0d5de30dcd855cc19c0f9"


def _download(name: str) -> bytes:
    """``name`` under :data:`MIRROR`, decompressed, from the cache or the network (then cached)."""
    local = CACHE / "debian" / name.replace("/", "_")
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(MIRROR + name, timeout=120) as r:
            data = r.read()
        local.write_bytes(data)
    return lzma.decompress(local.read_bytes())


def _stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a Debian control file: field → value (continuation lines joined with newlines)."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            out.append(fields)
    return out


def clean(description: str) -> str:
    """Short + long description as one line: paragraph marks dropped, whitespace collapsed, cut before 1,000 chars.

    >>> clean("a tool\\n  It does things.\\n .\\n  More.")
    'a tool It does things. More.'
    """
    lines = [line for line in description.split("\n") if line.strip() != "."]
    text = " ".join(" ".join(lines).split())
    if len(text) >= MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return text


def rows() -> list[tuple[str, str]]:
    """``(text, section)`` of the held-out stream, in stream order (built from the downloads)."""
    english = {}
    for s in _stanzas(_download(FILES[1]).decode("utf-8")):
        if "Description-md5" in s and "Description-en" in s:
            english[s["Description-md5"]] = s["Description-en"]
    sections: dict[str, set[str]] = collections.defaultdict(set)
    for s in _stanzas(_download(FILES[0]).decode("utf-8")):
        description = english.get(s.get("Description-md5", ""))
        if description is None or "Section" not in s:
            continue
        sections[clean(description)].add(s["Section"])
    by_section: dict[str, list[str]] = collections.defaultdict(list)
    for text, found in sorted(sections.items()):
        if len(found) == 1 and (section := next(iter(found))) in SECTIONS:
            by_section[section].append(text)
    rng = random.Random(SEED)
    out = []
    for section in SECTIONS:
        texts = by_section[section]
        out += [(t, section) for t in (rng.sample(texts, CAP) if len(texts) > CAP else texts)]
    rng.shuffle(out)
    return out


def digest(data: list[tuple[str, str]]) -> str:
    """SHA-256 of the rows, ``section\\ttext\\n`` each in order."""
    h = hashlib.sha256()
    for text, section in data:
        h.update(f"{section}\t{text}\n".encode())
    return h.hexdigest()


def build(path: Path = PATH) -> Path:
    """Write the stream as ``text,label`` CSV (gzip, fixed mtime: the same bytes every build)."""
    data = rows()
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(data)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(buffer.getvalue().encode("utf-8"))
    return path


def load(limit: int | None = None) -> list[tuple[dict[str, str], str]]:
    """The held-out stream as ``({"text": ...}, section)`` in stream order, built on first use."""
    if not PATH.exists():
        build()
    with gzip.open(PATH, "rt", encoding="utf-8") as f:
        data = [({"text": r["text"]}, r["label"]) for r in csv.DictReader(f)]
    return data[:limit] if limit else data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="build again from the cached downloads")
    args = parser.parse_args()
    if args.rebuild or not PATH.exists():
        build()
    data = load()
    counts = collections.Counter(y for _, y in data)
    sha = digest([(x["text"], y) for x, y in data])
    print(f"{PATH}: {len(data):,} rows, {len(counts)} classes, majority {max(counts.values()) / len(data):.1%}, "
          f"{PATH.stat().st_size / 1e6:.2f} MB")
    print(", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    print(f"sha256 {sha}" + ("" if not EXPECTED_SHA256 else " (as expected)" if sha == EXPECTED_SHA256
                              else f" (differs from {EXPECTED_SHA256[:12]}…: the mirror moved on)"))


if __name__ == "__main__":
    main()
