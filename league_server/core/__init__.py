"""Settings, database engine and security helpers of the league server."""
