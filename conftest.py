"""Root conftest: loads the shared fixture plugins (services, database, Asterisk)."""

pytest_plugins = ["tests.plugins.database", "tests.plugins.state", "tests.plugins.asterisk",
                  "tests.plugins.browser", "tests.support.fuzz"]
