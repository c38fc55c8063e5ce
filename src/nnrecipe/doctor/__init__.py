"""The training doctor: checks, monitors, diagnosis with evidence, and repair."""
