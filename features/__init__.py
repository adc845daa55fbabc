"""Features: the book's data contract, loading, validation, the synthetic book and point-in-time features."""
