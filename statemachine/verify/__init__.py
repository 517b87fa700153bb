"""Checks that prove the spec's invariants, each derived from the spec file.

- explore:   breadth-first over every reachable state of the real projector (bounded universe)
- induction: every invariant-satisfying abstract state x every abstract event stays satisfying
- static:    structural rules over the spec's transition table
- spin:      an independent model check of a Promela model exported from the spec
"""
