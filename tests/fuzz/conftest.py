"""Hypothesis profiles for the fuzz tests: bounded and reproducible by default.

``ci`` (the default): 100 examples, no per-example deadline (a training example takes
seconds), derandomized so a run is the same every time. ``HYPOTHESIS_PROFILE=dev`` tries
fresh random examples instead."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])
settings.register_profile(
    "dev", max_examples=100, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
