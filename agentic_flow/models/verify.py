"""Check a model folder before anything loads it.

onnxruntime-genai reports a truncated or missing weight file only when a session is created, deep in
a native stack trace ("Deserialize tensor X failed ... out of bounds").  Everything it needs can be
checked from file sizes and the small model.onnx graph, so we check it first and say which file is
wrong, by how much, and how to repair it.  Every problem is reported, not just the first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import VerifyError
from .onnx_graph import ExternalRef, OnnxFormatError, external_refs

CONFIG_FILE = "genai_config.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
# Written by the store after a successful install: file names and sizes, so later damage shows.
MANIFEST_FILE = ".agentic-flow-manifest.json"


@dataclass(frozen=True)
class VerifyReport:
    path: Path
    problems: tuple[str, ...]
    repair: str

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """One text that names every problem and the repair command."""
        if len(self.problems) == 1:
            problem = self.problems[0]
            where = "" if str(self.path) in problem else f" (in {self.path})"
            return f"{problem}{where}. Repair: {self.repair}"
        lines = [f"the model folder {self.path} has {len(self.problems)} problems:"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append(f"Repair: {self.repair}")
        return "\n".join(lines)


def repair_hint(path: Path, name: str | None) -> str:
    """How to fix a broken folder: re-pull a catalog model, or re-create a folder given by path."""
    if name is not None:
        return f"agentic-flow models pull {name} --force"
    return (
        f"re-create {path} from its source (copy the complete folder again, or re-run "
        f"`python -m onnxruntime_genai.models.builder ... -o {path}`)"
    )


def verify_model_dir(path: Path, *, name: str | None = None) -> VerifyReport:
    """Check the folder; raise VerifyError naming every problem, or return the clean report."""
    report = check_model_dir(path, name=name)
    if not report.ok:
        raise VerifyError(report.message())
    return report


def check_model_dir(path: Path, *, name: str | None = None) -> VerifyReport:
    """Check the folder and return every problem found (an empty tuple when it is usable)."""
    repair = repair_hint(path, name)
    if not path.exists():
        return VerifyReport(path, (f"the model folder {path} does not exist",), repair)
    if not path.is_dir():
        return VerifyReport(path, (f"{path} is a file, not a model folder",), repair)
    problems: list[str] = []
    config, config_problems = _read_json(path, CONFIG_FILE)
    problems += config_problems
    for filename, where in _model_files(path, config, problems):
        problems += _check_onnx(path, filename, where)
    tokenizer_config, tokenizer_problems = _read_json(path, TOKENIZER_CONFIG_FILE)
    problems += tokenizer_problems
    problems += _read_json(path, TOKENIZER_FILE, keep=False)[1]
    problems += _check_chat_template(path, tokenizer_config)
    problems += _check_manifest(path, problems)
    return VerifyReport(path, tuple(problems), repair)


# ---------------------------------------------------------------- JSON files

def _read_json(folder: Path, filename: str, *, keep: bool = True) -> tuple[Any, list[str]]:
    target = folder / filename
    if not target.is_file():
        return None, [f"{filename} is missing"]
    try:
        data = json.loads(target.read_bytes())
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, [f"{filename} is not valid JSON ({err})"]
    return (data if keep else None), []


def _model_files(folder: Path, config: Any, problems: list[str]) -> list[tuple[str, str]]:
    """(file, where it is named) for each ONNX file the config names: decoder, embedding, vision..."""
    if config is None:
        # The config is already reported; still check the conventional file so one run shows everything.
        return [("model.onnx", "the default name")] if (folder / "model.onnx").is_file() else []
    model = config.get("model") if isinstance(config, dict) else None
    sections = model if isinstance(model, dict) else {}
    found = [
        (section["filename"], f"{CONFIG_FILE} model.{key}.filename")
        for key, section in sections.items()
        if isinstance(section, dict) and isinstance(section.get("filename"), str)
    ]
    if not any(where.endswith("model.decoder.filename") for _, where in found):
        problems.append(f"{CONFIG_FILE} has no model.decoder.filename")
    return found


# ---------------------------------------------------------------- ONNX graph and weights

def _check_onnx(folder: Path, filename: str, where: str) -> list[str]:
    target = folder / filename
    if not target.is_file():
        return [f"{filename} is missing ({where} names it)"]
    try:
        refs = external_refs(target)
    except (OnnxFormatError, OSError) as err:
        return [f"{filename} is not a readable ONNX model ({err})"]
    by_location: dict[str, list[ExternalRef]] = defaultdict(list)
    for ref in refs:
        by_location[ref.location].append(ref)
    problems: list[str] = []
    for location, group in by_location.items():
        problems += _check_data_file(folder, filename, location, group)
    problems += _check_declared_lengths(filename, refs)
    return problems


def _check_data_file(folder: Path, model_file: str, location: str, refs: list[ExternalRef]) -> list[str]:
    relative = PurePosixPath(location)
    if not location or relative.is_absolute() or ".." in relative.parts:
        # onnxruntime refuses these too; saying so here is clearer than its error.
        return [f"{model_file} points tensor {refs[0].tensor} at {location!r}, outside the model folder"]
    need = max((ref.end if ref.end is not None else ref.offset) for ref in refs)
    data = folder / relative
    if not data.is_file():
        return [f"{location} is missing: {model_file} keeps {len(refs)} tensors ({need} bytes) in it"]
    actual = data.stat().st_size
    if need > actual:
        return [f"{location} is truncated: tensors need {need} bytes, the file has {actual}"]
    return []


def _check_declared_lengths(model_file: str, refs: list[ExternalRef]) -> list[str]:
    """A declared length that disagrees with the tensor's shape means the graph itself is corrupt."""
    wrong = [
        ref for ref in refs
        if ref.length is not None and ref.shape_bytes is not None and ref.length != ref.shape_bytes
    ]
    if not wrong:
        return []
    first = wrong[0]
    more = f" (and {len(wrong) - 1} more tensors)" if len(wrong) > 1 else ""
    return [(
        f"{model_file}: tensor {first.tensor} declares {first.length} bytes but its shape and type "
        f"need {first.shape_bytes}{more}"
    )]


# ---------------------------------------------------------------- chat template and manifest

def _check_chat_template(folder: Path, tokenizer_config: Any) -> list[str]:
    template = folder / CHAT_TEMPLATE_FILE
    if template.is_file() and template.stat().st_size > 0:
        return []
    if isinstance(tokenizer_config, dict) and tokenizer_config.get("chat_template"):
        return []
    return [(
        f"no chat template: neither {CHAT_TEMPLATE_FILE} nor a chat_template entry in "
        f"{TOKENIZER_CONFIG_FILE}"
    )]


def _check_manifest(folder: Path, found: list[str]) -> list[str]:
    """Compare sizes with what the install recorded, for files not already reported above."""
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return []  # a folder made by hand has no manifest, and needs none
    try:
        files = json.loads(manifest.read_bytes())["files"]
        recorded = {str(name): int(size) for name, size in files.items()}
    except (ValueError, OSError, KeyError, TypeError, AttributeError) as err:
        return [f"{MANIFEST_FILE} is unreadable ({err})"]
    problems = []
    for name, size in recorded.items():
        if any(problem.startswith(name + " ") for problem in found):
            continue
        target = folder / name
        if not target.is_file():
            problems.append(f"{name} is missing (the install manifest lists it)")
        elif (actual := target.stat().st_size) != size:
            problems.append(f"{name} has {actual} bytes, the install manifest recorded {size}")
    return problems


def write_manifest(folder: Path, extra: dict[str, Any]) -> None:
    """Record every file's size (relative POSIX paths) so that `verify` can later spot damage."""
    files = {
        item.relative_to(folder).as_posix(): item.stat().st_size
        for item in sorted(folder.rglob("*"))
        if item.is_file() and item.name != MANIFEST_FILE
    }
    tmp = folder / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps({**extra, "files": files}, indent=2) + "\n")
    tmp.replace(folder / MANIFEST_FILE)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The install manifest's fields other than the file sizes ({} when there is none or it is unreadable)."""
    try:
        data = json.loads((folder / MANIFEST_FILE).read_bytes())
    except (ValueError, OSError):
        return {}
    return {k: v for k, v in data.items() if k != "files"} if isinstance(data, dict) else {}
