"""Settings shared by the whole suite."""

import os

from hypothesis import HealthCheck, settings

# `dev` is quick for local runs; `ci` (set by .ci/run) runs the sizes the
# issues ask for; `soak` is for long runs by hand.
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
