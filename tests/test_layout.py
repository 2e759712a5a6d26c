"""The floor plan holds: each room of ``asr/`` imports only the rooms its docstring allows,
and no room imports itself in a circle. Imports are read from the source (every ``import``
statement, also those inside functions), so a lazy import cannot hide an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ASR = Path(__file__).resolve().parents[1] / "asr"
ROOMS = ("text", "audio", "data", "corpus", "model", "decoding", "training", "inference", "plot", "serving", "export", "bench",
         "cli", "runtime")

# room -> the rooms (and root modules) it may import; "config" is asr/config.py
ALLOWED = {
    "config": set(),
    "text": set(),
    "audio": set(),
    "model": {"config", "text"},  # text: the token ids (asr.text.tokenizer.BLANK)
    "decoding": {"text"},
    "data": {"config", "text", "audio", "model"},
    "corpus": {"config", "text", "audio", "data"},
    "inference": {"config", "text", "audio", "model", "decoding", "data"},
    "plot": {"config", "text", "audio", "model", "decoding", "inference"},
    "training": {"config", "text", "audio", "model", "decoding", "data", "corpus", "inference"},
    "serving": {"config", "text", "audio", "model", "decoding", "inference"},
    "export": {"config", "text", "model", "inference"},
    "runtime": {"text"},  # torch-free: numpy, onnxruntime, soundfile and the tokenizer only
    "bench": {"config", "text", "audio", "model", "decoding", "data", "corpus", "inference", "training", "plot", "serving",
              "export"},
    "cli": {"config", "text", "audio", "model", "decoding", "data", "corpus", "inference", "training", "plot", "serving",
            "export", "bench"},
}
# Lazy imports allowed against the arrows, each with its reason.
EXCEPTIONS = {
    ("inference/results.py", "plot"),  # Transcript.show / .save draw with the optional matplotlib
    ("bench/fuzz_cli.py", "cli"),  # the soak drives transcribe.py's readers and main(argv) in-process
}
THIRD_PARTY_BANNED = {  # room -> packages it must never import
    "model": {"lightning", "soundfile"},
    "text": {"lightning", "torch"},
    "decoding": {"lightning", "soundfile"},
    "inference": {"lightning"},
    "audio": {"lightning"},
    "serving": {"lightning"},
    "export": {"lightning"},
    "runtime": {"torch", "torchaudio", "lightning", "yaml"},
}


def room_of(path: Path) -> str:
    rel = path.relative_to(ASR)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[str]:
    """Every module name an import statement in ``path`` names (absolute form)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def sources() -> list[Path]:
    return sorted(p for p in ASR.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_lives_in_a_room():
    loose = [p.name for p in ASR.glob("*.py") if p.stem not in ("__init__", "config")]
    assert not loose, f"modules outside a room: {loose}"
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((ASR / room / "__init__.py").read_text()))
        assert doc and "import" in doc, f"asr/{room}/__init__.py must say what the room owns and may import"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ASR)))
def test_imports_follow_the_arrows(path):
    room = room_of(path)
    if room == "__init__":
        return
    rel = str(path.relative_to(ASR))
    for name in imports(path):
        parts = name.split(".")
        if parts[0] == "asr" and len(parts) > 1:
            target = parts[1]
            if target == room or (rel, target) in EXCEPTIONS:
                continue
            assert target in ALLOWED[room], f"asr/{rel} imports {name}: room '{room}' may not import '{target}'"
        banned = THIRD_PARTY_BANNED.get(room, set())
        assert parts[0] not in banned, f"asr/{rel} imports {name}: room '{room}' must not depend on {parts[0]}"


def test_no_import_circles_between_modules():
    """Module-level imports form no cycle (a lazy import inside a function is allowed to
    break one only where EXCEPTIONS says so)."""
    graph: dict[str, set[str]] = {}
    for path in sources():
        module = module_of(path)
        tree = ast.parse(path.read_text())
        deps = set()
        for node in tree.body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asr."):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("asr.")}
        graph[module] = deps - {module}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep in graph and not state.get(dep):
                visit(dep, stack + [dep])
        state[node] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [module])


def module_of(path: Path) -> str:
    return ".".join(("asr",) + path.relative_to(ASR).with_suffix("").parts).removesuffix(".__init__")


def modules_imported(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that any import statement in ``path`` names, inside functions
    too; ``from asr.bench import fuzz_cli`` names the module ``asr.bench.fuzz_cli``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found & known


def test_no_two_modules_import_each_other_even_lazily():
    """An import inside a function can hide a circle from the interpreter, not from a reader:
    two modules that each need the other are one module in two files (or a third is missing)."""
    paths = {module_of(p): p for p in sources()}
    deps = {module: modules_imported(path, set(paths)) - {module} for module, path in paths.items()}
    pairs = sorted({tuple(sorted((a, b))) for a in deps for b in deps[a] if a in deps[b]})
    assert not pairs, "modules importing each other: " + ", ".join(" <-> ".join(p) for p in pairs)


def test_token_ids_are_the_tokenizers():
    """BLANK and UNKNOWN are set once, beside the +1 shift they follow (asr/text/tokenizer.py),
    and model, decoders and data read them there."""
    owners = {"text/tokenizer.py", "runtime/model.py"}  # the runtime's own copy: it was written before this test
    for path in sources():
        for node in ast.parse(path.read_text()).body:
            targets = [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
            for name in set(targets) & {"BLANK", "UNKNOWN"}:
                assert str(path.relative_to(ASR)) in owners, f"asr/{path.relative_to(ASR)} sets {name}"


def test_plot_modules_import_one_way():
    """The pictures import the trace; the trace imports no picture code."""
    for path in (ASR / "inference").rglob("*.py"):
        for name in imports(path):
            if name.startswith("asr.plot"):
                assert (str(path.relative_to(ASR)), "plot") in EXCEPTIONS, f"{path} imports {name}"
    for name in imports(ASR / "plot" / "transcript.py") + imports(ASR / "plot" / "curves.py"):
        assert not name.startswith("asr.plot.attention")
