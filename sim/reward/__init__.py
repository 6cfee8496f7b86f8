"""Reward functions: load a DeepRacer user's reward file and call it safely, one private instance per car."""
