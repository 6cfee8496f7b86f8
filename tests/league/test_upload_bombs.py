"""Hostile uploads the static checks cannot see: a graph that allocates gigabytes when it runs. Evaluations
run in a sandbox with the race's memory limit, so that job fails with the reason and nothing else is touched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from contracts.model_card import load_card
from contracts.virtual_race import EvaluationJob, SubmissionLimits, VirtualRaceSpec
from league_server.jobs.engine import run_job
from league_server.jobs.sandbox import Limits
from league_server.jobs.uploads import check_upload
from tests.export_fixtures import exported_state
from trainer.export.card import model_file

__all__ = ["exported_state"]


def _allocating_graph(like: Path, path: Path) -> None:
    """A graph with the state model's input and outputs whose constant is 60,000 x 60,000 floats (14 GB):
    ONNX Runtime folds it while loading the model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(like)
    obs = model.graph.input[0]
    shape = numpy_helper.from_array(np.array([60_000, 60_000], dtype=np.int64), "shape")
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["big"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
        ),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", [obs.name], ["seen"], keepdims=0),
        helper.make_node("Add", ["seen", "total"], ["sum"]),
        helper.make_node("Reshape", ["sum", "one"], ["steering_deg"]),
        helper.make_node("Reshape", ["sum", "one"], ["speed_mps"]),
    ]
    one = numpy_helper.from_array(np.array([1], dtype=np.int64), "one")
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in ("steering_deg", "speed_mps")
    ]
    graph = helper.make_graph(nodes, "allocates", [obs], outputs, [shape, one])
    bomb = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    bomb.ir_version = 8
    onnx.save(bomb, path)


def test_a_graph_that_allocates_gigabytes_fails_its_evaluation_alone(
    exported_state: Path, tmp_path: Path
) -> None:
    """It passes the static checks and loads (ONNX Runtime folds no constant that large); the first inference
    allocates 14 GB and the sandbox's address-space limit stops that process, with the reason."""
    job = tmp_path / "job"
    job.mkdir()
    model = job / "model.onnx"
    _allocating_graph(exported_state / "model.onnx", model)
    card = load_card(exported_state / "model.json")
    entry = model_file(model, "fp32")
    card_dict = json.loads(card.model_copy(update={"files": (entry,)}).model_dump_json())
    (job / "model.json").write_text(json.dumps(card_dict), encoding="utf-8")
    spec = VirtualRaceSpec(track="reinvent_base", limits=SubmissionLimits(memory_mb=1024))
    EvaluationJob(spec=spec, model="model.onnx", card="model.json", out_dir="out").write(job / "job.json")
    problems = check_upload(tmp_path / "data", model.read_bytes(), card_dict, spec)
    assert problems == [] or "memory" in problems[0]
    limits = Limits(spec.limits.cpu_s, spec.limits.memory_mb, spec.limits.wall_s)
    run = run_job(job, limits)
    assert run.sandbox.stopped_by == "memory" and "1024 MiB memory limit" in run.failure, run
