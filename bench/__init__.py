"""The benchmarks behind `pitlane bench` (sim, train, distill, inference, ingest, startup).

They are installed code because `pitlane bench` is a user command (a hobbyist measures a laptop, an operator
a server). They live in their own package, not in the product packages, because a benchmark composes several
packages (the ingest bench runs `pitlane league serve` as a child process and plays cars; the distill bench
trains a teacher first), because load generators and child-process harnesses are no part of what a car or a
server runs, and so the import checks keep them out of the product: `bench` may import every product package,
none of them may import `bench` (ARCHITECTURE.md, "Where the benchmarks live").
"""
