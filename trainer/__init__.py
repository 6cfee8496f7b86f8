"""Training: RunConfig, `train()` (stable-baselines3 PPO/SAC over the batched simulator), distillation, evaluation of
a run and export to ONNX (`trainer.export`). The map is ARCHITECTURE.md's "Trainer" section."""
