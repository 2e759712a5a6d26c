"""The README is a front door: short, in a newcomer's order, and every command it shows runs
something that exists. User documents and code comments say what a thing does, never which
work item brought it. Reads files only: no model, no torch."""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from asr.text.wer import WERResult

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 200
NEWCOMER_LINES = 80  # install, the main job, a file, live input and Python all come before this line
FIGURES_MARK = "<!-- main-job figures -->"

# "issue 14", "issues 3 and 4", "issue #7", "task 2": names of work items, which mean nothing to a reader
WORK_ITEM = re.compile(r"\b(?:issues?|tasks?|tickets?)\s*#\s*\d+|\b(?:issues?|tasks?|tickets?)\s+\d+\b", re.I)


def user_documents() -> list[Path]:
    docs = [README, ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
    return docs + sorted((ROOT / "recipes").glob("*/README.md"))


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """-> (language, body) of every ``` block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)


def shell_commands(body: str) -> list[list[str]]:
    """A shell block -> the words of each simple command (continuations joined, comments,
    pipes, ``&&``, ``;`` and environment assignments taken apart)."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in words + ["|"]:
            if word in ("|", "||", "&&", ";"):
                while command and re.fullmatch(r"[A-Z_]+=.*", command[0]):
                    command.pop(0)
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def module_exists(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def installed_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def missing_target(command: list[str]) -> str | None:
    """What a README command runs that is not there, or None (commands of other tools pass)."""
    program, args = command[0], command[1:]
    if program.endswith("python") or program.endswith("python3"):
        if args[:1] == ["-m"] and len(args) > 1:
            return None if module_exists(args[1]) else f"module {args[1]}"
        if args and args[0].endswith(".py"):
            return None if (ROOT / args[0]).is_file() else f"file {args[0]}"
        return None
    if program in ("bash", "sh") and args:
        return None if (ROOT / args[0]).is_file() else f"file {args[0]}"
    if program.endswith(".py"):
        return None if (ROOT / program).is_file() else f"file {program}"
    if program.startswith("asr-"):
        return None if program in installed_scripts() else f"installed command {program}"
    return None


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move details to docs/ (at most {MAX_LINES})"


def test_readme_commands_name_what_exists():
    text = README.read_text()
    shown = [c for lang, body in fenced_blocks(text) if lang in ("bash", "sh") for c in shell_commands(body)]
    # commands quoted in the prose too: `python -m asr.cli.plot ...`, `bash scripts/...`, `asr-serve ...`
    for span in re.findall(r"`([^`\n]+)`", text):
        try:
            shown.append(shlex.split(span))
        except ValueError:  # not a command: an unbalanced quote
            continue
    shown = [c for c in shown if c]
    assert any(c[0] == "bash" and c[1:] == ["scripts/test.sh"] for c in shown), "the test command CI runs"
    missing = sorted({m for c in shown if (m := missing_target(c))})
    assert not missing, f"README.md shows commands for what does not exist: {missing}"
    assert (ROOT / ".ci" / "run").read_text().count("bash scripts/test.sh") == 1, "CI runs the README's command"


def test_readme_python_imports_exist():
    exported = set()
    for node in ast.parse((ROOT / "asr" / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            exported = set(ast.literal_eval(node.value))
    blocks = [body for lang, body in fenced_blocks(README.read_text()) if lang == "python"]
    assert blocks, "a Python example"
    for body in blocks:
        for node in ast.walk(ast.parse(body)):
            if isinstance(node, ast.ImportFrom) and node.module == "asr":
                assert {a.name for a in node.names} <= exported, ast.unparse(node)
            elif isinstance(node, ast.ImportFrom):
                assert module_exists(node.module), ast.unparse(node)


def test_newcomers_path_comes_first():
    head = "\n".join(README.read_text().splitlines()[:NEWCOMER_LINES])
    steps = {
        "install": r"scripts/setup\.sh",
        "the main job": r"^bash scripts/demo\.sh",
        "transcribe a file": r"transcribe\.py --model \S+ \S+\.(?:flac|wav)",
        "live input": r"arecord .*\| .*transcribe\.py .* -$",
        "Python": r"^from asr import load_model",
    }
    absent = [step for step, pattern in steps.items() if not re.search(pattern, head, re.M)]
    assert not absent, f"not in the README's first {NEWCOMER_LINES} lines: {absent}"


def test_printed_example_has_the_main_jobs_shape():
    """The example output is what scripts/demo.sh prints: one line per test set and decoding,
    each the WER summary transcribe.py writes (live lines add the streaming pass's speed)."""
    text = README.read_text()
    after = text.split(FIGURES_MARK, 1)[1]
    lines = fenced_blocks(after)[0][1].splitlines()
    splits = re.search(r"^for split in ([\w ]+); do", (ROOT / "scripts" / "demo.sh").read_text(), re.M)[1].split()
    summary = re.escape(WERResult(0.1234, 1, 2, 3, 45, 6).summary())
    summary = re.sub(r"\d+", r"\\d+", summary)
    shape = re.compile(rf"({'|'.join(splits)})\s+\S.*?\s+{summary}(\s.*)?")  # live lines add their RTF
    wer_lines = [line for line in lines if not line.startswith(("== ", "demo finished in "))]  # its other lines
    assert wer_lines and all(shape.fullmatch(line) for line in wer_lines), wer_lines
    assert {line.split()[0] for line in wer_lines} == set(splits)


@pytest.mark.parametrize("path", user_documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_name_no_work_item(path: Path):
    found = [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1) if WORK_ITEM.search(line)]
    assert not found, f"{path.relative_to(ROOT)} names work items; say what and why instead: {found}"


def comments(source: str) -> list[tuple[int, str]]:
    """-> (line, text) of each comment and docstring of a Python file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    for n, line in enumerate(source.splitlines(), 1):
        if "#" in line:
            found.append((n, line[line.index("#") :]))
    return found


def test_code_comments_name_no_work_item():
    found = []
    for path in sorted([*(ROOT / "asr").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        if path == Path(__file__).resolve():
            continue  # this file's examples of what not to write
        found += [f"{path.relative_to(ROOT)}:{n}" for n, text in comments(path.read_text()) if WORK_ITEM.search(text)]
    assert not found, f"comments naming work items (say what the code does and why): {found}"


@pytest.mark.parametrize("path", user_documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_link_to_what_exists(path: Path):
    """Relative links and pictures ([text](target), ![alt](target)) reach a file or folder."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)  # code is not links
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)]
    broken = [t for t in targets if t and "://" not in t and not (path.parent / t).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to what is not there: {broken}"
