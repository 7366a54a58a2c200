"""Stage names and stage configuration: the one place that names resources and stage defaults."""
