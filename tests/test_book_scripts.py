"""The books' chapter scripts run on xpnet with their imports changed only (tests/book_scripts.py).

One chapter runs in one process; each script is one test that checks it ran and, where the
book prints a value worth checking, that value.  Skipped when ``shared/books`` is absent.
"""

from __future__ import annotations

import re

import pytest

import book_scripts as bs

pytestmark = pytest.mark.skipif(bs.SHARED is None, reason="shared/books not found (<repo>/../shared, $XPNET_SHARED)")

#: Printed values checked per script: regular expressions the output must match.
EXPECT: dict[str, list[str]] = {}


@pytest.fixture(scope="session")
def book_runs(tmp_path_factory):
    """Runs chapters on demand, once each, in copies shared by the session."""
    tmp = tmp_path_factory.mktemp("books")
    data = bs.make_data(tmp)
    roots: dict[str, object] = {}
    done: dict[str, dict] = {}

    def run(chapter: str) -> dict:
        if chapter not in done:
            for needed in bs.NEEDS.get(chapter, []):
                run(needed)
            book = chapter.split("/")[0]
            if book not in roots:
                roots[book] = bs.make_root(tmp, book)
            done[chapter] = bs.run_chapter(roots[book], data, chapter)
        return done[chapter]

    return run


SCRIPTS = [f"{chapter}/{name}" for chapter, names in bs.ORDER.items() for name in names]


@pytest.mark.parametrize("script", SCRIPTS)
def test_book_script_runs(book_runs, script):
    if script in bs.SKIP:
        pytest.skip(bs.SKIP[script])
    chapter = script.rsplit("/", 1)[0]
    result = book_runs(chapter)[script]
    assert result["ok"], f"{script} failed:\n{result['error']}\n--- output:\n{result['output'][-2000:]}"
    for pattern in EXPECT.get(script, []):
        assert re.search(pattern, result["output"]), f"{script}: {pattern!r} not in its output:\n{result['output'][-2000:]}"
