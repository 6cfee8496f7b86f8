"""The check of an uploaded model (an .onnx file and its model card) before it is queued for a virtual race.

    problems = check_submission(Path("up/model.onnx"), Path("up/model.json"), spec)
    if problems:                      # each a sentence naming the file and what was expected
        refuse(problems)

Checks, in order (a check runs whenever what it needs passed, so a racer sees every reason at once):

1. the .onnx exists and is at most `spec.limits.max_upload_bytes`;
2. it parses as ONNX (read without its external data);
3. no tensor keeps its data in an external file (graph and subgraphs);
4. every node's operator domain is ONNX's own (`""`, `ai.onnx`, `ai.onnx.ml`);
5. its default-domain opset is one this onnxruntime loads (`max_supported_opset`);
6. the card is valid and lists this file's SHA-256;
7. the card fits the race: an allowed observation kind, and the race car gives what the model was trained on;
8. onnxruntime loads the graph and the graph is the card's (`device.policy.graph_mismatches`);
9. every action of the card's action space is within the race car's steering and speed limits.

This runs in a worker process (never the web server): it loads onnx and onnxruntime but no simulator or
trainer. A race car that cannot be loaded is the race's fault, not the upload's: its CarFileError propagates.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.car_file import CarConfig
from contracts.errors import ModelCardError
from contracts.model_card import ModelCard, card_mismatches, load_card, sha256_file
from contracts.virtual_race import VirtualRaceSpec
from device.errors import ModelError
from device.policy import graph_mismatches, load_session
from firmware_configs import load_car
from virtual_circuit.errors import RuntimeUnusableError, SubmissionRejected

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

#: the operator domains a submitted graph may use: ONNX's own; any other is a custom op this worker lacks
ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
_DEFAULT_DOMAINS = ("", "ai.onnx")
#: custom ops named per file before "and N more"
_MAX_NAMED = 10
#: opsets probed beyond the installed onnx package's newest: onnxruntime may know a newer one than onnx
_PROBE_BEYOND = 8


def check_submission(model: Path, card: Path, spec: VirtualRaceSpec, *, static: bool = True) -> list[str]:
    """Every reason the upload cannot race in `spec` (empty: it can), each a sentence naming the file and what
    was expected. `model`: the uploaded .onnx; `card`: its `model.json`. CarFileError when `spec.car` itself
    is not a loadable car (a broken race, not a broken upload). `static=False` skips checks 2-5 (the graph
    read with the onnx package): for a stored upload that passed them when it was submitted."""
    model, card = Path(model), Path(card)
    car = load_car(spec.car)
    file_problems = _file_problems(model, spec.limits.max_upload_bytes)
    graph, graph_problems = None, []
    if not file_problems and static:  # an oversized upload is not read into memory
        graph, why_not = _parse(model)
        graph_problems = [why_not] if graph is None else _graph_problems(model, graph)
    model_card, card_problems = _load_card(card)
    if model_card is not None:
        if not file_problems:
            card_problems += _listed_problems(model, card, model_card)
        card_problems += _race_problems(card, model_card, spec, car)
    # a graph with external data, custom ops or a too-new opset would only fail again, less clearly
    graph_ok = not file_problems and not graph_problems and (graph is not None or not static)
    session_problems = _session_problems(model, card, model_card) if graph_ok else []
    actions = action_problems(card, model_card, car) if model_card is not None else []
    return [*file_problems, *graph_problems, *card_problems, *session_problems, *actions]


def require_submission(model: Path, card: Path, spec: VirtualRaceSpec) -> None:
    """`check_submission`, raising SubmissionRejected (with `.problems`) when there is any reason."""
    problems = check_submission(model, card, spec)
    if problems:
        raise SubmissionRejected(problems)


@functools.cache
def max_supported_opset() -> int:
    """The highest default-domain ONNX opset this onnxruntime loads, probed once per process.

    onnxruntime exposes no such number (its opset table lives in C++, and `onnx.defs.onnx_opset_version()`
    is the onnx package's, which may be newer or older), so a one-node Identity model is built per opset,
    upwards from 7 (onnxruntime's documented floor), and loaded until one fails: its opsets are contiguous.
    RuntimeUnusableError when not even opset 7 loads (this worker's runtime is broken, not the upload).
    """
    import onnx  # loaded only by the checks that read the graph (~1 s: ml_dtypes)

    highest = 0
    for opset in range(7, onnx.defs.onnx_opset_version() + _PROBE_BEYOND + 1):
        if not _loads_identity(opset):
            break
        highest = opset
    if highest == 0:
        raise RuntimeUnusableError("this onnxruntime cannot load a one-node ONNX model of opset 7")
    log.debug("onnxruntime loads default-domain opsets up to %d", highest)
    return highest


# ---------------------------------------------------------------------------------------------- the file


def _file_problems(model: Path, max_bytes: int) -> list[str]:
    if not model.is_file():
        return [f"{model}: no such file (expected the exported .onnx model)"]
    size_bytes = model.stat().st_size
    if size_bytes > max_bytes:
        return [
            f"{model}: the file is {_mb(size_bytes)}, over this race's upload limit of {_mb(max_bytes)}; "
            "export a smaller model (e.g. the int8 file)"
        ]
    return []


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.3g} MB ({n_bytes:,} bytes)"


def _parse(model: Path) -> tuple[onnx.ModelProto | None, str]:
    """(the parsed model, "") or (None, why not); its external data, if any, is not read."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        graph = onnx.load_model(str(model), load_external_data=False)
    except (DecodeError, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        return None, f"{model}: not an ONNX model ({detail}); expected an exported .onnx file"
    # protobuf parses an empty (or all-defaults) file as an empty ModelProto: no IR version, no graph
    if graph.ir_version == 0 or not graph.HasField("graph"):
        return None, f"{model}: not an ONNX model (no IR version or no graph); expected an exported .onnx"
    return graph, ""


def _graph_problems(model: Path, graph: onnx.ModelProto) -> list[str]:
    problems = _external_data_problems(model, graph)
    problems += _domain_problems(model, graph)
    problems += _opset_problems(model, graph)
    return problems


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """`graph` and every subgraph of its nodes (If/Loop/Scan bodies), depth first."""
    import onnx

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub)


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """The initializers of `graph` and its subgraphs, and the tensors nodes carry as attributes (Constant)."""
    import onnx

    for g in _graphs(graph):
        yield from g.initializer
        yield from (s.values for s in g.sparse_initializer)
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == onnx.AttributeProto.TENSORS:
                    yield from attr.tensors


def _external_data_problems(model: Path, graph: onnx.ModelProto) -> list[str]:
    import onnx

    # An upload is one file: external data would be a second file we do not have, or, with a location such as
    # "../../secrets", a file of the worker's that onnxruntime would read into the model.
    problems = []
    for tensor in _tensors(graph.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            where = {e.key: e.value for e in tensor.external_data}.get("location", "(no location)")
            problems.append(
                f"{model}: tensor `{tensor.name}` keeps its data in an external file `{where}`; upload one "
                "self-contained .onnx (save it without external data)"
            )
    return problems


def _nodes(graph: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    for g in _graphs(graph.graph):
        yield from g.node
    for function in graph.functions:
        yield from function.node


def _domain_problems(model: Path, graph: onnx.ModelProto) -> list[str]:
    # The nodes' domains, not `opset_import`'s: onnxruntime's quantiser stamps every domain it knows
    # (com.microsoft, ...) into opset_import of an int8 model that uses none of them.
    custom = sorted({f"{n.domain}::{n.op_type}" for n in _nodes(graph) if n.domain not in ALLOWED_DOMAINS})
    if not custom:
        return []
    named = ", ".join(custom[:_MAX_NAMED])
    if len(custom) > _MAX_NAMED:
        named += f" and {len(custom) - _MAX_NAMED} more"
    allowed = ", ".join(repr(d) for d in ALLOWED_DOMAINS)
    return [f"{model}: custom operators {named}; only ONNX's own operator domains ({allowed}) can race"]


def _opset_problems(model: Path, graph: onnx.ModelProto) -> list[str]:
    versions = [o.version for o in graph.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not versions:
        return []  # no default-domain operators imported: nothing to compare (the session load says the rest)
    opset = max(versions)
    if _loads_identity(opset):  # one session for the usual case; the full probe only to say the limit
        return []
    supported = max_supported_opset()
    if opset > supported:
        return [
            f"{model}: ONNX opset {opset} is newer than this race's onnxruntime loads (at most opset "
            f"{supported}); export with opset {supported} or lower"
        ]
    return []


def _loads_identity(opset: int) -> bool:
    import onnx
    import onnxruntime as ort

    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    imports = [onnx.helper.make_opsetid("", opset)]
    try:
        ir_version = onnx.helper.find_min_ir_version_for(imports)
    except ValueError:  # an opset this onnx package does not know: its newest IR version
        ir_version = onnx.IR_VERSION
    probe = onnx.helper.make_model(graph, opset_imports=imports, ir_version=ir_version)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the failing probe is expected: no warning for it
    try:
        ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except _ort_errors():
        return False
    return True


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidGraph", "InvalidArgument", "NotImplemented", "RuntimeException")
    return (*(getattr(state, n) for n in names if hasattr(state, n)), RuntimeError)


# ---------------------------------------------------------------------------------------------- the card


def _load_card(card: Path) -> tuple[ModelCard | None, list[str]]:
    try:
        return load_card(card), []
    except ModelCardError as exc:
        return None, [str(exc)]


def _listed_problems(model: Path, card: Path, model_card: ModelCard) -> list[str]:
    sha256 = sha256_file(model)
    if model_card.file_with_sha256(sha256) is not None:
        return []
    listed = ", ".join(f"{f.file} {f.sha256[:12]}..." for f in model_card.files) or "no files"
    return [
        f"{card}: the card does not list this file {model.name} (sha256 {sha256[:12]}...; it lists {listed}); "
        "upload the .onnx and the model.json of the same export, unchanged"
    ]


def _race_problems(card: Path, model_card: ModelCard, spec: VirtualRaceSpec, car: CarConfig) -> list[str]:
    obs = model_card.observation
    problems = []
    if obs.kind not in spec.observation_kinds:
        problems.append(
            f"{card}: observation kind `{obs.kind}` is not allowed in this race (allowed: "
            f"{', '.join(spec.observation_kinds)})"
        )
    diffs = card_mismatches(model_card, car)
    problems += [
        f"{card}: trained for car `{model_card.car}` ({obs.kind} {list(obs.shape)}), which does not fit this "
        f"race's car `{car.car.name}`: {diff}"
        for diff in diffs
    ]
    if not diffs and model_card.car != car.car.name:
        # every submission of a race drives the same car, as in DeepRacer's virtual circuit: a model trained
        # on another car's dynamics (wheelbase, speed, latency) would race on conditions it never learned
        problems.append(
            f"{card}: trained for car `{model_card.car}`; this race drives `{car.car.name}`: train with "
            f"`--car {car.car.name}` and export again"
        )
    return problems


def _session_problems(model: Path, card: Path, model_card: ModelCard | None) -> list[str]:
    try:
        session = load_session(model)
    except ModelError as exc:
        return [str(exc)]
    if model_card is None:
        return []
    return [
        f"{model}: the graph does not match its card {card}: {diff}"
        for diff in graph_mismatches(model_card, session)
    ]


# ---------------------------------------------------------------------------------------------- actions


def action_problems(card: Path, model_card: ModelCard, car: CarConfig) -> list[str]:
    """Each action of the card's action space outside `car`'s limits: |steering_angle| <= max_steer_deg and
    0 < speed <= max_speed_mps (degrees, m/s); one sentence per offending action (discrete) or range end
    (continuous)."""
    space = model_card.action_space.deepracer
    if model_card.action_space.type == "discrete":
        if not isinstance(space, list):
            return [f"{card}: action_space: a discrete action space is a list of {{steering_angle, speed}}"]
        return [p for i, action in enumerate(space) for p in _discrete_problems(card, i, action, car)]
    if not isinstance(space, dict):
        return [
            f"{card}: action_space: a continuous one is {{steering_angle: {{low, high}}, speed: {{low, high}}}}"
        ]
    problems = []
    for key, check in (("steering_angle", _steering_problem), ("speed", _speed_problem)):
        for end in ("low", "high"):
            name = f"continuous {key}.{end}"
            value = space.get(key, {}).get(end)
            problem = f"{name} is missing" if value is None else check(name, value, car)
            problems += [f"{card}: action_space: {problem}"] if problem else []
    return problems


def _discrete_problems(card: Path, index: int, action: dict[str, float], car: CarConfig) -> list[str]:
    name = f"action {index} {_shown(action)}"
    problems = []
    for key, check in (("steering_angle", _steering_problem), ("speed", _speed_problem)):
        value = action.get(key)
        problem = f"{name} has no {key}" if value is None else check(name, value, car)
        problems += [f"{card}: action_space: {problem}"] if problem else []
    return problems


def _steering_problem(name: str, steer_deg: float, car: CarConfig) -> str:
    limit_deg = car.vehicle.max_steer_deg
    if abs(steer_deg) <= limit_deg:
        return ""
    return (
        f"{name}: steering_angle {steer_deg:g} deg is beyond race car `{car.car.name}`'s ±{limit_deg:g} deg"
    )


def _speed_problem(name: str, speed_mps: float, car: CarConfig) -> str:
    limit_mps = car.vehicle.max_speed_mps
    if 0 < speed_mps <= limit_mps:
        return ""
    return (
        f"{name}: speed {speed_mps:g} m/s is outside race car `{car.car.name}`'s range: above 0, at most "
        f"{limit_mps:g} m/s"
    )


def _shown(action: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in action.items()) + "}"


__all__ = [
    "ALLOWED_DOMAINS",
    "SubmissionRejected",
    "action_problems",
    "check_submission",
    "max_supported_opset",
    "require_submission",
]
