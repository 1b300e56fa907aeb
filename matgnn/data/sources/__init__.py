"""Data sources: each keeps the code that fetches the public data and also reads a local copy."""
