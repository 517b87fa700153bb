"""Hypothesis settings profiles, chosen by HYPOTHESIS_PROFILE (default `dev`).

- ci: what `scripts/test.sh` runs; sized so the stateful machine finds the seed bug (mutant a)
  on every cold run while the suite stays fast.
- dev: Hypothesis's default sizes, for local runs.
- thorough: much larger, for manual runs (`HYPOTHESIS_PROFILE=thorough`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Steps can be slow on a loaded machine; a deadline would then report timing, not behaviour.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("ci", max_examples=150, stateful_step_count=80, print_blob=True, **_COMMON)
settings.register_profile("dev", **_COMMON)
# Beyond ~150 steps most examples would end early anyway, when Hypothesis's choice buffer fills.
settings.register_profile("thorough", max_examples=2000, stateful_step_count=150, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
