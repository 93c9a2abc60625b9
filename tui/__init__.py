"""mmauth-tui: the Textual front end; it only calls the engine."""
