"""Virtual races: checking and evaluating submitted models in the simulator (runs in worker processes)."""
