"""The plan: decisions with reasons (schema) and the rules that make them (rules)."""

from .rules import RULES, add_parameter_count, make_plan
from .schema import KEYS, Decision, Plan, parse_set_options, validate_overrides

__all__ = ["KEYS", "RULES", "Decision", "Plan", "add_parameter_count", "make_plan",
           "parse_set_options", "validate_overrides"]
