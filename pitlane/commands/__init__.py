"""One module per `pitlane` sub-command group."""
