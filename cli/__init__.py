"""The headless ``mmauth`` command line: a thin typer layer over the engine."""
