"""Plain Python building blocks, importable and testable without Dagster."""
