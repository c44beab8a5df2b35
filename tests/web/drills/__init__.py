"""Scripts the concurrency and fault drills run in separate processes."""
