pytest_plugins = ["tests.fixtures.aws"]
