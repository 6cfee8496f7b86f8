"""gymnasium environments over the batched simulator; registered as `pitlane/TimeTrial-v0` by `import sim`."""
