"""pitlane's simulator: batched, DeepRacer-compatible track racing for model cars (numpy + gymnasium).

`import sim` registers the gymnasium environment `pitlane/TimeTrial-v0` (single car, `gymnasium.make`) and its
native batched form (`gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`). Without gymnasium
installed, the numpy-only modules such as `sim.core` still import.
"""

ENV_IDS = ("pitlane/TimeTrial-v0",)

try:
    import gymnasium
except ImportError:  # pragma: no cover - exercised by installs without the `sim` extra
    gymnasium = None

if gymnasium is not None and "pitlane/TimeTrial-v0" not in gymnasium.registry:
    gymnasium.register(
        id="pitlane/TimeTrial-v0",
        entry_point="sim.envs.time_trial:TimeTrialEnv",
        vector_entry_point="sim.envs.vector:TimeTrialVectorEnv",
    )
