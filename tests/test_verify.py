"""verify.py and onnx_graph.py against a copy of the real default model, damaged in the ways users
actually meet: a truncated or missing weight file, missing tokenizer files, a broken config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentic_flow.errors import VerifyError
from agentic_flow.models.onnx_graph import OnnxFormatError, external_refs
from agentic_flow.models.verify import MANIFEST_FILE, check_model_dir, verify_model_dir, write_manifest

REPAIR = "agentic-flow models pull smollm2-135m --force"


@pytest.fixture
def model(real_model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    # Without the store's manifest: these tests check a folder given by path, made by hand.
    shutil.copytree(real_model_dir, copy, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    return copy


def data_extent(model: Path) -> int:
    return max(ref.offset + (ref.size or 0) for ref in external_refs(model / "model.onnx"))


def test_a_complete_model_passes(model: Path) -> None:
    report = verify_model_dir(model, name="smollm2-135m")
    assert report.ok
    assert report.problems == ()


def test_truncated_weights_name_the_file_both_sizes_and_the_repair(model: Path) -> None:
    need = data_extent(model)
    data = model / "model.onnx.data"
    with open(data, "r+b") as handle:
        handle.truncate(need // 2)
    with pytest.raises(VerifyError) as caught:
        verify_model_dir(model, name="smollm2-135m")
    message = str(caught.value)
    assert "model.onnx.data is truncated" in message
    assert f"tensors need {need} bytes, the file has {need // 2}" in message
    assert REPAIR in message


def test_a_folder_given_by_path_gets_a_re_create_hint_instead_of_pull(model: Path) -> None:
    (model / "tokenizer.json").unlink()
    message = check_model_dir(model).message()
    assert "tokenizer.json is missing" in message
    assert "models pull" not in message
    assert f"re-create {model}" in message


def test_missing_weight_file(model: Path) -> None:
    (model / "model.onnx.data").unlink()
    report = check_model_dir(model, name="smollm2-135m")
    assert len(report.problems) == 1
    assert report.problems[0].startswith("model.onnx.data is missing: model.onnx keeps 365 tensors")


def test_missing_tokenizer_and_template_are_all_reported(model: Path) -> None:
    (model / "tokenizer.json").unlink()
    (model / "chat_template.jinja").unlink()
    report = check_model_dir(model, name="smollm2-135m")
    assert report.problems == (
        "tokenizer.json is missing",
        "no chat template: neither chat_template.jinja nor a chat_template entry in tokenizer_config.json",
    )
    assert "2 problems" in report.message()


def test_a_chat_template_inside_tokenizer_config_is_enough(model: Path) -> None:
    template = (model / "chat_template.jinja").read_text()
    (model / "chat_template.jinja").unlink()
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    assert check_model_dir(model).ok


def test_unparseable_genai_config_still_checks_the_rest(model: Path) -> None:
    (model / "genai_config.json").write_text('{"model": {"decoder": ')
    with open(model / "model.onnx.data", "r+b") as handle:
        handle.truncate(1000)
    problems = check_model_dir(model).problems
    assert problems[0].startswith("genai_config.json is not valid JSON")
    # The conventional model.onnx is still checked, so one run shows every problem.
    assert any(p.startswith("model.onnx.data is truncated") for p in problems)


def test_model_file_named_by_the_config_must_exist(model: Path) -> None:
    config = json.loads((model / "genai_config.json").read_text())
    config["model"]["decoder"]["filename"] = "decoder.onnx"
    (model / "genai_config.json").write_text(json.dumps(config))
    assert check_model_dir(model).problems == (
        "decoder.onnx is missing (genai_config.json model.decoder.filename names it)",
    )


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    missing, file = tmp_path / "nope", tmp_path / "file"
    assert check_model_dir(missing).problems == (f"the model folder {missing} does not exist",)
    file.write_text("x")
    assert check_model_dir(file).problems == (f"{file} is a file, not a model folder",)


def test_garbage_model_onnx_is_reported_not_raised(model: Path) -> None:
    (model / "model.onnx").write_bytes(b"\xff" * 64)
    (problem,) = check_model_dir(model).problems
    assert problem.startswith("model.onnx is not a readable ONNX model")


def test_manifest_catches_damage_to_files_the_graph_does_not_describe(model: Path) -> None:
    write_manifest(model, {"name": "smollm2-135m"})
    assert check_model_dir(model).ok
    tokenizer = model / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text() + " ")  # still valid JSON, but not what was installed
    size = tokenizer.stat().st_size
    assert check_model_dir(model).problems == (
        f"tokenizer.json has {size} bytes, the install manifest recorded {size - 1}",
    )
    files = json.loads((model / MANIFEST_FILE).read_text())["files"]
    assert set(files) == {p.name for p in model.iterdir() if p.name != MANIFEST_FILE}


# ---------------------------------------------------------------- the graph reader


def test_graph_reader_agrees_with_onnx(real_model_dir: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import external_data_helper

    proto = onnx.load(str(real_model_dir / "model.onnx"), load_external_data=False)
    expected = set()
    for tensor in external_data_helper._get_all_tensors(proto):
        if external_data_helper.uses_external_data(tensor):
            info = external_data_helper.ExternalDataInfo(tensor)
            expected.add((tensor.name, info.location, info.offset, info.length))
    refs = external_refs(real_model_dir / "model.onnx")
    assert {(r.tensor, r.location, r.offset, r.length) for r in refs} == expected
    assert len(refs) == len(expected) > 300
    # dims x element size (float32 and the uint8 int4 blocks) matches every declared length.
    assert all(r.shape_bytes == r.length for r in refs)


def test_graph_reader_computes_a_missing_length_and_finds_tensors_in_subgraphs(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def external(name: str, dims: list[int], data_type: int, offset: int) -> TensorProto:
        tensor = TensorProto(name=name, data_type=data_type, dims=dims)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "w.bin"), ("offset", str(offset))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    constant = external("in_subgraph", [3, 5], TensorProto.INT4, 64)
    inner = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=constant)],
        "inner", [], [helper.make_tensor_value_info("c", TensorProto.INT4, [3, 5])],
    )
    node = helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=inner)
    graph = helper.make_graph(
        [node], "outer", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT4, [3, 5])],
        initializer=[external("weights", [2, 3], TensorProto.FLOAT16, 0)],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    refs = {(r.tensor, r.offset, r.length, r.size) for r in external_refs(path)}
    # float16 2x3 = 12 bytes; int4 3x5 = 15 nibbles, packed into 8 bytes; the If has two branches.
    assert refs == {("weights", 0, None, 12), ("in_subgraph", 64, None, 8)}
    assert len(external_refs(path)) == 3


def test_graph_reader_rejects_truncated_and_empty_files(real_model_dir: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((real_model_dir / "model.onnx").read_bytes()[:5000])
    with pytest.raises(OnnxFormatError):
        external_refs(cut)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(OnnxFormatError, match="empty"):
        external_refs(empty)
