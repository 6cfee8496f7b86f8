"""ONNX export of trained runs: the plain actor as a graph whose input is the car's sensor and whose outputs are
`steering_deg, speed_mps`; static int8 quantisation calibrated on simulator frames; the parity report; the
model card. Entry point: `trainer.export.pipeline.export_run`; modules:

| module | job |
|---|---|
| `graph.py` | `ActorGraph` (features extractor + policy net + action head + argmax / clip-and-scale) and `export_onnx` |
| `observation.py` | the graph input of a run's observation kind (name, shape, dtype, sensor geometry) |
| `frames.py` | observations recorded along closed-loop driving in the simulator (`sim.evaluation.evaluate`) |
| `quantize.py` | onnxruntime static QDQ quantisation, per-channel weights, over recorded frames |
| `parity.py` | torch vs ONNX, int8 vs fp32 action agreement, closed-loop evaluations: `parity.json` |
| `card.py` | the model card `model.json` of an export |
| `pipeline.py` | `export_run(run, out_dir, int8=...)`: all of the above |
| `bench.py` | `pitlane bench inference`: single-frame latency of the four networks, fp32 vs int8 |
"""
