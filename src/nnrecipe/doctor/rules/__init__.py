"""Doctor rules by family: data, config, live, after."""
