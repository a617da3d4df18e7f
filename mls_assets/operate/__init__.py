"""What operators do to a running deployment through the Dagster instance (submitting runs
to its queue), shared by the command line and the tests."""
