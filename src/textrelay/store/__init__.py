"""Storage: tables, engine and unit of work, migrations beside them."""
