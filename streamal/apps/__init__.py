"""What a person runs: the CLI and the jobs behind it."""
