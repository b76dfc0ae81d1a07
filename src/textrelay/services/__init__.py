"""Use cases. The REST API, the admin UI and the CLI all call these; none writes its own rules."""
