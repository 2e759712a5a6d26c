"""The soak's cases that go through ``transcribe.py`` (:mod:`asr.cli.transcribe`): its
reference reader, its manifest and ``wav.scp`` reader, and its ``main(argv)`` run in-process
on groups of audio files and on checkpoints. The one module of the bench that imports the
command line (tests/test_layout.py lists it): the soak must try the tool as users run it.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from asr.bench.fuzz_audio import AudioCase
from asr.bench.fuzz_core import LOST, OK, REFUSED, Tally


def run_transcribe(cases: list[AudioCase], model: Path, control: Path, tally: Tally) -> None:
    """One ``transcribe.py`` run on ``cases`` and the control file; each input counted once."""
    from asr.cli.transcribe import main

    outcome: dict[str, str] = {}

    def check() -> str:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--model", str(model), "--no-progress", str(control), *(str(c.path) for c in cases)])
        lines = {line.split("\t", 1)[0] for line in out.getvalue().splitlines() if "\t" in line}
        errors = [line for line in err.getvalue().splitlines() if line.startswith("error: ")]
        if "Traceback" in err.getvalue() or code != (1 if errors else 0) or control.stem not in lines:
            raise AssertionError(f"exit {code}, stderr {err.getvalue()[-500:]!r}")
        for case in cases:
            named = [line for line in errors if line.startswith(f"error: {case.path}: ")]
            if (case.path.stem in lines) == bool(named) or len(named) > 1:  # exactly one of the two
                outcome[case.path.name] = LOST
            elif named:
                outcome[case.path.name] = LOST if case.good else REFUSED
            else:
                outcome[case.path.name] = LOST if case.bad else OK
        return OK

    result = tally.run("run", "transcribe", check, f"group of {len(cases)} from {cases[0].path.name}",
                       weight=len(cases) + 1)  # fmt: skip
    tally.counts[("run", "transcribe", result)] -= 1  # the run itself: count its inputs instead
    if not tally.counts[("run", "transcribe", result)]:
        del tally.counts[("run", "transcribe", result)]
    for case in cases:
        got = outcome.get(case.path.name, result if result != OK else LOST)
        tally.add(case.kind, "transcribe", got, case.path.name)


def check_references(path: Path, fault: str, expected: dict[str, str]) -> str:
    from asr.cli.transcribe import UsageError, read_references

    try:
        refs = read_references(path)
    except UsageError as err:
        if not str(err).startswith(f"{path}") or "\n" in str(err):
            raise
        if fault == "duplicate" and "'utt0'" not in str(err):
            return LOST  # the error must name the id
        return LOST if fault == "none" else REFUSED
    if fault in ("none", "nul"):  # a NUL byte is a character like another
        return OK if fault == "nul" or refs == expected else LOST
    return LOST if fault in ("duplicate", "not_utf8") else OK


def check_manifest_inputs(path: Path, fault: str, ids: list[str]) -> str:
    from asr.cli.inputs import manifest_inputs as _manifest_inputs

    errors: list[str] = []
    inputs = _manifest_inputs(path, errors)
    if any(not e.startswith(str(path)) or "\n" in e for e in errors):
        raise AssertionError(f"unclear error lines {errors}")
    if fault == "none":
        return OK if not errors and [i for i, _ in inputs] == ids else LOST
    if fault in ("duplicate", "not_utf8", "json", "list") and not errors:
        return LOST  # a fault that must be reported
    return REFUSED if errors else OK


def check_transcribe_checkpoint(path: Path, fault: str, control: Path) -> str:
    """``transcribe.py --model`` with the case: a good model transcribes, another gives one
    ``error:`` line and exit status 2."""
    from asr.cli.transcribe import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--model", str(path), "--no-progress", str(control)])
    errors = [line for line in err.getvalue().splitlines() if line.startswith("error: ")]
    if "Traceback" in err.getvalue():
        raise AssertionError(err.getvalue()[-500:])
    if code == 0 and not errors and out.getvalue().startswith(f"{control.stem}\t"):
        return OK if fault in ("none", "lightning") else LOST
    if code == 2 and len(errors) == 1 and str(path) in errors[0]:
        return LOST if fault in ("none", "lightning") else REFUSED
    raise AssertionError(f"exit {code}, stderr {err.getvalue()[-300:]!r}")
