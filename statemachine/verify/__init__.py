"""Checks that prove the spec against the requirements (specs/requirements.yaml) and its own
invariants, each derived from the spec file and the requirements file.

- static:       structural rules over the spec's transition table
- declarations: the spec's status flags against the statuses the requirements name
- explore:      breadth-first over every reachable state of the real projector (bounded universe)
- vacuity:      every requirement's condition holds somewhere in what explore walked
- induction:    every requirement-satisfying abstract state x every abstract event stays satisfying
- agreement:    the compiled engine against the `transitions` machine, on the explorer's walk
- spin:         an independent model check of a Promela model exported from the spec, with LTL

`mutate` (mutant files, the edit language) and `mutation` (`verify --mutate`) say how much of the
spec the requirements pin down.
"""
