"""The contracts every pitlane package shares: what crosses a package boundary, spelled once.

`contracts` imports the standard library, numpy and pydantic only, and no other pitlane package; `sim`,
`trainer`, `device` and `league_server` stand side by side on it.
"""
