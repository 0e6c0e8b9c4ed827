pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.emulator"]
