"""Jobs the league server runs outside its own process: evaluations of submitted models."""
