"""Every section citation ("§N", "§N.M") in the package and the README resolves to a heading in docs/.

The code cites the two specs in docs/ - ``docs/LEGACY_SEMANTICS.md`` and
``docs/KRONOS_SEMANTICS.md`` - by section number. This test scans every ``.py`` file under
``python/totowalk/`` (recursively, whatever the layout) and ``README.md``, and checks that each
citation names a numbered heading of the right document.

Parsing rules (chosen from how the code actually cites):

* A citation is ``§`` followed by a section number - digits joined by dots: ``§2``, ``§2.3``,
  ``§11.7`` (a trailing sentence dot is not part of it: ``§5.`` is ``5``). It may be a range,
  ``§6.5-6.7`` or ``§6.6–6.7`` (hyphen or en dash): both ends must resolve and the start must not
  come after the end.
* Citations joined by ``,`` / ``;`` / ``and`` / ``or``, each with its own ``§``, form one phrase:
  ``§4, §8``, ``§11.1, §11.3, §11.7``.
* Which document: a phrase directly preceded by ``KRONOS_SEMANTICS`` or ``LEGACY_SEMANTICS``
  (optionally ``.md``, then whitespace) cites that document (``KRONOS_SEMANTICS §1, §5``,
  ``LEGACY_SEMANTICS.md §6.5-6.7``). A phrase with no document name cites the file's default
  document: the Kronos one if the file mentions ``KRONOS_SEMANTICS`` and never
  ``LEGACY_SEMANTICS`` (e.g. ``kronos/frames.py``'s bare ``(§5)``), otherwise the legacy one (bare
  ``§4`` in the backtest modules means the legacy spec).
* ``defect N`` / ``defects N, M and K`` (with numbers) refers to the numbered defects of the legacy
  spec's §11 and must resolve to the heading ``11.N``.

Headings are the docs' markdown lines starting with ``#`` whose first word is a number such as
``2.``, ``2.3`` or ``11.7`` (lines inside fenced code blocks are ignored).

Files are read at test time and may be moved concurrently; a file that vanishes between the listing
and the read is skipped.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "python" / "totowalk"

LEGACY = "LEGACY_SEMANTICS"
KRONOS = "KRONOS_SEMANTICS"
DOC_FILES = {LEGACY: DOCS / "LEGACY_SEMANTICS.md", KRONOS: DOCS / "KRONOS_SEMANTICS.md"}

_NUM = r"\d+(?:\.\d+)*"
_CITE_RE = re.compile(rf"§\s?(?P<start>{_NUM})(?:\s*[-–]\s*(?:§\s?)?(?P<end>{_NUM}))?")
_CITE_NC = rf"§\s?{_NUM}(?:\s*[-–]\s*(?:§\s?)?{_NUM})?"  # the same, without groups
_PHRASE_RE = re.compile(
    rf"(?:(?P<doc>{LEGACY}|{KRONOS})(?:\.md)?\s*)?"
    rf"(?P<cites>{_CITE_NC}(?:\s*(?:,|;|\band\b|\bor\b)\s*{_CITE_NC})*)"
)
_DEFECT_RE = re.compile(r"\bdefects?\s+(?P<nums>\d+(?:\s*(?:,|\band\b)\s*\d+)*)\b")
_HEADING_RE = re.compile(rf"^#+\s+(?P<num>{_NUM})\.?(?:\s|$)")


def _key(number):
    return tuple(int(part) for part in number.split("."))


def parse_headings(text):
    """Section numbers of the markdown headings of ``text``, as strings ("2", "2.3", "11.7")."""
    numbers = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or not line.startswith("#"):
            continue
        m = _HEADING_RE.match(line)
        if m:
            numbers.append(m.group("num"))
    return numbers


def default_doc(text):
    """The document a bare citation in ``text`` refers to (see the module docstring)."""
    return KRONOS if KRONOS in text and LEGACY not in text else LEGACY


def find_citations(text, default=None):
    """All citations in ``text``, in order: a list of ``(line, doc, start, end, snippet)``.

    ``end`` is None for a single section; ``snippet`` is the citation phrase, whitespace collapsed.
    """
    if default is None:
        default = default_doc(text)
    found = []  # (offset, line, doc, start, end, snippet)

    def add(offset, doc, start, end, snippet):
        found.append((offset, text.count("\n", 0, offset) + 1, doc, start, end, " ".join(snippet.split())))

    for phrase in _PHRASE_RE.finditer(text):
        doc = phrase.group("doc") or default
        base = phrase.start("cites")
        for cite in _CITE_RE.finditer(phrase.group("cites")):
            add(base + cite.start(), doc, cite.group("start"), cite.group("end"), phrase.group(0))
    for defect in _DEFECT_RE.finditer(text):
        base = defect.start("nums")
        for num in re.finditer(r"\d+", defect.group("nums")):
            add(base + num.start(), LEGACY, f"11.{num.group(0)}", None, defect.group(0))
    found.sort(key=lambda item: item[0])
    return [item[1:] for item in found]


def unresolved(citations, headings):
    """The citations (as returned by :func:`find_citations`) that do not resolve, with the reason."""
    bad = []
    for line, doc, start, end, snippet in citations:
        known = headings.get(doc, set())
        missing = [n for n in (start, end) if n is not None and n not in known]
        if missing:
            bad.append((line, doc, snippet, f"no heading {', '.join(missing)} in {doc}.md"))
        elif end is not None and _key(end) < _key(start):
            bad.append((line, doc, snippet, f"reversed range {start}-{end}"))
    return bad


def _doc_headings():
    return {doc: set(parse_headings(path.read_text(encoding="utf-8"))) for doc, path in DOC_FILES.items()}


def _read(path):
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):  # moved while we scan
        return None


def _sources():
    files = sorted(PACKAGE.rglob("*.py")) + [ROOT / "README.md"]
    for path in files:
        text = _read(path)
        if text is not None:
            yield path, text


# --------------------------------------------------------------------------------------------------


def test_docs_exist_with_unique_numbered_headings():
    for doc, path in DOC_FILES.items():
        assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
        numbers = parse_headings(path.read_text(encoding="utf-8"))
        assert numbers, f"{path.relative_to(ROOT)} has no numbered headings"
        dupes = sorted({n for n in numbers if numbers.count(n) > 1}, key=_key)
        assert not dupes, f"{path.relative_to(ROOT)}: duplicate section numbers {dupes}"


def test_every_code_citation_resolves():
    headings = _doc_headings()
    failures = []
    total = 0
    n_files = 0
    for path, text in _sources():
        n_files += 1
        citations = find_citations(text)
        total += len(citations)
        rel = path.relative_to(ROOT)
        failures += [f"{rel}:{line}: {snippet!r} ({why})" for line, _, snippet, why in unresolved(citations, headings)]
    assert n_files > 1, f"no Python files found under {PACKAGE.relative_to(ROOT)}"
    assert total > 0, "no § citations found at all - has the citation syntax changed?"
    assert not failures, f"{len(failures)} of {total} citations do not resolve to a heading in docs/:\n" + "\n".join(
        failures
    )


def test_citations_inside_the_docs_resolve():
    """The docs' own cross-references ("see §11.3") point at their own (or the named) document."""
    headings = _doc_headings()
    failures = []
    for doc, path in DOC_FILES.items():
        citations = find_citations(path.read_text(encoding="utf-8"), default=doc)
        failures += [
            f"{path.relative_to(ROOT)}:{line}: {snippet!r} ({why})"
            for line, _, snippet, why in unresolved(citations, headings)
        ]
    assert not failures, "\n".join(failures)


# Parser unit tests on synthetic text ---------------------------------------------------------------


def _brief(citations):
    return [(line, doc, start, end) for line, doc, start, end, _ in citations]


def test_parser_forms_and_document_choice():
    text = (
        '"""Mixed (LEGACY_SEMANTICS.md §6.5-6.7) and KRONOS_SEMANTICS §1, §5.\n'
        "bare §4, §8; ranges §6.6–6.7, list §11.1, §11.3 and §11.7; end of sentence §12.\n"
        "KRONOS_SEMANTICS.md §6 then (§2.4) after text; no citation: 5 §x; §11 defect 15\n"
        "fixes defects 2, 3 and 16; defect number of §11 is prose\n"
    )
    assert default_doc(text) == LEGACY
    assert _brief(find_citations(text)) == [
        (1, LEGACY, "6.5", "6.7"),
        (1, KRONOS, "1", None),
        (1, KRONOS, "5", None),
        (2, LEGACY, "4", None),
        (2, LEGACY, "8", None),
        (2, LEGACY, "6.6", "6.7"),
        (2, LEGACY, "11.1", None),
        (2, LEGACY, "11.3", None),
        (2, LEGACY, "11.7", None),
        (2, LEGACY, "12", None),
        (3, KRONOS, "6", None),
        (3, LEGACY, "2.4", None),
        (3, LEGACY, "11", None),
        (3, LEGACY, "11.15", None),
        (4, LEGACY, "11.2", None),
        (4, LEGACY, "11.3", None),
        (4, LEGACY, "11.16", None),
        (4, LEGACY, "11", None),
    ]


def test_parser_bare_citations_in_a_kronos_only_file():
    text = '"""Input frame (KRONOS_SEMANTICS.md §3),\nand step returns (§5)."""\n'
    assert default_doc(text) == KRONOS
    assert _brief(find_citations(text)) == [(1, KRONOS, "3", None), (2, KRONOS, "5", None)]


def test_headings_and_resolution():
    doc = (
        "# Title 1.5 not a section\n## 1. Inputs\n### 1.1 Price data\n"
        "```\n# 9.9 inside a fence\n```\n## 11. Known defects\n### 11.7 Final day\n"
        "#### notes 2.3\nplain 3.1 line\n"
    )
    assert parse_headings(doc) == ["1", "1.1", "11", "11.7"]
    headings = {LEGACY: set(parse_headings(doc)), KRONOS: {"5"}}
    cites = find_citations("see §1.1-1.2, §11.7, §9.9, §1.1-1 and KRONOS_SEMANTICS §5, §6", default=LEGACY)
    bad = [(doc_, why) for _, doc_, _, why in unresolved(cites, headings)]
    assert bad == [
        (LEGACY, "no heading 1.2 in LEGACY_SEMANTICS.md"),
        (LEGACY, "no heading 9.9 in LEGACY_SEMANTICS.md"),
        (LEGACY, "reversed range 1.1-1"),
        (KRONOS, "no heading 6 in KRONOS_SEMANTICS.md"),
    ]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
