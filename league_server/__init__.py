"""pitlane league_server package (built by a later issue; see ARCHITECTURE.md)."""
