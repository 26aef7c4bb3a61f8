"""docs/magics.md and ``%sql?`` describe the same flags (#26 item 5), checked both ways."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from tests.magics_shell import close_shell, new_shell

DOCS = Path(__file__).resolve().parent.parent / "docs" / "magics.md"
FLAG = re.compile(r"(?<![\w/-])(--?[a-zA-Z][\w-]*)")


@pytest.fixture(scope="module")
def help_text():
    ip = new_shell()
    try:
        with capture_output() as cap:
            ip.run_cell("%sql?")
        payload = ip.payload_manager.read_payload() or []
        text = cap.stdout + "".join(str(p.get("data", {}).get("text/plain", "")) for p in payload)
        parser = ip._sqlnb_magics.sql.parser
    finally:
        close_shell(ip)
    assert "--connect" in text, "%sql? showed no help"
    return text, parser


def magic_flags_in_docs() -> set:
    """The flags the docs give to the magic: in `...` spans and code lines that start with a flag,
    %sql or %%sql (so `python -m sqlnb.demo --data-only` is not the magic's)."""
    docs = DOCS.read_text()
    spans = re.findall(r"`([^`\n]+)`", docs)
    spans += [line for line in docs.splitlines() if line.lstrip().startswith(("%sql", "%%sql"))]
    out = set()
    for span in spans:
        span = span.strip()
        if span.startswith(("-", "%sql", "%%sql")):
            code = re.sub(r"'[^']*'|\"[^\"]*\"", "", span.split("  #")[0])  # not in quoted text
            if not span.startswith("-"):
                code = code.split(" -- ")[0]  # nor in an SQL comment after the magic's options
            out |= set(FLAG.findall(code))
    return out


def test_every_flag_of_the_help_is_in_the_docs(help_text):
    text, parser = help_text
    in_help = set(FLAG.findall(text))
    documented = magic_flags_in_docs()
    for action in parser._actions:
        for opt in action.option_strings:
            assert opt in in_help, f"{opt} missing from %sql?"
            assert opt in documented, f"{opt} is in %sql? but not in docs/magics.md"
    assert {"--help", "-h"} <= in_help and {"--help", "-h"} <= documented


def test_every_flag_in_the_docs_is_in_the_help(help_text):
    text, parser = help_text
    in_help = set(FLAG.findall(text))
    known = {opt for action in parser._actions for opt in action.option_strings} | {"--help", "-h"}
    documented = magic_flags_in_docs()
    assert len(documented) >= 25
    for flag in sorted(documented):
        assert flag in known, f"docs/magics.md documents {flag}, which the magic does not have"
        assert flag in in_help, f"docs/magics.md documents {flag}, which %sql? does not show"


def test_the_checker_sees_a_missing_flag(help_text):
    """The docs side of the check finds flags (a flag only in a demo command line is not one)."""
    documented = magic_flags_in_docs()
    assert "--data-only" not in documented
    assert {"--connect", "--save", "--export", "--index", "-o"} <= documented
