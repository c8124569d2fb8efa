"""report.html from result folders with hostile names: everything escaped, every link relative."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from otns.report.page import relative_link

HOSTILE = ["javascript:alert(1)", "data:text,x", "a\"onmouseover=alert(1) b", "<script>alert(1)<%2F>", "#top", "?q=1",
           "dir with spaces", "ünïcode"]


@pytest.fixture(scope="module")
def junit(tmp_path_factory) -> Path:
    """A JUnit file pytest really wrote, with a test whose message holds markup."""
    d = tmp_path_factory.mktemp("junit")
    (d / "conformance").mkdir()
    (d / "conformance" / "__init__.py").write_text("")
    (d / "conformance" / "test_x.py").write_text(textwrap.dedent('''
        def test_ok():
            pass

        def test_bad():
            assert 0, "<img src=x onerror=alert(1)>"
    '''))
    xml = d / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "junit_family=xunit2",
                    f"--junitxml={xml}", "conformance"], cwd=d, capture_output=True)
    return xml


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        for name, value in attrs:
            if name in ("href", "src", "data-console"):
                self.links.append(value)
            if name.startswith("on") and name not in ("onclick", "onchange"):
                self.handlers.append(f"{tag} {name}")


def test_hostile_folder_names_give_only_relative_links(otns, junit, tmp_path):
    folders = []
    for name in HOSTILE:
        f = tmp_path / "results" / name
        f.mkdir(parents=True)
        (f / "junit.xml").write_bytes(junit.read_bytes())
        (f / "summary.json").write_text(json.dumps({"kernel": name, "verdict": "CONFORMS", "verdict_line": name}))
        (f / "console.log").write_text("console\n")
        folders.append(str(f))
    out = tmp_path / "report"
    p = otns("report", *folders, "--out", str(out), results=False)
    assert p.code == 0, p.stderr
    page = (out / "report.html").read_text()
    parsed = Links()
    parsed.feed(page)
    consoles = [ln for ln in parsed.links if ln != "#"]
    assert len(consoles) == 3 * len(HOSTILE), consoles  # one per cell, one in the head
    for link in consoles:
        assert link.startswith(("./", "../")), link
        assert ":" not in link and "#" not in link and "?" not in link and " " not in link, link
    assert parsed.scripts == 1, "a name or message became a script"
    assert not parsed.handlers, parsed.handlers
    # each link, resolved from the page's folder, is that kernel's console log
    import urllib.parse
    # Copies inside the report's folder (it is uploaded alone): each with its kernel's log.
    resolved = {(out / urllib.parse.unquote(ln)).resolve() for ln in consoles}
    assert all(p.is_relative_to(out.resolve()) for p in resolved)
    assert sorted(p.read_bytes() for p in resolved) == sorted((Path(f) / "console.log").read_bytes() for f in folders)
    md = (out / "grid.md").read_text()
    assert md.splitlines()[0].count(" | ") == len(HOSTILE), "a name broke the Markdown table"


@pytest.mark.parametrize("target, base, link", [
    ("/r/out/k/console.log", "/r/out", "./k/console.log"),
    ("/r/javascript:alert(1)/console.log", "/r/out", "../javascript%3Aalert%281%29/console.log"),
    ("/r/out/javascript:alert(1)/console.log", "/r/out", "./javascript%3Aalert%281%29/console.log"),
    ("/r/out/a b/c#d?e", "/r/out", "./a%20b/c%23d%3Fe"),
])
def test_relative_link(target, base, link):
    assert relative_link(Path(target), Path(base)) == link
