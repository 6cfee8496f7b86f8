"""pitlane's simulator: batched, DeepRacer-compatible track racing for model cars (numpy + gymnasium)."""
