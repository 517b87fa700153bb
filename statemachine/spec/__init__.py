"""The lifecycle as data: the spec model, its loader and checks, the vocabulary of guards and
effects, invariants, requirements, and the event parser."""
