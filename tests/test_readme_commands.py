"""Everything the README shows of the CLI exists: each `infogan-study` command in its fenced
```bash blocks (and those of docs/*.md) parses with the real parser, `sweep`, `search` and `demo`
run with --dry-run (their values checked too: spaces, metrics, fields; nothing started or
written), and `train` builds its config; and every option the CLI reference (a ```text block of
`infogan-study SUBCOMMAND [...]` lines) names exists in that subcommand, shown as required exactly
where the parser requires it.

The blocks are parsed as they are, whatever the README says: shell comments and line
continuations are handled, commands are split at `&&`, `||`, `;` and `|`, and a command that is
not infogan-study's (`ray up`, `uv run pytest`, `mlflow ui`) is skipped because it does not start
with `infogan-study` or `uv run infogan-study`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from study.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
OPERATORS = {"&&", "||", ";", "|", "&"}
DRY_RUN = ("sweep", "search", "demo")


def fenced_blocks(language: str) -> list[tuple[str, str]]:
    """(file name, block text) of every fenced block in `language` of the README and docs."""
    return [(doc.name, m.group(2)) for doc in DOCS for m in FENCE.finditer(doc.read_text()) if m.group(1) == language]


def shell_commands(block: str) -> list[list[str]]:
    """The commands of a shell block, as argv lists: continuations joined, comments dropped."""
    text = block.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        current: list[str] = []
        for token in lexer:
            if token in OPERATORS:
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [c for c in commands if c]


def cli_argv(command: list[str]) -> list[str] | None:
    """The arguments after `infogan-study` (or `uv run infogan-study`); None for another program."""
    if command[:1] == ["infogan-study"]:
        return command[1:]
    if command[:3] == ["uv", "run", "infogan-study"]:
        return command[3:]
    return None


README_COMMANDS = [
    pytest.param(argv, id=f"{name}: {' '.join(argv)[:80]}")
    for name, block in fenced_blocks("bash")
    for command in shell_commands(block)
    if (argv := cli_argv(command)) is not None
]


def test_the_readme_shows_cli_commands() -> None:
    """The rule that finds them keeps finding them (the test below would pass on none)."""
    assert len(README_COMMANDS) >= 5
    assert {argv.values[0][0] for argv in README_COMMANDS} >= {"demo", "train", "sweep", "search"}


@pytest.mark.parametrize("argv", README_COMMANDS)
def test_a_readme_command_runs(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # relative paths of the README land here
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`infogan-study {' '.join(argv)}` does not parse: {capsys.readouterr().err.strip()}")
    if args.command in DRY_RUN:
        storage = tmp_path / "studies"
        code = main([*argv, "--dry-run", "--storage-path", str(storage)])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "trials" in captured.out and not storage.exists()  # a plan was printed, nothing written
    elif args.command == "train":
        from study.commands.train import build_config

        build_config(args)  # every --set field and value is one the config takes


def reference_lines() -> list[tuple[str, str]]:
    """(subcommand, its text) of each `infogan-study SUBCOMMAND ...` entry of the text blocks; an
    entry goes on over the indented lines below it."""
    entries: list[tuple[str, str]] = []
    for _, block in fenced_blocks("text"):
        for line in block.splitlines():
            words = line.split()
            if words[:1] == ["infogan-study"] and len(words) > 1:
                entries.append((words[1], line))
            elif entries and line.startswith(" ") and words:
                entries[-1] = (entries[-1][0], entries[-1][1] + " " + line)
    return entries


def options_by_requirement(text: str) -> dict[str, bool]:
    """Each option token of a usage-like text -> whether it stands outside [...] (shown as required)."""
    out: dict[str, bool] = {}
    depth = 0
    for m in re.finditer(r"\[|\]|(?<![\w-])(--?[A-Za-z][\w-]*)", text):
        if m.group(0) == "[":
            depth += 1
        elif m.group(0) == "]":
            depth -= 1
        else:
            out.setdefault(m.group(1), depth == 0)
    return out


def subcommand_help(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """(usage, whole help) of a subcommand, from its --help."""
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    return text.split("\n\n")[0], text


REFERENCE = reference_lines()


def test_the_readme_has_a_cli_reference() -> None:
    assert {name for name, _ in REFERENCE} >= {"demo", "train", "sweep", "search", "status", "analyze", "report"}


@pytest.mark.parametrize(("name", "line"), [pytest.param(n, t, id=n) for n, t in REFERENCE])
def test_the_cli_reference_names_real_options(name: str, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    usage, help_text = subcommand_help(name, capsys)
    shown = options_by_requirement(line.split(name, 1)[1])
    required = options_by_requirement(usage.split(name, 1)[1])
    for option, outside in shown.items():
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text), f"{name} has no option {option}"
        if option in required:  # (an option's aliases, e.g. -o/--out, show only one in the usage)
            assert outside == required[option], (
                f"the reference shows {name} {option} as {'required' if outside else 'optional'}; it is not"
            )
